"""Does the export's parity check tell an export bug from float32 rounding? Old check against new.

    .venv/bin/python benchmarks/parity_noise.py pairs --n 500 --out /tmp/g2p.csv       # long outputs
    OMP_NUM_THREADS=1 .venv/bin/strseq train --pairs /tmp/g2p.csv --out /tmp/g2p --max-minutes 30
    .venv/bin/python benchmarks/parity_noise.py measure --model /tmp/g2p --pairs /tmp/g2p.csv --sweep

``pairs`` writes grapheme-to-phoneme-like pairs: made-up words in, their phonemes out (ARPAbet-ish,
with stress digits, " . " between words), outputs of 50 to 120 characters. ``measure`` loads the
trained weights of a model folder (or of a training kept after a failed export,
``MODEL.unexported-*``, which also holds its rows), exports them again and runs on the rows
training checked (the validation inputs, recomputed from ``--pairs`` and the manifest's seed):

- the check strseq used before issue 19 (reproduced here as ``legacy_check``): identical greedy
  outputs, sequence log-probabilities within 1e-4, and every next-token probability within 1e-4
  at every step up to the longest output, for all rows: past a row's EOS too, where PyTorch and
  onnxruntime are fed EOS after EOS, a state no decoding reaches;
- ``export.check_parity``: the noise measured against float64, the bound relative to it;
- with ``--sweep``, both checks on exports that are wrong: one tensor at a time moved by 0.01%,
  0.1% and 1% of its mean size, the output bias shifted as in tests/integration/test_parity.py,
  and a graph whose log-add-exp is lowered as max.

Prints a table; writes benchmarks/results/parity_noise.json (``--json`` elsewhere).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_model  # noqa: E402

import strseq_tasks.learn.model as model_module  # noqa: E402
from strseq_tasks.core.batching import encode_sources, max_output_lengths  # noqa: E402
from strseq_tasks.core.decoding import greedy_search  # noqa: E402
from strseq_tasks.core.vocab import BOS, EOS, CharVocab  # noqa: E402
from strseq_tasks.data.files import read_pairs  # noqa: E402
from strseq_tasks.learn.export import ParityError, check_parity, export_onnx  # noqa: E402
from strseq_tasks.learn.model import ModelConfig, Seq2Seq, TorchStepper  # noqa: E402
from strseq_tasks.learn.training import split_pairs  # noqa: E402
from strseq_tasks.learn.unexported import load_kept  # noqa: E402
from strseq_tasks.serve.bundle import read_manifest  # noqa: E402
from strseq_tasks.serve.runtime import OrtStepper, open_sessions  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "parity_noise.json"
ONSETS = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "ch", "sh", "th",
          "ph", "br", "st", "tr", "pl", "gr", "cl"]
VOWELS = ["a", "e", "i", "o", "u", "ee", "oo", "ou", "ai", "y"]
CODAS = ["", "", "", "n", "r", "s", "t", "ck", "x", "l", "m", "nd", "st"]
PHONEMES = {"ch": "CH", "sh": "SH", "th": "TH", "ph": "F", "ck": "K", "ee": "IY", "oo": "UW", "ou": "AW", "ai": "EY",
            "a": "AE", "e": "EH", "i": "IH", "o": "AA", "u": "AH", "y": "AY", "b": "B", "c": "K", "d": "D", "f": "F",
            "g": "G", "h": "HH", "j": "JH", "k": "K", "l": "L", "m": "M", "n": "N", "p": "P", "r": "R", "s": "S",
            "t": "T", "v": "V", "w": "W", "x": "K S", "z": "Z", "q": "K"}
STRESSED = {"ee", "oo", "ou", "ai", "a", "e", "i", "o", "u", "y"}


def phonemes(word: str) -> str:
    out, i, syllable = [], 0, 0
    while i < len(word):
        grapheme = word[i : i + 2] if word[i : i + 2] in PHONEMES else word[i]
        phoneme = PHONEMES[grapheme]
        if grapheme in STRESSED:
            phoneme += "1" if syllable == 0 else "0"
            syllable += 1
        out.append(phoneme)
        i += len(grapheme)
    return " ".join(out)


def g2p_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` distinct pairs of 2-4 made-up words -> their phonemes (outputs of 50 to 120 characters)."""
    rng, seen, pairs = random.Random(seed), set(), []
    while len(pairs) < n:
        words = ["".join(rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(rng.randint(2, 4)))
                 for _ in range(rng.randint(2, 4))]
        source, target = " ".join(words), " . ".join(phonemes(w) for w in words)
        if source not in seen and 50 <= len(target) <= 120:
            seen.add(source)
            pairs.append((source, target))
    return pairs


