"""A pretrained encoder-decoder: trained on many generated normalization tasks, fine-tuned on a team's pairs.

```
PRETRAINED_DIR/
  weights.safetensors   the whole Seq2Seq (embeddings, encoder, attention, copy, decoder)
  vocab.json            its character vocabulary
  manifest.json         sizes, the task mixture and how its values were kept apart from the
                        benchmark's test values, held-out exact match per task kind, sha256 of every file
```

``pretrain_transducer`` trains a ``Seq2Seq`` on (input, target) pairs of many kinds
(``task_corpus``): time budget or step count, held-out exact match per kind, best state kept.
``initialize_from_transducer`` copies every tensor of a pretrained model into a model for the
pairs' vocabulary (``transfer_vocab``), character by character where a tensor is indexed by
character. Written and verified like every bundle (``bundle.py``).
"""

from __future__ import annotations

import copy
import logging
import math
import random
import string
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path

import torch
from safetensors.torch import save_model

from strseq_tasks import __version__
from strseq_tasks.core.vocab import SPECIALS, CharVocab
from strseq_tasks.learn.decoding_choices import predict_torch
from strseq_tasks.learn.lm_bundle import load_weights
from strseq_tasks.learn.model import ModelConfig, Seq2Seq, sequence_loss
from strseq_tasks.learn.training import _tensors, hide_characters, length_batches
from strseq_tasks.serve.bundle import VOCAB_FILE, WEIGHTS_FILE, read_manifest, write_bundle
from strseq_tasks.serve.bundle_schema import TRANSDUCER_FORMAT, read_vocab

log = logging.getLogger("strseq")

TRANSDUCER_FILES = (WEIGHTS_FILE, VOCAB_FILE)
# tensors indexed by the character vocabulary (rows): copied row by row into a larger vocabulary
# (the embedding is shared: it also appears as step.embedding.*)
VOCAB_ROWS = ("embedding.rows.weight", "step.embedding.rows.weight", "step.out.weight", "step.out.bias")
DERIVED = (".fold", ".case_of")  # buffers rebuilt from the vocabulary, never copied


@dataclass(frozen=True)
class TransferConfig:
    seed: int = 0
    minutes: float | None = 40.0  # time budget (best held-out state kept); None: run ``steps`` (reproducible)
    steps: int = 30_000  # optimizer steps, if the time budget allows
    batch_size: int = 128
    lr: float = 3e-3  # AdamW peak learning rate (warm-up, then cosine decay over the budget)
    weight_decay: float = 0.01
    clip: float = 1.0
    warmup_steps: int = 300
    unk_rate: float = 0.05  # share of letters per batch presented as unknown (learn to copy unseen ones)
    eval_every: int = 1000  # optimizer steps between held-out evaluations
    threads: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TransferEval:
    step: int
    seconds: float
    train_loss: float  # running mean since the last evaluation
    exact: dict[str, float]  # held-out exact match per kind, and "all"
    best: bool
    progress: float


@dataclass
class TransferResult:
    model: Seq2Seq
    history: list[TransferEval]
    exact: dict[str, float]  # of the kept state
    steps: int
    seconds: float


def heldout_exact(model: Seq2Seq, vocab: CharVocab, heldout: Sequence[tuple[str, tuple[str, str]]]) -> dict[str, float]:
    """Greedy exact match on held-out (kind, pair) rows: per kind and over all."""
    outputs = predict_torch(model, vocab, [a for _, (a, _) in heldout], batch_size=128)[0]
    hits: dict[str, list[bool]] = defaultdict(list)
    for (kind, (_, target)), out in zip(heldout, outputs):
        hits[kind].append(out == target)
        hits["all"].append(out == target)
    return {k: round(sum(v) / len(v), 4) for k, v in sorted(hits.items())}


def pretrain_transducer(model: Seq2Seq, vocab: CharVocab, pairs: Sequence[tuple[str, str]],
                        heldout: Sequence[tuple[str, tuple[str, str]]], cfg: TransferConfig,
                        on_eval: Callable[[TransferEval], None] | None = None) -> TransferResult:
    """Train ``model`` on ``pairs`` (passes in shuffled length-sorted batches) until the budget is
    spent; the state with the best held-out exact match is kept."""
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    started = time.monotonic()
    budget = None if cfg.minutes is None else 60 * cfg.minutes
    history: list[TransferEval] = []
    best, best_state = -1.0, copy.deepcopy(model.state_dict())
    step, losses = 0, []

    def progress() -> float:
        done = step / cfg.steps
        return min(1.0, max(done, (time.monotonic() - started) / budget) if budget else done)

    try:
        while progress() < 1.0:
            for batch in length_batches(pairs, cfg.batch_size, rng, lambda p: (len(p[0]), len(p[1]))):
                share = progress()
                if share >= 1.0:
                    break
                warm = min(1.0, (step + 1) / cfg.warmup_steps)
                for group in opt.param_groups:
                    group["lr"] = cfg.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * share)))
                model.train()
                src, lengths, copy_map, targets = _tensors(vocab, batch, hide_characters(batch, cfg.unk_rate, rng))
                loss = sequence_loss(model(src, lengths, copy_map, targets), targets)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
                opt.step()
                losses.append(loss.item())
                step += 1
                if step % cfg.eval_every == 0 or progress() >= 1.0:
                    exact = heldout_exact(model, vocab, heldout)
                    improved = exact["all"] > best
                    if improved:
                        best, best_state = exact["all"], copy.deepcopy(model.state_dict())
                    report = TransferEval(step, round(time.monotonic() - started, 1),
                                          round(sum(losses) / max(len(losses), 1), 4), exact, improved, progress())
                    losses = []
                    history.append(report)
                    if on_eval is not None:
                        on_eval(report)
        model.load_state_dict(best_state)
        model.eval()
        exact = history[-1].exact if history and history[-1].best else heldout_exact(model, vocab, heldout)
        return TransferResult(model, history, exact, step, round(time.monotonic() - started, 1))
    finally:
        torch.set_num_threads(threads)


