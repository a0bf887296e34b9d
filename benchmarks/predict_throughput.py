"""Rows/s of `strseq predict` end to end on realistic columns: this checkout against the default at a git ref.

    .venv/bin/python benchmarks/predict_throughput.py                  # 5 columns x 100,000 rows, 3 repeats
    .venv/bin/python benchmarks/predict_throughput.py --columns dates names-distinct --rows 3000 --repeats 1
    .venv/bin/python benchmarks/predict_throughput.py --variant 'batch-32=--batch-size 32' --models ~/bench-models
    .venv/bin/python benchmarks/predict_throughput.py --model models/names@production --columns names-distinct

Each column (``benchmarks/realistic.py``: dates, phones, product codes and names whose values
repeat on a Zipf tail over a 20,000-row pool, and ``names-distinct``, the classic names task's
nearly distinct inputs) is normalized by *arms*, each a fresh `strseq predict` process as a user
runs it (start-up, bundle verification, reading the CSV, normalizing, writing the CSV;
``OMP_NUM_THREADS=1``):

- ``baseline``: today's default, the code at ``--baseline REF`` (default cd8b7fc, before issue
  24's work), exported once per run with ``git archive`` and run from that folder;
- ``current``: this checkout;
- ``--variant LABEL='ARGS'`` (repeatable): this checkout with extra `strseq predict` arguments.

All arms run in one run on the same machine, interleaved: each repeat, for each column, every
arm once, the arms' order rotated each repeat. Per column and arm: median seconds and rows/s,
the ratio to the baseline (the median of the per-repeat ratios, robust to drift, and the ratio
of the medians), exact match against the truth, harm (clean rows changed), the share of rows
whose output equals the baseline's (last runs). Then the targets of issue 24: current/baseline
rows/s at least 4x on dates, phones and product codes, 2x on names, 1.5x on names-distinct,
with exact match within 0.2 points of the baseline's and harm not above it on every column.

Each column's model is trained with the defaults on its 200 pairs into ``--models DIR``/<column>
(kept: a re-run on the same pairs reuses it; remove the folder to retrain after training changes),
unless ``--model`` names one model for every column. Writes
benchmarks/results/predict_throughput.json (machine, git shas, each column's distribution).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.realistic import COLUMNS, MODELS, Column, column, column_model, names  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
BASELINE_REF = "cd8b7fc"
SPEED_TARGETS = {"dates": 4.0, "phones": 4.0, "product_codes": 4.0, "names": 2.0, "names-distinct": 1.5}
EXACT_POINTS = 0.2  # exact match may fall at most this many points below the baseline's


@dataclass
class Arm:
    label: str
    root: Path
    extra: list[str] = field(default_factory=list)


def export_ref(ref: str, folder: Path) -> str:
    """Write the tree of ``ref`` to ``folder`` (git archive); its full sha."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", f"{ref}^{{commit}}"], capture_output=True, text=True,
                         check=True).stdout.strip()
    folder.mkdir(parents=True)
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", sha], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(folder)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {ref} failed")
    return sha


def arm_env(arm: Arm) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(arm.root)}


def check_imports(arm: Arm) -> None:
    """Fail unless the arm's interpreter imports strseq_tasks from the arm's folder; its modules
    compiled first, as an installed package's are (where PYTHONDONTWRITEBYTECODE is set, every
    process would otherwise compile them again, a cost no installed command pays)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(arm.root / "strseq_tasks")], check=True)
    found = subprocess.run([sys.executable, "-c", "import strseq_tasks; print(strseq_tasks.__file__)"],
                           capture_output=True, text=True, env=arm_env(arm), cwd=arm.root, check=True).stdout.strip()
    if not Path(found).resolve().is_relative_to(arm.root.resolve()):
        raise SystemExit(f"arm {arm.label}: strseq_tasks comes from {found}, not {arm.root}")


# the `strseq` command as pip installs it (its console script), run with the arm's strseq_tasks on
# PYTHONPATH: what a user runs (`python -m strseq_tasks.cli` differs in how spawned workers start)
CONSOLE_SCRIPT = """import re
import sys
from strseq_tasks.cli import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""


