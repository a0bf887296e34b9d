"""Rows/s of `strseq predict` for two ways of training, interleaved in one run.

    .venv/bin/python benchmarks/predict_models.py                          # scratch against the default, names
    .venv/bin/python benchmarks/predict_models.py --task dates --distinct

The question it answers: does a training choice (here, where training starts: random weights or
the pretrained model, whose vocabulary is larger) make prediction slower? Each variant trains a
model on the same pairs (``--starts``: ``none`` for random weights, ``default`` for the shipped
pretrained model, or a folder), then a fresh `strseq predict` process per timing normalizes
the same CSV (``--rows`` inputs of the task's test column; ``--distinct`` makes each one
distinct), one run of each variant per repeat, medians reported with their ratio.

``--without-familiar`` adds one more variant: a copy of the last model whose manifest lacks the
shapes, characters and words' treatment of its training inputs (``decoding.shapes``,
``decoding.input_chars``, ``decoding.words``), so prediction computes no novelty flags: what
those flags cost.

Writes benchmarks/results/predict_models.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.predict_throughput import run_predict  # noqa: E402
from benchmarks.tasks import TASKS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def strip_familiar(folder: Path, copy: Path) -> Path:
    """A copy of a bundle without ``decoding.shapes``, ``input_chars`` and ``words``, its content
    identity and manifest checksum recomputed: it serves the same outputs, without novelty flags."""
    import shutil

    from strseq_tasks.serve.bundle import _manifest_checksum
    from strseq_tasks.serve.identity import content_sha256

    shutil.copytree(folder, copy)
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    for key in ("shapes", "input_chars", "words"):
        manifest["decoding"].pop(key, None)
    if "content_sha256" in manifest:  # other decoding settings: another model for the cleaning job
        manifest["content_sha256"] = content_sha256(manifest)
    manifest["manifest_sha256"] = _manifest_checksum(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="names", choices=sorted(TASKS))
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--starts", nargs="+", default=["none", "default"],
                        help="what each model's training starts from: none, default or a folder")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--distinct", action="store_true", help="make every input distinct (worst case)")
    parser.add_argument("--workers", default="1")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--without-familiar", action="store_true",
                        help="also time the last model without its novelty flags (see above)")
    parser.add_argument("--out", type=Path, default=RESULTS / "predict_models.json")
    args = parser.parse_args()

    import csv

    from strseq_tasks.learn.build import train_bundle
    from strseq_tasks.learn.training import TrainConfig

    train, test = TASKS[args.task](args.pairs, args.rows, 0)
    values = [a for a, _ in test][: args.rows]
    if args.distinct:
        values = [f"{v} {i}" for i, v in enumerate(values)]
    with tempfile.TemporaryDirectory(prefix="strseq-predict-models-") as tmp:
        models, info = {}, {}
        for start in args.starts:
            folder = Path(tmp) / f"model-{len(models)}"
            manifest = train_bundle(train, folder, TrainConfig(seed=0),
                                    pretrained=None if start == "none" else start).manifest
            models[start] = folder
            info[start] = {"vocab_size": manifest["model_config"]["vocab_size"],
                           "precision": manifest["precision"]["default"],
                           "validation_exact_match": manifest["metrics"]["validation"]["exact_match"],
                           "identity_margin": manifest["decoding"]["identity_margin"]}
            print(f"trained from {start}: vocabulary {info[start]['vocab_size']}, serves {info[start]['precision']}, "
                  f"identity margin {info[start]['identity_margin']}", flush=True)
        if args.without_familiar:
            last, variant = args.starts[-1], f"{args.starts[-1]}, without novelty flags"
            models[variant] = strip_familiar(models[last], Path(tmp) / "model-unflagged")
            info[variant] = info[last]
            args.starts = [*args.starts, variant]
        source, out = Path(tmp) / "input.csv", Path(tmp) / "output.csv"
        with open(source, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([("input",), *((v,) for v in values)])
        times: dict[str, list[float]] = {s: [] for s in args.starts}
        for _ in range(args.repeats):
            for start in args.starts:
                times[start].append(run_predict(models[start], source, out, args.workers, "auto"))
            print(".", end="", flush=True)
        print()
    rates = {s: round(len(values) / statistics.median(ts), 1) for s, ts in times.items()}
    first = args.starts[0]
    result = {"task": args.task, "pairs": args.pairs, "rows": len(values), "distinct": len(set(values)),
              "workers": args.workers, "repeats": args.repeats, "models": info,
              "seconds": {s: [round(t, 2) for t in ts] for s, ts in times.items()}, "rows_per_s": rates,
              "ratio_to_first": {s: round(rates[s] / rates[first], 3) for s in args.starts},
              "load_average_1min_at_end": round(os.getloadavg()[0], 2)}
    print(f"\n{len(values):,} rows ({result['distinct']:,} distinct), --workers {args.workers}\n")
    print("| training started from | vocabulary | serves | seconds (median) | rows/s | ratio |")
    print("|---|---:|---|---:|---:|---:|")
    for s in args.starts:
        print(f"| {s} | {info[s]['vocab_size']} | {info[s]['precision']} | {statistics.median(times[s]):.1f} | "
              f"{rates[s]:,.0f} | {result['ratio_to_first'][s]:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
