"""A longer reliability campaign: the reliability tests again with other seeds and more points.

    .venv/bin/python benchmarks/reliability_campaign.py                       # 3 seeds, 3x the points
    .venv/bin/python benchmarks/reliability_campaign.py --seeds 1 2 3 4 5 --scale 8 --fuzz-examples 20000
    .venv/bin/python benchmarks/reliability_campaign.py -k crash_points        # only the crash tests

Each seed is one `pytest -m reliability` run (what `scripts/reliability_report.py` runs for
docs/reliability.md) with ``STRSEQ_CRASH_SEED`` set to it, ``STRSEQ_CRASH_SCALE`` multiplying the
crash points of every test (the cleaning job, the bundle build, the publisher, `strseq train` and
`strseq retrain`), the seeded hostile tables (random names, keys and values on both databases)
and the rounds of concurrent `strseq models promote`, and ``STRSEQ_FUZZ_EXAMPLES`` the CSV
loader's fuzzing examples, drawn by hypothesis from the seed (``--hypothesis-seed``). PostgreSQL
is included when a server answers at the default address (or ``STRSEQ_TEST_POSTGRES_URL``). A
failing case names the variables that replay it. Writes benchmarks/results/reliability_campaign.json (per seed: cases,
failures, rows lost, rows applied twice, minutes) and exits 1 if any case failed.

Time on 2 cores: the reliability tests take ~4.5 minutes at scale 1 (the suite's), ~6 minutes a
seed at scale 3 with 3,000 fuzzing examples (258 cases, 140 of them crash points).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _report():
    spec = importlib.util.spec_from_file_location("reliability_report", ROOT / "scripts" / "reliability_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="one run per seed")
    parser.add_argument("--scale", type=int, default=3, help="crash points per test: its default times this")
    parser.add_argument("--fuzz-examples", type=int, default=3000, help="CSV loader fuzzing examples per run")
    parser.add_argument("-k", dest="keyword", help="only the tests pytest -k selects")
    parser.add_argument("--out", type=Path, default=RESULTS / "reliability_campaign.json")
    args = parser.parse_args()
    report = _report()
    runs, failures = [], []
    for seed in args.seeds:
        env = {"STRSEQ_CRASH_SEED": str(seed), "STRSEQ_CRASH_SCALE": str(args.scale),
               "STRSEQ_FUZZ_EXAMPLES": str(args.fuzz_examples)}
        replay = " ".join(f"{k}={v}" for k, v in env.items()) + f" pytest --hypothesis-seed={seed}"
        print(f"== seed {seed} ({replay})", flush=True)
        ledger = Path(tempfile.mkdtemp(prefix="strseq-campaign-")) / "ledger.json"
        started = time.monotonic()
        # hypothesis draws its examples from the seed too, so a failing property replays with it
        pytest_args = [f"--hypothesis-seed={seed}", *(["-k", args.keyword] if args.keyword else [])]
        code = report.run_tests(ledger, pytest_args, env)
        minutes = (time.monotonic() - started) / 60
        if not ledger.exists():
            print(f"seed {seed}: the run wrote no ledger (pytest exit code {code})", file=sys.stderr)
            return code or 1
        _, entries = report.read_ledger(ledger)
        failed = [e for e in entries if e["outcome"] == "failed"]
        failures += [{"seed": seed, "replay": replay, **e} for e in failed]
        runs.append({"seed": seed, "pytest_exit_code": code, "cases": len(entries), "failed": len(failed),
                     "rows_lost": sum(e["rows_lost"] or 0 for e in entries),
                     "rows_double_applied": sum(e["rows_double_applied"] or 0 for e in entries),
                     "crash_cases": sum(e["area"] == "crash" for e in entries), "minutes": round(minutes, 1)})
        print(f"   {runs[-1]}", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    result = {"commit": commit, "scale": args.scale, "fuzz_examples": args.fuzz_examples, "keyword": args.keyword,
              "runs": runs, "failures": failures,
              "totals": {k: sum(r[k] for r in runs) for k in ("cases", "failed", "rows_lost", "rows_double_applied")}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\n{len(args.seeds)} seed(s), scale {args.scale}: {result['totals']}; wrote {args.out}")
    for failure in failures:
        print(f"FAILED (replay with {failure['replay']}): {failure['test']}: {failure['case']}", file=sys.stderr)
    return 1 if failures or any(r["pytest_exit_code"] for r in runs) else 0


if __name__ == "__main__":
    raise SystemExit(main())