def run_arm(arm: Arm, model: Path, source: Path, out: Path, workers: str, precision: str) -> float:
    """Seconds of one fresh `strseq predict` process of ``arm``, file in and file out."""
    script = out.parent / "strseq"
    if not script.is_file():
        script.write_text(CONSOLE_SCRIPT, encoding="utf-8")
    command = [sys.executable, str(script), "predict", "--model", str(model), "--input", str(source),
               "--out", str(out), "--workers", workers, "--precision", precision, "-q", *arm.extra]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=arm_env(arm), cwd=arm.root)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"arm {arm.label}: `{shlex.join(command)}` failed ({done.returncode}):\n"
                         f"{done.stderr[-3000:]}")
    return seconds


def run_predict(model: Path, source: Path, out: Path, workers: str, precision: str) -> float:
    """Seconds of one fresh `strseq predict` process of this checkout (``predict_models.py`` uses it)."""
    return run_arm(Arm("current", ROOT), model, source, out, workers, precision)


def write_input(values: list[str], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("input",), *((v,) for v in values)])


def read_predictions(path: Path, rows: int) -> list[str]:
    with open(path, newline="", encoding="utf-8") as f:
        found = [row["prediction"] for row in csv.DictReader(f)]
    if len(found) != rows:
        raise SystemExit(f"{path}: {len(found)} predictions for {rows} rows")
    return found


def parse_variant(text: str) -> Arm:
    label, sep, extra = text.partition("=")
    if not sep or not label or label in ("baseline", "current"):
        raise argparse.ArgumentTypeError(f"--variant takes LABEL='EXTRA ARGS' (LABEL not baseline/current): {text!r}")
    return Arm(label, ROOT, shlex.split(extra))


def pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def quality(col: Column, outputs: list[str], baseline: list[str]) -> dict:
    exact = sum(o == t for o, t in zip(outputs, col.truth))
    harmed = sum(o != v for o, v, c in zip(outputs, col.values, col.clean) if c)
    differ = [(v, t, b, o) for v, t, b, o in zip(col.values, col.truth, baseline, outputs) if o != b]
    sample, seen = [], set()
    for row in differ:
        if row[0] not in seen and len(sample) < 10:
            seen.add(row[0])
            sample.append(dict(zip(("input", "truth", "baseline", "output"), row)))
    return {"exact_pct": pct(exact, len(outputs)), "harm_pct": pct(harmed, sum(col.clean)),
            "clean_rows": sum(col.clean), "same_as_baseline_pct": pct(len(outputs) - len(differ), len(outputs)),
            "differences_from_baseline": sample}


def summarize(col: Column, times: dict[str, list[float]], outputs: dict[str, list[str]], stable: dict) -> dict:
    base = times["baseline"]
    arms = {}
    for label, ts in times.items():
        median = statistics.median(ts)
        arms[label] = {"seconds": [round(t, 2) for t in ts], "median_seconds": round(median, 2),
                       "rows_per_s": round(len(col.values) / median, 1),
                       "ratio_to_baseline": round(statistics.median(b / t for b, t in zip(base, ts)), 3),
                       "ratio_of_medians": round(statistics.median(base) / median, 3),
                       "same_output_every_repeat": stable[label],
                       **quality(col, outputs[label], outputs["baseline"])}
    for a in arms.values():
        a["exact_points_vs_baseline"] = round(a["exact_pct"] - arms["baseline"]["exact_pct"], 2)
    return arms


def targets(results: dict) -> list[dict]:
    """The issue's targets on the ``current`` arm, each with its value and pass/fail."""
    found = []
    for name, r in results.items():
        cur, base = r["arms"]["current"], r["arms"]["baseline"]
        if name in SPEED_TARGETS:
            found.append({"column": name, "what": "rows/s, current/baseline (median of per-repeat ratios)",
                          "target": f">= {SPEED_TARGETS[name]}x", "value": cur["ratio_to_baseline"],
                          "pass": cur["ratio_to_baseline"] >= SPEED_TARGETS[name]})
        found.append({"column": name, "what": "exact match, points vs baseline", "target": f">= -{EXACT_POINTS}",
                      "value": cur["exact_points_vs_baseline"],
                      "pass": cur["exact_points_vs_baseline"] >= -EXACT_POINTS})
        if cur["harm_pct"] is not None:
            found.append({"column": name, "what": "harm %, current (baseline's in target)",
                          "target": f"<= {base['harm_pct']}", "value": cur["harm_pct"],
                          "pass": cur["harm_pct"] <= base["harm_pct"]})
    return found


