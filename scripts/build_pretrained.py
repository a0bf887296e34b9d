"""Build the pretrained encoder-decoder that ships inside strseq (``strseq_tasks/pretrained/default``).

    .venv/bin/python scripts/build_pretrained.py                      # the shipped model: 52 min on one core
    .venv/bin/python scripts/build_pretrained.py --minutes 2 --pairs 20000 --out /tmp/tiny   # a quick try

The corpus is generated (``strseq_tasks/learn/task_corpus.py``: dates, names, phones, codes,
phrases and clean values, offline from Faker, phonenumbers and wordfreq). Every value component
must fall on the *training* side of the column benchmark's hash (``benchmarks/columns/core.py``
``side``), so no benchmark test value is pretrained on; the benchmark's held-out locales and
phone regions are not drawn at all. The vocabulary is the shipped language model's, extended
with the corpus's characters. By default training runs exactly ``--steps`` steps on one thread
(reproducible for the same seed, threads and torch build: how the shipped model was built);
with ``--minutes M`` it stops at that time budget instead. Either way it keeps the state with the
best held-out exact match.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.columns.core import SIDE_SALT, side  # noqa: E402
from strseq_tasks.learn.lm import extend_vocab  # noqa: E402
from strseq_tasks.learn.lm_bundle import default_lm_path, fingerprint_corpus, load_lm  # noqa: E402
from strseq_tasks.learn.model import build_model  # noqa: E402
from strseq_tasks.learn.task_corpus import EXCLUDED_LOCALES, EXCLUDED_REGIONS, KINDS, task_pairs  # noqa: E402
from strseq_tasks.learn.transfer import TransferConfig, pretrain_transducer, write_transducer  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "strseq_tasks" / "pretrained" / "default"


def train_side(component: str) -> bool:
    return side(component) == "train"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--pairs", type=int, default=400_000, help="generated training pairs")
    ap.add_argument("--heldout", type=int, default=1500, help="generated held-out pairs (exact match per kind)")
    ap.add_argument("--minutes", type=float, default=0.0, help="a time budget instead of --steps (0: none)")
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=1000)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.monotonic()
    drawn = list(task_pairs(args.pairs, args.seed, keep=train_side))
    pairs = [p for _, p in drawn]
    inputs = {a for a, _ in pairs}
    heldout = [(k, p) for k, p in task_pairs(args.heldout * 2, args.seed + 1_000_003, keep=train_side)
               if p[0] not in inputs][: args.heldout]
    print(f"corpus: {len(pairs):,} pairs ({len(set(pairs)):,} distinct) and {len(heldout):,} held out "
          f"in {time.monotonic() - t0:.0f} s", flush=True)
    vocab = extend_vocab(load_lm(default_lm_path()).vocab, [t for p in pairs for t in p])
    model = build_model(vocab, args.seed)
    cfg = TransferConfig(seed=args.seed, minutes=args.minutes or None, steps=args.steps, threads=args.threads,
                         eval_every=args.eval_every)

    def report(r) -> None:
        print(f"step {r.step:>6}  {r.seconds:>6.0f} s  loss {r.train_loss:.4f}  held-out exact "
              + " ".join(f"{k} {v:.3f}" for k, v in r.exact.items()) + ("  *" if r.best else ""), flush=True)

    result = pretrain_transducer(model, vocab, pairs, heldout, cfg, on_eval=report)
    corpus = {"pairs": len(pairs), "distinct": len(set(pairs)), "heldout": len(heldout),
              "kinds": dict(Counter(k for k, _ in drawn)), "mixture": KINDS, "seed": args.seed,
              "fingerprint": fingerprint_corpus([f"{a}\t{b}" for a, b in pairs]),
              "generator": "strseq_tasks/learn/task_corpus.py",
              "kept_apart": {"rule": "every value component on the training side of the column benchmark's hash",
                             "salt": SIDE_SALT, "excluded_locales": list(EXCLUDED_LOCALES),
                             "excluded_regions": list(EXCLUDED_REGIONS)},
              "sources": {pkg: version(pkg) for pkg in ("faker", "phonenumbers", "wordfreq")}}
    manifest = write_transducer(args.out, result, vocab, cfg, corpus, name="strseq-pretrained", overwrite=True)
    print(f"wrote {args.out}: held-out exact {manifest['heldout']['exact_match']} after {result.steps} steps, "
          f"{result.seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
