"""Time `strseq train` with the defaults, one task at a time, as a user runs it on a 2-core server.

    .venv/bin/python benchmarks/train_time.py                         # five tasks, 200 pairs
    .venv/bin/python benchmarks/train_time.py --tasks names --pairs 200 1000
    .venv/bin/python benchmarks/train_time.py --tasks names --threads 1 2 --epochs 3 --repeats 5
                                                    # torch threads: a short A/B, interleaved

Each run is a fresh `strseq train` process on the task's training pairs written to a CSV: wall
time from start to a verified bundle (augmentation, training, validation, margin and calibration
choice, ONNX export, parity check, int8 gate), plus what the manifest says: epochs, training
samples/s (forward, backward and update only; median over the epochs) and validation exact
match. Only one run at a time, so each has the machine to itself; `--threads` runs are
interleaved task by task.

Writes benchmarks/results/train_time.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.tasks import TASKS  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def train_once(pairs: Path, out: Path, threads: int, epochs: int | None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    more = ["--epochs", str(epochs)] if epochs else []
    done = subprocess.run([sys.executable, "-m", "strseq_tasks.cli", "train", "--pairs", str(pairs), "--out", str(out),
                           "--threads", str(threads), "--force", "-q", *more], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"strseq train failed ({done.returncode}):\n{done.stderr[-3000:]}")
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    training = manifest["training"]
    return {"wall_seconds": round(seconds, 1), "train_seconds": training["seconds"], "epochs": training["epochs"],
            "stopped": training["stopped"], "samples_per_s": training.get("samples_per_s"),
            "validation_exact_match": round(manifest["metrics"]["validation"]["exact_match"], 4),
            "serves": manifest["precision"]["default"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--pairs", nargs="+", type=int, default=[200])
    parser.add_argument("--threads", nargs="+", type=int, default=[1], help="torch threads to compare")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: train's, 40)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each, interleaved")
    parser.add_argument("--out", type=Path, default=RESULTS / "train_time.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="strseq-train-bench-") as tmp:
        for task in args.tasks:
            for n in args.pairs:
                train, _ = TASKS[task](n, 10, 0)
                pairs = Path(tmp) / f"{task}-{n}.csv"
                with open(pairs, "w", newline="", encoding="utf-8") as f:
                    csv.writer(f).writerows([("input", "target"), *train])
                for threads in [t for _ in range(args.repeats) for t in args.threads]:
                    row = {"task": task, "pairs": n, "threads": threads,
                           **train_once(pairs, Path(tmp) / f"model-{task}-{n}-{threads}", threads, args.epochs)}
                    rows.append(row)
                    print(f"{task} {n} pairs, {threads} thread(s): {row['wall_seconds']:.0f} s wall "
                          f"({row['epochs']} epochs, {row['samples_per_s']} samples/s, validation exact "
                          f"{row['validation_exact_match']:.1%}, serves {row['serves']})", flush=True)
    print("\n| task | pairs | threads | wall time | epochs | samples/s | validation exact match |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['task']} | {r['pairs']} | {r['threads']} | {r['wall_seconds']:.0f} s | {r['epochs']} | "
              f"{r['samples_per_s']:,.0f} | {r['validation_exact_match']:.1%} |")
    if len(args.threads) > 1:
        import statistics

        for threads in args.threads:
            rates = [r["samples_per_s"] for r in rows if r["threads"] == threads]
            print(f"{threads} thread(s): median {statistics.median(rates):,.0f} samples/s over {len(rates)} runs "
                  f"({', '.join(f'{x:,.0f}' for x in rates)})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cpu_count": os.cpu_count(), "rows": rows,
                                    "load_average_1min_at_end": round(os.getloadavg()[0], 2)}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