def legacy_check(model: Seq2Seq, vocab: CharVocab, factory, texts: list[str], tol: float = 1e-4) -> dict:
    """The parity check before issue 19 (``export.check_parity`` at 66242c9), figures only."""
    source = encode_sources(vocab, texts)
    limits = max_output_lengths(source.lengths, model.cfg.max_len)
    torch_step, other_step = TorchStepper(model, source.ids, source.lengths, source.copy_map), factory(source)
    ref = greedy_search(torch_step, torch_step.state, limits)
    got = greedy_search(other_step, other_step.state, limits)
    mismatched = sum(not np.array_equal(a, b) for a, b in zip(ref.ids, got.ids))
    seq_diff = float(np.abs(ref.logprob - got.logprob).max())
    rows, tokens = np.arange(len(texts)), np.full(len(texts), BOS, dtype=np.int64)
    state_t, state_o, within, past = torch_step.state, other_step.state, 0.0, 0.0
    lengths = np.array([len(r) for r in ref.ids])
    for t in range(int(lengths.max()) + 1):
        lp_t, state_t = torch_step(tokens, state_t, rows)
        lp_o, state_o = other_step(tokens, state_o, rows)
        diff = np.abs(np.exp(lp_t) - np.exp(lp_o)).max(axis=1)
        within = max(within, float(diff[t <= lengths].max(initial=0.0)))
        past = max(past, float(diff[t > lengths].max(initial=0.0)))
        tokens = np.array([r[t] if t < len(r) else EOS for r in ref.ids], dtype=np.int64)
    prob_diff = max(within, past)
    return {"refused": bool(mismatched or seq_diff > tol or prob_diff > tol), "mismatched_outputs": int(mismatched),
            "max_seq_logprob_diff": seq_diff, "max_token_prob_diff": prob_diff,
            "max_token_prob_diff_within_outputs": within, "max_token_prob_diff_past_eos": past}


def load_weights(folder: Path, pairs_file: Path | None) -> tuple[Seq2Seq, CharVocab, list[str]]:
    if (folder / "parity_inputs.json").is_file():  # a kept training holds its rows
        _, model, vocab, _, texts = load_kept(folder)
        return model, vocab, texts
    manifest = read_manifest(folder)
    vocab = CharVocab.from_json((folder / "vocab.json").read_text(encoding="utf-8"))
    model = Seq2Seq(vocab, ModelConfig(**manifest["model_config"]))
    load_model(model, str(folder / "weights.safetensors"))
    if pairs_file is None:
        sys.exit("--pairs is needed to recompute the rows training checked (a model folder does not hold them)")
    cfg = manifest["training_config"]
    pairs = read_pairs(pairs_file, manifest["model_config"]["max_len"]).pairs
    _, val = split_pairs(pairs, cfg["val_fraction"], cfg["min_val"], cfg["seed"])
    return model.eval(), vocab, ([a for a, _ in val] or [a for a, _ in pairs])[:64]


def both_checks(model, vocab, factory, texts) -> dict:
    old = legacy_check(model, vocab, factory, texts)
    try:
        new = {**check_parity(model, vocab, factory, texts), "refused": False}
    except ParityError as exc:
        new = {"refused": True, "reason": str(exc)}
    new.pop("method", None)
    return {"old": old, "new": new}


