"""Language-model bundles: pretrain (or adapt) a ``CharLM`` and write it as a readable folder.

```
LM_DIR/
  lm.safetensors   the weights (plain tensors; no pickle)
  vocab.json       the character vocabulary
  manifest.json    sizes, corpus fingerprint and composition, held-out bits per character,
                   the parent LM (when adapted with --from), sha256 of every file
```

Written atomically and verified on load exactly like model bundles (``bundle.py``). strseq
ships one LM (``strseq_tasks/pretrained/lm``), built by ``scripts/build_default_lm.py``: the
parent of ``strseq pretrain --from`` and of the retrain flow's ``--adapt-on``. Training starts
from the pretrained encoder-decoder (``transfer.py``) by default.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from strseq_tasks import __version__
from strseq_tasks.core.vocab import CharVocab
from strseq_tasks.learn.lm import CharLM, LMConfig, build_lm, extend_vocab, lm_vocab, resize_lm
from strseq_tasks.learn.pretraining import EvalReport, PretrainConfig, fit_lm
from strseq_tasks.serve.bundle import (
    LM_FILES,
    LM_WEIGHTS,
    MANIFEST,
    VOCAB_FILE,
    BundleError,
    read_manifest,
    write_bundle,
)
from strseq_tasks.serve.bundle_schema import LM_FORMAT, read_vocab

log = logging.getLogger("strseq")



def default_lm_path() -> Path:
    """The LM shipped inside the package (``strseq_tasks/pretrained/lm``)."""
    return Path(str(files("strseq_tasks") / "pretrained" / "lm"))


def fingerprint_corpus(texts: Sequence[str]) -> str:
    """sha256 over the strings in order (a corpus is a sequence: order and repeats matter)."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class LoadedLM:
    lm: CharLM
    vocab: CharVocab
    manifest: dict
    path: Path

    def summary(self) -> dict:
        """What a fine-tuned model's manifest records about the LM it started from."""
        return {"path": str(self.path), "manifest_sha256": self.manifest["manifest_sha256"],
                "name": self.manifest.get("name"), "created": self.manifest.get("created"),
                "heldout_bits_per_char": self.manifest.get("heldout", {}).get("bits_per_char"),
                "vocab_size": len(self.vocab), "parent": self.manifest.get("parent")}


def load_weights(module, path: Path, what: str) -> None:
    """``path``'s tensors into ``module``, every one of them (``BundleError`` naming the file if a
    tensor is missing, extra, of another shape, or the file is damaged)."""
    try:
        missing, unexpected = load_model(module, str(path), strict=False)
    except (RuntimeError, SafetensorError) as exc:  # a tensor of another shape or a damaged file
        raise BundleError(f"{path}: weights do not fit the {what} ({str(exc).splitlines()[0]})") from None
    if missing or unexpected:
        raise BundleError(f"{path}: weights do not fit the {what} "
                          f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    module.eval()


def load_lm(folder: Path | str) -> LoadedLM:
    """A verified LM bundle (every file's sha256 checked before anything is read)."""
    folder = Path(folder)
    # lm_config's values, and its sizes against the weights' (before any tensor is made): bundle_schema
    manifest = read_manifest(folder, fmt=LM_FORMAT, required=LM_FILES, kind="language-model")
    vocab = read_vocab(folder, manifest["lm_config"]["vocab_size"])
    lm = CharLM(vocab, LMConfig(**manifest["lm_config"]))
    load_weights(lm, folder / LM_WEIGHTS, "LM")
    return LoadedLM(lm, vocab, manifest, folder)


def _history_row(r: EvalReport) -> dict:
    return {"step": r.step, "epoch": round(r.epoch, 3), "train_bpc": round(r.train_bpc, 4),
            "heldout_bpc": r.heldout_bpc, "seconds": round(r.seconds, 1)}


def pretrain_bundle(
    texts: Sequence[str],
    out_dir: Path | str,
    cfg: PretrainConfig,
    parent: Path | str | None = None,
    min_count: int = 3,
    name: str | None = None,
    overwrite: bool = False,
    corpus_info: dict | None = None,
    on_eval: Callable[[EvalReport], None] | None = None,
    dims: dict | None = None,
) -> dict:
    """Pretrain an LM on ``texts`` (or adapt ``parent`` to them) and write a bundle; returns its manifest.

    Adapting keeps every row of the parent's vocabulary and appends the corpus's new characters
    (those seen at least ``min_count`` times) with fresh rows. ``dims`` overrides the sizes of a
    new LM (``LMConfig`` fields; the default sizes are those of ``ModelConfig``).
    """
    out_dir = Path(out_dir)
    if not texts:
        raise ValueError("the corpus is empty: nothing to pretrain on")
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists (pass --force to replace it)")
    started = time.monotonic()
    parent_info = None
    if parent is not None:
        loaded = load_lm(parent)
        vocab = extend_vocab(loaded.vocab, lm_vocab(texts, min_count).chars)
        lm = resize_lm(loaded.lm, loaded.vocab, vocab, cfg.seed) if len(vocab) > len(loaded.vocab) else loaded.lm
        parent_info = {**loaded.summary(), "added_characters": len(vocab) - len(loaded.vocab)}
        log.info("adapting %s (%d characters, %d new) on %d strings", parent, len(loaded.vocab),
                 len(vocab) - len(loaded.vocab), len(texts))
    else:
        vocab = lm_vocab(texts, min_count)
        lm = build_lm(vocab, cfg.seed, **(dims or {}))
        log.info("pretraining a new LM on %d strings: %d characters, %d parameters", len(texts), len(vocab),
                 sum(p.numel() for p in lm.parameters()))
    result = fit_lm(lm, vocab, texts, cfg, on_eval=on_eval)
    lengths = [len(t) for t in texts]

    def build(folder: Path) -> dict:
        save_model(result.lm, str(folder / LM_WEIGHTS))
        (folder / VOCAB_FILE).write_text(vocab.to_json(), encoding="utf-8")
        return {
            "name": name or out_dir.name,
            "strseq_version": __version__,
            "lm_config": result.lm.cfg.to_dict(),
            "pretrain_config": cfg.to_dict(),
            "parameters": sum(p.numel() for p in result.lm.parameters()),
            "parent": parent_info,
            "corpus": {"strings": len(texts), "distinct": len(set(texts)), "characters": sum(lengths),
                       "mean_length": round(sum(lengths) / len(lengths), 2), "min_count": min_count,
                       "fingerprint": fingerprint_corpus(texts), **(corpus_info or {})},
            "heldout": {"strings": result.heldout_strings,
                        "scored_on": "held-out strings" if result.heldout_strings else "training strings",
                        "bits_per_char": result.heldout_bpc, "initial_bits_per_char": result.initial_bpc},
            "training": {"steps": result.steps, "epochs": result.epochs, "seconds": result.seconds,
                         "train_strings": result.train_strings, "history": [_history_row(r) for r in result.history]},
            "total_seconds": round(time.monotonic() - started, 1),
        }

    manifest = write_bundle(out_dir, build, overwrite=overwrite, fmt=LM_FORMAT, required=LM_FILES)
    log.info("wrote %s: held-out bits/char %s (was %s)", out_dir, result.heldout_bpc["decoder"],
             result.initial_bpc["decoder"])
    return manifest


__all__ = ["LM_FORMAT", "MANIFEST", "LoadedLM", "default_lm_path", "load_lm", "pretrain_bundle"]
