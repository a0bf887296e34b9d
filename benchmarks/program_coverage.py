"""Where `strseq predict`'s time goes on the realistic columns, and why a value goes to the model.

    .venv/bin/python benchmarks/program_coverage.py                    # the 5 columns, 100,000 rows each
    .venv/bin/python benchmarks/program_coverage.py --columns dates --rows 20000

For each column of ``benchmarks/realistic.py`` (its model trained with the defaults on its 200
pairs into ``--models DIR`` once, as ``predict_throughput.py`` does), in one process:

- **Why each distinct value got its answer** (``Normalizer.normalize``, layout programs on, one
  process): answered by a program; decoded by the model to read, verify or teach a program that
  then answered the shape's other rows; the model's because its shape has no program, either
  because the model's own outputs disagree with every program (the model treats the layout's
  rows inconsistently) or because no program of the kinds in ``core/programs.py`` fits; because
  the shape has too few values to repay reading a program (or was still being verified); or
  because a guard left the row to the model (a word whose treatment the pairs show is
  irregular, an output that treats the row's words unlike the pairs, a map key or digit length
  the program has not confirmed). Also: the shapes, and the share of distinct values in shapes of
  at least 40 values (what a call can read a program for).
- **The fixed cost of a `strseq predict` process**: the wall time of a run on a one-row file
  (start-up, imports, loading the model, exit; median of 3) and, in this process, reading the
  column's 100,000-row CSV and writing it back with three more columns (medians of 3).

Writes benchmarks/results/programs/program_coverage.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.realistic import COLUMNS, MODELS, column, column_model, names  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "programs"
ROOT = Path(__file__).resolve().parents[1]
REASONS = {
    "program": "answered by a layout program",
    "sampled": "decoded to read, verify or teach the program that answered its shape",
    "inconsistent": "shape without a program: the model's outputs disagree with every program read off them",
    "no_fit": "shape without a program: no program of core/programs.py's kinds fits the model's outputs",
    "small": "shape too small to repay reading a program, or its program not verified yet",
    "guarded": "left to the model by a guard (word treatment, a map key or digit length not confirmed)",
}


def why(normalizer, values: list[str]) -> dict:
    """Each distinct value's reason (``REASONS``) after ``normalizer.normalize(values)``."""
    from strseq_tasks.core.program_book import INDUCE_ROWS, VERIFY_ROWS
    from strseq_tasks.core.vocab import read_text

    predictions = normalizer.normalize(values)
    book = normalizer.programs
    answered = {read_text(v, normalizer.spaces): p for v, p in zip(values, predictions) if p.status == "ok"}
    reasons: Counter = Counter()
    groups: Counter = Counter()
    for value, prediction in answered.items():
        groups[book.shape(value)] += 1
        if prediction.by == "program":
            reasons["program"] += 1
            continue
        shape = book.shapes.get(book.shape(value))
        if shape is None or shape.status in ("learning", "verifying"):
            reasons["small"] += 1
        elif shape.status == "rejected":
            reasons["inconsistent" if shape.why == "disagrees with the model" else "no_fit"] += 1
        elif book.apply(value) is not None:
            reasons["sampled"] += 1
        else:
            reasons["guarded"] += 1
    big = INDUCE_ROWS + VERIFY_ROWS + book.min_saved
    return {"distinct": len(answered), "shapes": len(groups),
            "in_shapes_of_at_least": {"values": big,
                                      "share": round(sum(n for n in groups.values() if n >= big) / len(answered), 3)},
            "reasons": {k: {"values": reasons[k], "share": round(reasons[k] / len(answered), 3), "what": REASONS[k]}
                        for k in REASONS}}


def fixed_cost(model: Path, values: list[str], repeats: int) -> dict:
    """Seconds of a `strseq predict` process on one row, and of reading and writing the column's CSV."""
    import pandas as pd

    from benchmarks.predict_throughput import Arm, check_imports, write_input
    from strseq_tasks.data.files import read_inputs, write_table

    check_imports(Arm("current", ROOT))  # compiled, as an installed package is
    one, read, write = [], [], []
    with tempfile.TemporaryDirectory(prefix="strseq-coverage-") as tmp:
        tiny, full = Path(tmp) / "one.csv", Path(tmp) / "column.csv"
        write_input(values[:1], tiny)
        write_input(values, full)
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([str(ROOT / ".venv" / "bin" / "strseq"), "predict", "--model", str(model), "--input",
                            str(tiny), "--out", str(Path(tmp) / "one-out.csv"), "-q"], check=True)
            one.append(time.perf_counter() - started)
            started = time.perf_counter()
            frame = read_inputs(full, "input")
            read.append(time.perf_counter() - started)
            out = frame.assign(prediction=frame["input"], confidence=pd.Series([0.5] * len(frame)), status="ok")
            started = time.perf_counter()
            write_table(out, Path(tmp) / "column-out.csv")
            write.append(time.perf_counter() - started)
    return {"process_on_one_row_s": round(statistics.median(one), 2), "read_csv_s": round(statistics.median(read), 2),
            "write_csv_s": round(statistics.median(write), 2), "rows": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--columns", nargs="+", default=list(COLUMNS), choices=names(), metavar="COLUMN")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each fixed-cost timing (median)")
    parser.add_argument("--models", type=Path, default=MODELS, metavar="DIR",
                        help=f"the columns' models, trained here once (DIR/<column>) and reused (default {MODELS})")
    parser.add_argument("--seed", type=int, default=0, help="the columns' draw")
    parser.add_argument("--out", type=Path, default=RESULTS / "program_coverage.json")
    args = parser.parse_args()

    from strseq_tasks.serve.runtime import Normalizer

    results = {}
    for name in args.columns:
        col = column(name, args.rows, args.seed)
        model = column_model(col, args.models)
        found = why(Normalizer(model), col.values)
        found["fixed_cost"] = fixed_cost(model, col.values, args.repeats)
        results[name] = found
        shares = ", ".join(f"{k} {v['share']:.0%}" for k, v in found["reasons"].items())
        big = found["in_shapes_of_at_least"]
        print(f"{name}: {found['distinct']:,} distinct values in {found['shapes']:,} shapes ({big['share']:.0%} "
              f"in shapes of {big['values']}+); {shares}; fixed cost {found['fixed_cost']}", flush=True)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"commit": commit, "rows": args.rows, "seed": args.seed, "columns": results},
                                   indent=2, ensure_ascii=False))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
