"""Do rejected suggestions teach? (issue 22, "rejected suggestions teach the model too, where that
helps: measure it")

    .venv/bin/python benchmarks/rejections.py benchmarks/results/learning_loop/loop.json

A rejection says "the model's suggestion was wrong, the value was already right". `strseq retrain
--decisions` learns it as an identity pair (the input is its own target), as it learns an approval
or an edit as a pair. Whether that helps is measured on a finished learning-loop run
(``benchmarks/learning_loop.py``), holding the questions fixed: at every round of the strseq order
whose answers so far hold a rejection, the same pairs and answers train a model again *without*
the rejections, scored on the same evaluation half, beside the run's own model (with them). The
first such round of each cell is also trained again *with* them, to show that the replay
reproduces the run (training is seeded; the pool ids of answers the run did not record are
recovered from their values, which can reorder two identical answers and nothing else).

Writes ``<run>-rejections.json`` beside the run's file and prints the comparison.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.columns import FAMILIES  # noqa: E402
from benchmarks.learning_loop import METRICS, LoopSettings, cell_column, scored, with_answers  # noqa: E402
from strseq_tasks.learn.build import DEFAULT_PRETRAINED  # noqa: E402

COMPARED = ("exact_match", "harm", "coverage_at_99")


def answered_by_round(pool: Sequence[tuple[str, str]], rows: Sequence[dict]) -> dict[int, list[dict]]:
    """Round -> every answer given up to it, each with its pool ``id`` (recorded, or the first
    unused pool row holding the same input and target), from one order's rows of one cell."""
    rows_of = defaultdict(list)
    for i, pair in enumerate(pool):
        rows_of[tuple(pair)].append(i)
    used: set[int] = set()
    answered: list[dict] = []
    out = {}
    for row in sorted((r for r in rows if r["round"]), key=lambda r: r["round"]):
        for a in row["asked"]:
            i = a.get("id")
            if i is None:
                i = next(j for j in rows_of[(a["input"], a["target"])] if j not in used)
            used.add(i)
            answered.append({**a, "id": i})
        if row["retrained"]:
            out[row["round"]] = list(answered)
    return out


def settings_of(args: dict) -> LoopSettings:
    """The learning-loop settings a results file was run with."""
    options = dict(item.split("=", 1) for item in args.get("set") or [])
    pretrained = {None: DEFAULT_PRETRAINED, "none": None}.get(args.get("pretrained"), args.get("pretrained"))
    return LoopSettings(args["start"], args["reference"], args["rounds"], args["per_round"], args["test_size"],
                        args["threshold"], args["epochs"], args["max_minutes"], options, pretrained)


def ablate_cell(family: str, seed: int, rows: list[dict], settings: LoopSettings) -> list[dict]:
    """Per round with a rejection among the answers: the run's figures and those without them."""
    logging.basicConfig(level=logging.WARNING)
    column, _ = cell_column(family, seed, settings)
    ran = {r["round"]: r for r in rows}
    out = []
    for round_, answered in answered_by_round(column.pool, rows).items():
        rejected = sum(a["action"] == "reject" for a in answered)
        if not rejected:
            continue
        kept = [a for a in answered if a["action"] != "reject"]
        without, _ = scored(with_answers(column.start, kept), column, [], settings)
        record = {"family": family, "seed": seed, "round": round_, "decisions": len(answered),
                  "rejections": rejected, "with": {k: ran[round_][k] for k in METRICS},
                  "without": {k: without[k] for k in METRICS}, "replayed_with": None}
        if not out:  # the first such round: does the replay reproduce the run?
            again, _ = scored(with_answers(column.start, answered), column, [], settings)
            record["replayed_with"] = {k: again[k] for k in METRICS}
        out.append(record)
    return out


def table(records: Sequence[dict]) -> str:
    """Per family: rounds with rejections, rejections among the answers, and each metric with
    and without them (mean over those rounds and seeds)."""
    lines = ["| family | rounds with rejections | rejections (of answers) | "
             + " | ".join(f"{m} with / without" for m in COMPARED) + " |",
             "|---|---:|---:|" + "---:|" * len(COMPARED)]
    for family in [f for f in FAMILIES if any(r["family"] == f for r in records)]:
        mine = [r for r in records if r["family"] == family]
        cells = [f"{100 * statistics.fmean(r['with'][m] for r in mine):.1f} / "
                 f"{100 * statistics.fmean(r['without'][m] for r in mine):.1f}" for m in COMPARED]
        lines.append(f"| {family} | {len(mine)} | {sum(r['rejections'] for r in mine)} "
                     f"({sum(r['decisions'] for r in mine)}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="a learning-loop results file")
    parser.add_argument("--jobs", type=int, default=2, help="cells run in parallel (one core each)")
    args = parser.parse_args()
    if not args.results.is_file():
        print(f"error: no learning-loop results file {args.results}", file=sys.stderr)
        raise SystemExit(2)
    run = json.loads(args.results.read_text())
    settings = settings_of(run["args"])
    cells = defaultdict(list)
    for row in run["rows"]:
        if row["order"] == "strseq":
            cells[(row["family"], row["seed"])].append(row)
    records: list[dict] = []
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(ablate_cell, f, s, rows, settings): (f, s) for (f, s), rows in cells.items()}
        for future in as_completed(futures):
            family, seed = futures[future]
            done = future.result()
            records += done
            print(f"{family} seed {seed}: {len(done)} rounds with rejections", flush=True)
    records.sort(key=lambda r: (list(FAMILIES).index(r["family"]), r["seed"], r["round"]))
    out = args.results.with_name(f"{args.results.stem}-rejections.json")
    out.write_text(json.dumps({"run": str(args.results), "args": run["args"], "rows": records}, indent=2))
    replays = [r for r in records if r["replayed_with"]]
    same = sum(r["replayed_with"]["exact_match"] == r["with"]["exact_match"] for r in replays)
    print(f"\n{table(records)}\n\nreplays that reproduced the run's exact match: {same} of {len(replays)}"
          f"\nwrote {out}")


if __name__ == "__main__":
    main()