def time_columns(cols: dict[str, Column], models: dict[str, Path], arms: list[Arm], args, tmp: Path) -> dict:
    """Every arm on every column, interleaved, ``args.repeats`` times; per column its summary."""
    times = {name: {a.label: [] for a in arms} for name in cols}
    last: dict[str, dict[str, list[str]]] = {name: {} for name in cols}
    stable = {name: {a.label: True for a in arms} for name in cols}
    for name, col in cols.items():
        write_input(col.values, tmp / f"{name}.csv")
    for repeat in range(args.repeats):
        order = arms[repeat % len(arms):] + arms[:repeat % len(arms)]
        for name in cols:
            for arm in order:
                out = tmp / f"{name}.{arm.label}.out.csv"
                seconds = run_arm(arm, models[name], tmp / f"{name}.csv", out, args.workers, args.precision)
                times[name][arm.label].append(seconds)
                outputs = read_predictions(out, len(cols[name].values))
                stable[name][arm.label] &= last[name].get(arm.label, outputs) == outputs
                last[name][arm.label] = outputs
                if args.outputs:
                    args.outputs.mkdir(parents=True, exist_ok=True)
                    shutil.copy(out, args.outputs / f"{name}.{arm.label}.csv")
                print(f"repeat {repeat + 1} {name} {arm.label}: {len(cols[name].values) / seconds:,.0f} rows/s "
                      f"({seconds:.1f} s)", flush=True)
    return {name: summarize(cols[name], times[name], last[name], stable[name]) for name in cols}


def cpu_model() -> str:
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor())