def sweep(model: Seq2Seq, vocab: CharVocab, factory, texts: list[str], folder: Path) -> list[dict]:
    rows = []
    for scale in (1e-4, 1e-3, 1e-2):
        refused = {"old": 0, "new": 0}
        names = [n for n, _ in model.named_parameters()]
        for name in names:
            other = copy.deepcopy(model)
            weight = dict(other.named_parameters())[name]
            with torch.no_grad():
                weight += scale * weight.abs().mean() * torch.randn(weight.shape,
                                                                    generator=torch.Generator().manual_seed(0))
            verdict = both_checks(other, vocab, factory, texts)
            refused = {k: refused[k] + verdict[k]["refused"] for k in refused}
        rows.append({"case": f"one tensor moved by {scale:.2%} of its mean size", "exports": len(names), **refused})
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.step.out.bias += 0.01 * torch.arange(other.cfg.vocab_size, dtype=other.step.out.bias.dtype)
    verdict = both_checks(other, vocab, factory, texts)
    rows.append({"case": "output bias + 0.01 x id (test_parity)", "exports": 1,
                 **{k: int(v["refused"]) for k, v in verdict.items()}})
    real = model_module._log_add
    model_module._log_add = lambda a, b: torch.maximum(a, b)
    (folder / "wrong").mkdir()
    try:
        export_onnx(model, vocab, folder / "wrong")
    finally:
        model_module._log_add = real
    encoder, decoder = open_sessions(folder / "wrong")
    verdict = both_checks(model, vocab, lambda s: OrtStepper(encoder, decoder, s), texts)
    rows.append({"case": "graph with log-add-exp lowered as max", "exports": 1,
                 **{k: int(v["refused"]) for k, v in verdict.items()}})
    return rows


def measure(args) -> None:
    torch.set_num_threads(1)
    model, vocab, texts = load_weights(args.model, args.pairs)
    folder = Path(tempfile.mkdtemp(prefix="strseq-parity-"))
    (folder / "right").mkdir()
    export_onnx(model, vocab, folder / "right")
    encoder, decoder = open_sessions(folder / "right")
    factory = lambda s: OrtStepper(encoder, decoder, s)  # noqa: E731
    started = time.monotonic()
    verdict = both_checks(model, vocab, factory, texts)
    seconds = round(time.monotonic() - started, 1)
    old, new = verdict["old"], verdict["new"]
    print(f"{args.model}: {len(texts)} rows, outputs up to {new.get('max_steps', '?')} steps")
    print(f"  old check: {'REFUSED' if old['refused'] else 'accepted'}; outputs differing {old['mismatched_outputs']}, "
          f"max token probability difference {old['max_token_prob_diff']:.2e} (within outputs "
          f"{old['max_token_prob_diff_within_outputs']:.2e}, past EOS {old['max_token_prob_diff_past_eos']:.2e}), "
          f"sequence log-probability {old['max_seq_logprob_diff']:.2e}; tolerance 1e-4")
    if new["refused"]:
        print(f"  new check: REFUSED: {new['reason']}")
    else:
        print(f"  new check: accepted; outputs differing {new['mismatched_outputs']} (+{new['near_ties']} near ties); "
              f"ONNX within {new['onnx_error']:.2e} of float64, PyTorch fp32 within {new['fp32_noise']:.2e} "
              f"(ratio {new['error_to_noise']:.2f}; bound {new['bound']:.2e})")
    result = {"model": str(args.model), "rows": len(texts), "seconds_for_both": seconds, **verdict}
    if args.sweep:
        result["sweep"] = sweep(model, vocab, factory, texts, folder)
        print(f"  {'wrong export':<45} {'exports':>7} {'old refused':>11} {'new refused':>11}")
        for row in result["sweep"]:
            print(f"  {row['case']:<45} {row['exports']:>7} {row['old']:>11} {row['new']:>11}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(args.json.read_text()) if args.json.is_file() else []
    args.json.write_text(json.dumps([*runs, result], indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pairs", help="write grapheme-to-phoneme-like pairs (long outputs)")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    m = sub.add_parser("measure", help="old and new parity check on a model's weights")
    m.add_argument("--model", type=Path, required=True, help="model folder, or a kept training (MODEL.unexported-*)")
    m.add_argument("--pairs", type=Path, help="the pairs it was trained on (a model folder: to find its rows)")
    m.add_argument("--sweep", action="store_true", help="also both checks on wrong exports")
    m.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.command == "pairs":
        with open(args.out, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["input", "target"])
            writer.writerows(g2p_pairs(args.n, args.seed))
        print(f"wrote {args.n} pairs to {args.out}")
    else:
        measure(args)


if __name__ == "__main__":
    main()
