"""Time `strseq retrain` end to end (validation to promotion) from the CLI on 1,000 pairs.

    .venv/bin/python benchmarks/retrain_time.py                 # names task, 1,000 pairs, 1 run
    .venv/bin/python benchmarks/retrain_time.py --task dates --runs 2

Writes the benchmark task's training pairs to a CSV, runs `strseq retrain` into a fresh registry
(twice with --runs 2: the second run, with --force since its inputs are unchanged, also evaluates
the first as production), and prints wall time per run with the flow's own verdict. Prefect's
temporary local server starts in each run, as it does for a user without PREFECT_API_URL.
Writes benchmarks/results/retrain_time.json.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="names", choices=list(TASKS))
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "retrain_time.json")
    args = parser.parse_args()
    train, _ = TASKS[args.task](args.pairs, 10, 0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="strseq-retrain-bench-") as tmp:
        pairs = Path(tmp) / "pairs.csv"
        with open(pairs, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([("input", "target"), *train])
        env = {**os.environ, "PREFECT_HOME": str(Path(tmp) / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "DO_NOT_TRACK": "1", "OMP_NUM_THREADS": "1"}
        env.pop("PREFECT_API_URL", None)
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", "strseq_tasks.cli", "retrain", "--pairs", str(pairs),
                                   "--registry", str(Path(tmp) / "registry"), "--name", args.task, "-q",
                                   *(["--force"] if run > 1 else [])],  # the same pairs: else nothing to do
                                  capture_output=True, text=True, env=env)
            seconds = time.monotonic() - started
            if proc.returncode != 0:
                sys.exit(f"run {run} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
            verdict = next(line for line in proc.stdout.splitlines() if line.startswith("published"))
            exact = next(line.split()[-1] for line in proc.stdout.splitlines()
                         if line.strip().startswith("exact match"))
            gates = [line.strip() for line in proc.stdout.splitlines() if line.strip().startswith(("pass:", "FAIL:"))]
            rows.append({"run": run, "seconds": round(seconds, 1), "verdict": verdict, "heldout_exact_match": exact,
                         "gates": gates})
            print(f"run {run}: {seconds / 60:.1f} min; {verdict}; held-out exact match {exact}", flush=True)
            for line in gates:
                print(f"  {line}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]  # other work on the machine while it ran (timings are noisy)
    args.out.write_text(json.dumps({"task": args.task, "pairs": args.pairs, "cpu_count": os.cpu_count(),
                                    "load_average_1min_at_end": round(load, 2), "runs": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
