"""Rows/s of `strseq predict` end to end: a CSV of 100,000 rows in, a CSV of predictions out.

    .venv/bin/python benchmarks/predict_throughput.py                  # names model trained on 200 pairs
    .venv/bin/python benchmarks/predict_throughput.py --model models/names@production --workers 1 2

Each timing is the wall time of a fresh `strseq predict` process, as a user runs it: start-up,
bundle verification, reading the CSV, normalizing, writing the CSV. Worker counts are
interleaved (one run of each per repeat) and medians reported. The inputs are the names
task's test inputs (realistic 10-30 character person names in a dozen layouts), so they
repeat as a real column's values do; the count of distinct values is reported, since a
repeated value is decoded once. ``--distinct`` makes every input distinct (a numbered suffix)
for the worst case. The model's bound on this machine is printed next to it: its FLOPs per
row (``model_cost.model_work``) at the one-thread fp32 GEMM peak, times the cores.

Writes benchmarks/results/predict_throughput.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.model_cost import gemm_peak, model_work  # noqa: E402
from benchmarks.tasks import TASKS, benchmark_model  # noqa: E402
from strseq_tasks.serve.runtime import Normalizer  # noqa: E402
from strseq_tasks.serve.workers import available_cores  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def run_predict(model: Path, source: Path, out: Path, workers: str, precision: str) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "strseq_tasks.cli", "predict", "--model", str(model),
                           "--input", str(source), "--output", str(out), "--workers", workers,
                           "--precision", precision, "-q"], capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"strseq predict --workers {workers} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="names", choices=sorted(TASKS))
    parser.add_argument("--pairs", type=int, default=200, help="training pairs (when no --model is given)")
    parser.add_argument("--model", default=None, help="model folder or REGISTRY/NAME@alias (default: train one)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--distinct", action="store_true", help="make every input distinct (worst case)")
    parser.add_argument("--workers", nargs="+", default=["1", "auto"], help="--workers values to compare")
    parser.add_argument("--precision", choices=("auto", "fp32", "int8"), default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "predict_throughput.json")
    args = parser.parse_args()
    train, test = TASKS[args.task](args.pairs, args.rows, 0)
    values = [a for a, _ in test][: args.rows]
    if args.distinct:
        values = [f"{v} {i}" for i, v in enumerate(values)]
    with tempfile.TemporaryDirectory(prefix="strseq-predict-bench-") as tmp:
        model = benchmark_model(args.model, train, Path(tmp), f"a {args.task} model on {args.pairs} pairs")
        source, out = Path(tmp) / "input.csv", Path(tmp) / "output.csv"
        with open(source, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([("input",), *((v,) for v in values)])
        normalizer = Normalizer(model, threads=1, precision=args.precision)
        times: dict[str, list[float]] = {w: [] for w in args.workers}
        outputs: dict[str, list[str]] = {}
        for _ in range(args.repeats):
            for workers in args.workers:
                times[workers].append(run_predict(model, source, out, workers, args.precision))
                with open(out, newline="", encoding="utf-8") as f:
                    outputs[workers] = [row["prediction"] for row in csv.DictReader(f)]
            print(".", end="", flush=True)
        print()
        sample = sorted(set(values))[:2000]
        work = model_work(normalizer, sample, batch_size=64)
        peak = gemm_peak()
    distinct = len(set(values))
    rates = {w: round(len(values) / statistics.median(ts), 1) for w, ts in times.items()}
    cores = available_cores()
    bound = peak / (work["mflop_per_row"] * 1e6) * cores * len(values) / distinct
    result = {
        "task": args.task, "rows": len(values), "distinct": distinct, "precision": normalizer.precision,
        "cores": cores, "repeats": args.repeats, "seconds": {w: [round(t, 2) for t in ts] for w, ts in times.items()},
        "rows_per_s": rates,
        "same_predictions": all(o == outputs[args.workers[0]] for o in outputs.values()),
        "model_work": work, "peak_gflops_one_thread": round(peak / 1e9, 1),
        "rows_per_s_at_fp32_peak_all_cores": round(bound, 1),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }
    print(f"\n{len(values):,} rows ({distinct:,} distinct), {normalizer.precision} graphs, {cores} cores\n")
    print("| --workers | seconds (median) | rows/s |")
    print("|---|---:|---:|")
    for w in args.workers:
        print(f"| {w} | {statistics.median(times[w]):.1f} | {rates[w]:,.0f} |")
    print(f"\nsame predictions for every --workers: {result['same_predictions']}")
    print(f"bound: {work['mflop_per_row']} MFLOP per distinct row at the fp32 GEMM peak "
          f"({result['peak_gflops_one_thread']} GFLOP/s per thread) on {cores} cores: {bound:,.0f} rows/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