def write_transducer(out_dir: Path | str, result: TransferResult, vocab: CharVocab, cfg: TransferConfig,
                     corpus: dict, name: str | None = None, overwrite: bool = False) -> dict:
    """Write a pretrained-model bundle (atomically, like every bundle); its manifest."""
    out_dir = Path(out_dir)

    def build(folder: Path) -> dict:
        save_model(result.model, str(folder / WEIGHTS_FILE))
        (folder / VOCAB_FILE).write_text(vocab.to_json(), encoding="utf-8")
        return {"name": name or out_dir.name, "kind": "transducer", "strseq_version": __version__,
                "model_config": result.model.cfg.to_dict(), "transfer_config": cfg.to_dict(),
                "parameters": sum(p.numel() for p in result.model.parameters()), "corpus": corpus,
                "heldout": {"exact_match": result.exact},
                "training": {"steps": result.steps, "seconds": result.seconds,
                             "history": [{"step": r.step, "seconds": r.seconds, "train_loss": r.train_loss,
                                          "exact": r.exact} for r in result.history]}}

    return write_bundle(out_dir, build, overwrite=overwrite, fmt=TRANSDUCER_FORMAT, required=TRANSDUCER_FILES)


def default_pretrained_path() -> Path:
    """The pretrained encoder-decoder shipped inside the package (``strseq_tasks/pretrained/default``)."""
    return Path(str(files("strseq_tasks") / "pretrained" / "default"))


@dataclass(frozen=True)
class LoadedTransducer:
    model: Seq2Seq
    vocab: CharVocab
    manifest: dict
    path: Path

    def summary(self) -> dict:
        """What a fine-tuned model's manifest records about the model it started from."""
        return {"path": str(self.path), "kind": "transducer", "manifest_sha256": self.manifest["manifest_sha256"],
                "name": self.manifest.get("name"), "created": self.manifest.get("created"),
                "heldout_exact_match": self.manifest.get("heldout", {}).get("exact_match"),
                "vocab_size": len(self.vocab)}


def is_transducer(folder: Path | str) -> bool:
    """Whether ``folder`` holds a pretrained encoder-decoder (else, say, a language model)."""
    import json

    try:
        manifest = json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == TRANSDUCER_FORMAT


def load_transducer(folder: Path | str) -> LoadedTransducer:
    """A verified pretrained-model bundle (every file's sha256 checked before anything is read)."""
    folder = Path(folder)
    manifest = read_manifest(folder, fmt=TRANSDUCER_FORMAT, required=TRANSDUCER_FILES, kind="pretrained model")
    vocab = read_vocab(folder, manifest["model_config"]["vocab_size"])
    model = Seq2Seq(vocab, ModelConfig(**manifest["model_config"]))
    load_weights(model, folder / WEIGHTS_FILE, "model")
    return LoadedTransducer(model, vocab, manifest, folder)


def transfer_vocab(texts: Iterable[str]) -> CharVocab:
    """The vocabulary a model fine-tuned from a pretrained one gets: the pairs' characters (both
    cases of letters) and the ASCII letters and digits, not the pretrained model's whole list.
    Prediction's cost grows with the vocabulary (the output layer and the copy map); a character
    outside it is still copied from the input, as by any model."""
    return CharVocab.build([*texts, string.ascii_letters + string.digits])


def initialize_from_transducer(model: Seq2Seq, vocab: CharVocab, source: Seq2Seq, source_vocab: CharVocab,
                               keep: float = 1.0) -> int:
    """Start ``model`` from every tensor of ``source``: ``keep * pretrained + (1 - keep) * fresh``,
    where fresh is ``model``'s own random initialization (shrink and perturb: Ash and Adams,
    2020). ``keep`` below 1 keeps most of what pretraining learnt while the model stays quick to
    learn mappings pretraining never showed (a fictitious product code table). Tensors indexed
    by character are matched character by character (the specials too); a character
    ``source`` does not know keeps its fresh row. Returns the number of tensors initialized."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], not {keep}")
    theirs = source.state_dict()
    pairs = [(i, i) for i in range(len(SPECIALS))]
    pairs += [(vocab.id(c), source_vocab.id(c)) for c in vocab.chars if c in source_vocab]
    ours_rows = torch.tensor([a for a, _ in pairs])
    their_rows = torch.tensor([b for _, b in pairs])
    copied = 0
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if key.endswith(DERIVED):
                continue
            src = theirs[key]
            if key in VOCAB_ROWS:
                tensor[ours_rows] = keep * src[their_rows] + (1 - keep) * tensor[ours_rows]
            elif tensor.shape == src.shape:
                tensor.copy_(keep * src + (1 - keep) * tensor)
            else:
                raise ValueError(f"pretrained tensor {key} is {list(src.shape)}, the model's {list(tensor.shape)}")
            copied += 1
    return copied