def cpu_features() -> list[str]:
    """The vector extensions onnxruntime's int8 and fp32 kernels use, as /proc/cpuinfo lists them."""
    info = Path("/proc/cpuinfo")
    flags = next((line.split(":", 1)[1].split() for line in (info.read_text().splitlines() if info.exists() else [])
                  if line.startswith("flags")), [])
    return [name for flag, name in (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_vnni", "VNNI"))
            if flag in flags]


def machine() -> dict:
    from strseq_tasks.serve.workers import available_cores

    return {"cpu_model": cpu_model(), "cpu_features": cpu_features(), "cpu_count": os.cpu_count(),
            "available_cores": available_cores(),
            "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "python": platform.python_version()}


README_ORDER = ("names-distinct", "phones", "dates", "names", "product_codes")
README_NAMES = {"names-distinct": "all-distinct names", "product_codes": "product codes"}


def readme_speed(result: dict) -> str:
    """The README's speed paragraph, from a results JSON of this benchmark (``--readme``)."""
    m, cols = result["machine"], result["columns"]
    features = [f for f in m.get("cpu_features", []) if f != "AVX2"]
    cpu = f"a {m['cpu_count']}-core {m['cpu_model']}" + (f" with {' and '.join(features)}" if features else "")
    shown = [c for c in README_ORDER if c in cols] + [c for c in cols if c not in README_ORDER]
    rates = ", ".join(f"{README_NAMES.get(c, c)} {cols[c]['arms']['current']['rows_per_s']:,.0f} rows/s "
                      f"({cols[c]['arms']['current']['ratio_to_baseline']:.2f}x)" for c in shown)
    moved = [cols[c]["arms"]["current"]["exact_points_vs_baseline"] for c in shown]
    harm_rose = any((cols[c]["arms"]["current"]["harm_pct"] or 0) > (cols[c]["arms"]["baseline"]["harm_pct"] or 0)
                    for c in shown)
    return (f"`strseq predict` on {result['settings']['rows']:,} rows, file in and out, against the default before "
            f"[layout programs](docs/concepts.md#layout-programs) in the same run (medians of "
            f"{result['settings']['repeats']}; {cpu}, {m['date'][:10]}): {rates}. Exact match moved by "
            f"{min(moved):+.2f} to {max(moved):+.2f} points, harm {'rose' if harm_rose else 'never rose'}.")


def git_state() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()

    return {"path": str(ROOT), "sha": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def print_report(results: dict, found: list[dict], rows: int) -> None:
    print(f"\n{rows:,} rows a column; ratio = median of the per-repeat ratios (ratio of medians)\n")
    print("| column | distinct | arm | seconds | rows/s | vs baseline | exact % | harm % | same as baseline |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        for label, a in r["arms"].items():
            harm = "" if a["harm_pct"] is None else f"{a['harm_pct']:.2f}"
            print(f"| {name} | {r['distribution']['distinct']:,} | {label} | {a['median_seconds']:.1f} | "
                  f"{a['rows_per_s']:,.0f} | {a['ratio_to_baseline']:.2f}x ({a['ratio_of_medians']:.2f}x) | "
                  f"{a['exact_pct']:.2f} | {harm} | {a['same_as_baseline_pct']:.2f}% |")
    print("\nissue 24's targets (the current arm):\n")
    for t in found:
        print(f"- {'PASS' if t['pass'] else 'FAIL'} {t['column']}: {t['what']} = {t['value']} (target {t['target']})")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--columns", nargs="+", default=list(COLUMNS), choices=names(), metavar="COLUMN",
                        help=f"columns to measure (default: {' '.join(COLUMNS)}; any of {', '.join(names())})")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", default="auto", help="strseq predict --workers (default auto)")
    parser.add_argument("--precision", choices=("auto", "fp32", "int8"), default="auto")
    parser.add_argument("--baseline", default=BASELINE_REF, metavar="REF",
                        help=f"git ref of today's default, the baseline arm (default {BASELINE_REF})")
    parser.add_argument("--variant", action="append", type=parse_variant, default=[], metavar="LABEL='ARGS'",
                        help="an arm running this checkout with extra strseq predict arguments (repeatable), "
                        "e.g. 'batch-32=--batch-size 32'")
    parser.add_argument("--models", type=Path, default=MODELS, metavar="DIR",
                        help=f"the columns' models, trained here once (DIR/<column>) and reused (default {MODELS})")
    parser.add_argument("--model", default=None, help="one model folder or REGISTRY/NAME@alias for every column "
                        "(default: each column's own, from --models)")
    parser.add_argument("--seed", type=int, default=0, help="the columns' draw")
    parser.add_argument("--outputs", type=Path, default=None, metavar="DIR",
                        help="also keep each arm's last output CSV per column here")
    parser.add_argument("--out", type=Path, default=RESULTS / "predict_throughput.json")
    parser.add_argument("--readme", type=Path, default=None, metavar="JSON",
                        help="print the README's speed paragraph from this results file, and run nothing")
    args = parser.parse_args()
    if len({a.label for a in args.variant}) != len(args.variant):
        parser.error("--variant labels must differ")
    return args


def main() -> None:
    args = parse_args()
    if args.readme:
        try:
            paragraph = readme_speed(json.loads(args.readme.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"error: --readme {args.readme}: not a results file of this benchmark ({type(exc).__name__}: {exc})",
                  file=sys.stderr)
            raise SystemExit(2) from None
        print(paragraph)
        return
    load_start = round(os.getloadavg()[0], 2)
    cols = {name: column(name, args.rows, args.seed) for name in args.columns}
    models = {name: column_model(col, args.models, args.model) for name, col in cols.items()}
    with tempfile.TemporaryDirectory(prefix="strseq-predict-bench-") as tmp:
        baseline_sha = export_ref(args.baseline, Path(tmp) / "baseline")
        arms = [Arm("baseline", Path(tmp) / "baseline"), Arm("current", ROOT), *args.variant]
        for arm in arms[:2]:
            check_imports(arm)
        timed = time_columns(cols, models, arms, args, Path(tmp))
    from strseq_tasks.serve.runtime import Normalizer

    results = {name: {"distribution": cols[name].distribution, "model": str(models[name]),
                      "precision_served": Normalizer(models[name], precision=args.precision).precision,
                      "arms": timed[name]} for name in cols}
    found = targets(results)
    print_report(results, found, args.rows)
    result = {"machine": {**machine(), "load_average_1min_at_start": load_start,
                          "load_average_1min_at_end": round(os.getloadavg()[0], 2)},
              "current": git_state(), "baseline": {"ref": args.baseline, "sha": baseline_sha},
              "settings": {"rows": args.rows, "repeats": args.repeats, "workers": args.workers,
                           "precision": args.precision, "seed": args.seed},
              "arms": {a.label: {"root": "baseline" if a.label == "baseline" else "current", "extra_args": a.extra}
                       for a in arms},
              "columns": results, "targets": found, "all_targets_pass": all(t["pass"] for t in found)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"wrote {args.out}\n\nthe README's speed paragraph:\n\n{readme_speed(result)}")


if __name__ == "__main__":
    main()
