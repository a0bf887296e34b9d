"""The human loop (issue 22): does answering the review queue teach the model, and does strseq's
order of the queue teach faster than a random one?

    .venv/bin/python benchmarks/learning_loop.py                     # 7 families, seeds 0 1 2, 4 rounds of 25
    .venv/bin/python benchmarks/learning_loop.py --dev               # development seeds (100 101 102)
    .venv/bin/python benchmarks/learning_loop.py --families dates --seeds 100 --per-round 5 --rounds 2
    .venv/bin/python benchmarks/learning_loop.py --compare A.json B.json   # two versions of the order, round by round

Each cell (family, seed) draws one column benchmark split (``benchmarks.columns.draw``) and cuts
its test column in two by a hash of the clean value: the *pool* is the column being cleaned (the
review queue comes from it and the simulated reviewer answers from it), the *evaluation* half is
never reviewed, and every model is scored there only. Then:

- round 0 trains on the first ``--start`` training pairs through the product path
  (``benchmarks.accuracy.strseq_model``), predicts the pool, and queues the rows the cleaning job
  would (``jobs.clean_plan.outcome``: a change below the threshold, or an input too long);
- each round the reviewer answers the first ``--per-round`` questions with the true value, in the
  product's order (``jobs.review_queue.teaching_order``) or in a seeded random order of the same
  queue; the answers join the pairs as ``strseq retrain --decisions`` joins them
  (``review_queue.with_decisions``), a model is trained again (from the pretrained model, as a
  retrain does), the evaluation half is scored, and the pool's open rows are predicted for the
  next queue (answered rows have left it: no run touches a decided row);
- the reference trains on the first ``--reference`` pairs of the same draw (pairs a team curated,
  not chosen by any queue) and is scored on the same evaluation half.

Targets (issue 22): with at most 100 decisions the loop (strseq's order) reaches the reference's
exact match, and strseq's order beats the random order at every round, over the seeds.

Writes ``benchmarks/results/learning_loop/<name>.json`` after every cell (``--resume`` keeps the
cells already there) and ``.png``; prints markdown tables.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from benchmarks.accuracy import model_sizes, strseq_model, train_config  # noqa: E402
from benchmarks.column_accuracy import (  # noqa: E402
    DEV_SEEDS,
    REPORT_SEEDS,
    SAME_RUN,
    _mean_spread,
    breakdown,
    pretrained_sha256,
    write_results,
)
from benchmarks.column_accuracy import (
    earlier_cells as column_earlier_cells,
)
from benchmarks.columns import FAMILIES, draw  # noqa: E402
from strseq_tasks.core.metrics import summarize  # noqa: E402
from strseq_tasks.core.words import WordTreatment  # noqa: E402
from strseq_tasks.jobs.clean_plan import REVIEWED, new_words, outcome  # noqa: E402
from strseq_tasks.jobs.review_queue import teaching_order, with_decisions  # noqa: E402
from strseq_tasks.learn.build import DEFAULT_PRETRAINED  # noqa: E402
from strseq_tasks.params import THRESHOLD  # noqa: E402
from strseq_tasks.serve.runtime import STATUS_TOO_LONG, Prediction  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "learning_loop"
ORDERS = ("strseq", "random")  # teaching_order, and a seeded shuffle of the same queue
REFERENCE = "reference"
METRICS = ("exact_match", "harm", "coverage_at_99", "cer", "ece")
POOL_SALT = "strseq-learning-loop-v1"
BUDGET = 100  # decisions within which the loop must reach the reference
# what makes two runs' cells comparable: the column benchmark's options and the loop's
LOOP_SAME_RUN = (*SAME_RUN, "start", "reference", "rounds", "per_round", "threshold")

Pair = tuple[str, str]


@dataclass(frozen=True)
class LoopSettings:
    start: int = 50  # training pairs round 0 learns from
    reference: int = 200  # pairs of the same draw the loop must reach
    rounds: int = 4
    per_round: int = 25  # questions the reviewer answers per round
    test_size: int = 2000  # the test column, cut into the pool and the evaluation half
    threshold: float = THRESHOLD.default  # the cleaning job's: below it a change goes to review
    epochs: int = 40
    max_minutes: float | None = None
    options: dict[str, str] = field(default_factory=dict)  # --set, as in benchmarks/accuracy.py
    pretrained: str | None = DEFAULT_PRETRAINED


@dataclass(frozen=True)
class Column:
    """One cell's column: the pairs round 0 starts from, the pool the queue comes from, and the
    evaluation half (with its column benchmark tags) nobody reviews."""

    family: str
    seed: int
    start: list[Pair]
    pool: list[Pair]
    evaluation: list[Pair]
    tags: list[dict]


@dataclass(frozen=True)
class Served:
    """What a round's served model said about the pool's open rows, and what its pairs did with
    their words (the bundle's ``decoding.words``: the review rows' ``new_words`` come from it, as in
    the cleaning job)."""

    predictions: list[Prediction]
    words: WordTreatment | None = None


# -- the pure parts -------------------------------------------------------------------------------
def in_pool(target: str) -> bool:
    """Which half of the test column a row falls in: a fixed hash of its clean value, so a value
    the reviewer answers is never scored under another spelling (dates and quantities repeat
    values in a column: 10-16% of rows share one)."""
    return hashlib.sha256(f"{POOL_SALT}:{target}".encode()).digest()[0] < 128


def split_column(test: Sequence[Pair], tags: Sequence[dict]) -> tuple[list[Pair], list[Pair], list[dict]]:
    """(pool, evaluation half, the evaluation half's tags), each in the column's order."""
    pool = [pair for pair in test if in_pool(pair[1])]
    kept = [i for i, pair in enumerate(test) if not in_pool(pair[1])]
    return pool, [test[i] for i in kept], [tags[i] for i in kept]


def review_queue(pool: Sequence[Pair], predictions: Mapping[int, Prediction], threshold: float,
                 answered: Iterable[int] = (), table: str = "column", words: WordTreatment | None = None) -> list[dict]:
    """The open questions about the pool, as the cleaning job queues them (``clean_plan.outcome``)
    and as ``strseq_review`` holds them: ``predictions`` by pool index; answered rows never
    come back (a decided row is left alone by every later run)."""
    decided = set(answered)
    queue = []
    for i, prediction in sorted(predictions.items()):
        value = pool[i][0]
        if i in decided or outcome(value, prediction, threshold) not in REVIEWED:
            continue
        queue.append({"id": i, "table_name": table, "column_name": "value", "value": value,
                      "suggestion": None if prediction.status == STATUS_TOO_LONG else prediction.text,
                      "confidence": prediction.confidence, "new_words": new_words(value, words)})
    return queue


def ordered(queue: Sequence[dict], order: str, key: str) -> list[dict]:
    """The queue as the reviewer meets it: strseq's teaching order, or shuffled by ``key``."""
    if order == "strseq":
        return teaching_order(queue)
    if order != "random":
        raise ValueError(f"unknown order {order!r} (one of {', '.join(ORDERS)})")
    shuffled = list(queue)
    random.Random(key).shuffle(shuffled)
    return shuffled


def answer(question: dict, truth: str) -> dict:
    """The simulated reviewer's decision: the true value, as the action a person takes in
    ``strseq review`` (approve the suggestion, reject it and keep the value, or edit)."""
    action = ("approve" if question["suggestion"] == truth else
              "reject" if question["value"] == truth else "edit")
    return {"id": question["id"], "input": question["value"], "target": truth, "action": action,
            "confidence": question["confidence"]}


def with_answers(pairs: Sequence[Pair], decisions: Iterable[dict]) -> list[Pair]:
    """The pairs and the decisions as one training set, joined as a retrain joins them
    (``with_decisions``), the decisions in pool order: the same answers give the same training
    set whichever order asked them."""
    frame = pd.DataFrame({"row": range(1, len(pairs) + 1), "input": [a for a, _ in pairs],
                          "target": [b for _, b in pairs]})
    joined, _ = with_decisions(frame, sorted(decisions, key=lambda d: d["id"]))
    return list(zip(joined["input"], joined["target"]))


def _by_round(rows: Sequence[dict], family: str, order: str) -> dict[int, dict[int, dict]]:
    """round -> seed -> row."""
    out: dict[int, dict[int, dict]] = defaultdict(dict)
    for r in rows:
        if r["family"] == family and r["order"] == order:
            out[r["round"]][r["seed"]] = r
    return out


def family_means(rows: Sequence[dict]) -> list[dict]:
    """The rows of one more "family", the mean of all of them: per order, seed and round that every
    family has, the mean exact match over the families and the most decisions any of them made."""
    families = list(dict.fromkeys(r["family"] for r in rows))
    cells: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for r in rows:
        cells[(r["order"], r["seed"], r["round"])][r["family"]] = r
    return [{"family": f"mean of {len(families)}", "order": order, "seed": seed, "round": round_,
             "exact_match": statistics.fmean(r["exact_match"] for r in by_family.values()),
             "decisions": max(r["decisions"] for r in by_family.values())}
            for (order, seed, round_), by_family in cells.items() if len(by_family) == len(families)]


def verdicts(rows: Sequence[dict], budget: int = BUDGET) -> dict[str, dict]:
    """Per family, the issue's two targets on exact match, mean over the seeds: the loop (strseq's
    order) reaches the reference at some round with at most ``budget`` decisions (on every seed);
    strseq's order beats the random one at every round after 0 (and per seed and round: wins,
    ties, losses). ``None`` where the rows cannot say. With several families, the same for their
    mean (``family_means``: a seed's round is one figure, the mean of the families)."""
    out = {}
    if len({r["family"] for r in rows}) > 1:
        rows = [*rows, *family_means(rows)]
    for family in dict.fromkeys(r["family"] for r in rows):
        reference = [r["exact_match"] for r in rows if r["family"] == family and r["order"] == REFERENCE]
        loop, rand = _by_round(rows, family, "strseq"), _by_round(rows, family, "random")
        within = {n: statistics.fmean(r["exact_match"] for r in seeds.values())
                  for n, seeds in loop.items() if max(r["decisions"] for r in seeds.values()) <= budget}
        best = max(within, key=within.get) if within else None
        compared, score = [], {"wins": 0, "ties": 0, "losses": 0}
        for n in sorted(set(loop) & set(rand) - {0}):
            seeds = sorted(set(loop[n]) & set(rand[n]))
            if not seeds:
                continue
            a = [loop[n][s]["exact_match"] for s in seeds]
            b = [rand[n][s]["exact_match"] for s in seeds]
            compared.append(statistics.fmean(a) > statistics.fmean(b))
            for x, y in zip(a, b):
                score["wins" if x > y else "ties" if x == y else "losses"] += 1
        ref = statistics.fmean(reference) if reference else None
        out[family] = {
            "reference": ref, "best_round": best, "best": within.get(best),
            "reaches": None if ref is None or best is None else within[best] >= ref,
            "beats_every_round": all(compared) if compared else None, "rounds_compared": len(compared),
            **score}
    return out


# -- training and scoring (in the worker processes) -----------------------------------------------
def scored(pairs: Sequence[Pair], column: Column, open_inputs: Sequence[str],
           settings: LoopSettings) -> tuple[dict, Served]:
    """Train on ``pairs`` through the product path, score the evaluation half, and predict
    ``open_inputs`` (the pool's open rows) with the same served bundle."""
    cfg = train_config(column.seed, settings.epochs, settings.max_minutes, settings.options)
    outputs, confidence, extra = strseq_model(
        list(pairs), column.evaluation, cfg, settings.pretrained, sizes=model_sizes(settings.options),
        inspect=lambda served, _manifest: Served(served.normalize(list(open_inputs)), served.familiar.words))
    predictions = extra.pop("inspect")
    inputs, targets = [a for a, _ in column.evaluation], [b for _, b in column.evaluation]
    metrics = summarize(inputs, targets, outputs, confidence)
    correct = [o == t for o, t in zip(outputs, targets)]
    figures = {"pairs": len(pairs), **{k: metrics[k] for k in METRICS},
               **{k: extra[k] for k in ("train_seconds", "epochs", "precision")},
               "breakdown": breakdown(column.tags, correct, confidence)}
    return figures, predictions


def run_order(order: str, column: Column, first: dict, served: Served, settings: LoopSettings) -> list[dict]:
    """One order's rounds from round 0's model (``first``, and what it said of the whole pool)."""
    answered: dict[int, dict] = {}
    queue = review_queue(column.pool, dict(enumerate(served.predictions)), settings.threshold, table=column.family,
                         words=served.words)
    rows = [{"order": order, "round": 0, "decisions": 0, "queue": len(queue), "asked": [], "retrained": True,
             **first}]
    for round_ in range(1, settings.rounds + 1):
        asked = ordered(queue, order, f"{column.family}:{column.seed}:{round_}")[: settings.per_round]
        if not asked:  # the queue is empty: nothing to answer, nothing to retrain
            rows.append({**rows[-1], "round": round_, "asked": [], "retrained": False})
            continue
        decisions = [answer(q, column.pool[q["id"]][1]) for q in asked]
        answered.update((d["id"], d) for d in decisions)
        open_ids = [i for i in range(len(column.pool)) if i not in answered]
        figures, served = scored(with_answers(column.start, answered.values()), column,
                                 [column.pool[i][0] for i in open_ids], settings)
        queue = review_queue(column.pool, dict(zip(open_ids, served.predictions)), settings.threshold, answered,
                             column.family, served.words)
        asked_rows = [{k: d[k] for k in ("id", "input", "target", "action", "confidence")}
                      | {"stands_for": q.get("stands_for")} for d, q in zip(decisions, asked)]
        rows.append({"order": order, "round": round_, "decisions": len(answered), "queue": len(queue),
                     "asked": asked_rows, "retrained": True, **figures})
    return rows


def cell_column(family: str, seed: int, settings: LoopSettings) -> tuple[Column, list[Pair]]:
    """One cell's column, and the reference's pairs (the first ``settings.reference`` of the draw)."""
    split = draw(FAMILIES[family](), max(settings.start, settings.reference), settings.test_size, seed)
    pool, evaluation, tags = split_column(split.test, split.tags)
    # draw's pairs are drawn one by one from the seed: the first 50 of 200 are draw(size=50)'s
    return (Column(family, seed, split.train[: settings.start], pool, evaluation, tags),
            split.train[: settings.reference])


def evaluate_cell(family: str, seed: int, settings: LoopSettings) -> list[dict]:
    """The reference, round 0 (shared by both orders: one model, one queue), and each order's
    rounds on one (family, seed)."""
    logging.basicConfig(level=logging.WARNING)
    started = time.monotonic()
    column, reference_pairs = cell_column(family, seed, settings)
    pool = column.pool
    base = {"family": family, "seed": seed, "start": settings.start, "pool": len(pool),
            "evaluation": len(column.evaluation)}
    reference, _ = scored(reference_pairs, column, [], settings)
    first, served = scored(column.start, column, [a for a, _ in pool], settings)
    rows = [{**base, "order": REFERENCE, "round": None, "decisions": 0, **reference}]
    for order in ORDERS:
        rows += [{**base, **row} for row in run_order(order, column, first, served, settings)]
    seconds = round(time.monotonic() - started, 1)  # the whole cell: trainings, predictions, queues
    return [row | {"cell_seconds": seconds} for row in rows]


# -- the run, its file, its report ------------------------------------------------------------------
def run(families, seeds, settings: LoopSettings, jobs: int, done: dict[tuple, list[dict]],
        on_cell=None) -> None:
    """Every (family, seed) cell not in ``done``, ``jobs`` at a time (one single-threaded process
    each); ``on_cell(key, rows)`` runs as each ends, to save it before the next one."""
    wanted = [(f, s) for f in families for s in seeds]
    cells = [(f, s) for f, s in wanted if (f, settings.start, s) not in done]
    if len(cells) < len(wanted):
        print(f"reusing {len(wanted) - len(cells)} cells already measured; running {len(cells)}", flush=True)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(evaluate_cell, f, s, settings): (f, s) for f, s in cells}
        for future in as_completed(futures):
            family, seed = futures[future]
            try:
                rows = future.result()
            except Exception as exc:  # one failed cell must not lose the others
                print(f"| {family} | seed {seed} | FAILED: {exc!r} |", flush=True)
                continue
            if on_cell is not None:
                on_cell((family, settings.start, seed), rows)
            last = {r["order"]: r for r in rows}  # each order's last round
            print(f"| {family} | seed {seed} | "
                  + " | ".join(f"{o} {100 * last[o]['exact_match']:.1f} ({last[o]['decisions']} decisions)"
                               for o in (*ORDERS, REFERENCE))
                  + f" | {rows[0]['cell_seconds']:.0f} s |",
                  flush=True)


def earlier_cells(path: Path, args: dict) -> dict[tuple, list[dict]]:
    """The cells of an earlier run's results file, by (family, start, seed) (``--resume``)."""
    return column_earlier_cells(path, args, LOOP_SAME_RUN, size="start")


def curve_table(rows: Sequence[dict], metric: str, per_round: int, reference: int) -> str:
    """``metric`` per family and order at each round (mean over seeds, min-max), the reference
    beside; a round's mean decisions in brackets where the queue ran short of its nominal count."""
    rounds = sorted({r["round"] for r in rows if r["order"] != REFERENCE})
    lines = ["| family | order | " + " | ".join(f"{n * per_round}" for n in rounds) + f" | {reference} pairs |",
             "|---|---|" + "---:|" * (len(rounds) + 1)]
    for family in [f for f in FAMILIES if any(r["family"] == f for r in rows)]:
        ref = _mean_spread([r[metric] for r in rows if r["family"] == family and r["order"] == REFERENCE])
        for i, order in enumerate(ORDERS):
            curve = _by_round(rows, family, order)
            cells = []
            for n in rounds:
                seeds = list(curve.get(n, {}).values())
                text = _mean_spread([r[metric] for r in seeds]) if seeds else ""
                made = statistics.fmean(r["decisions"] for r in seeds) if seeds else n * per_round
                cells.append(text + (f" [{made:.0f}]" if made != n * per_round else ""))
            lines.append(f"| {family} | {order} | " + " | ".join(cells) + f" | {ref if i == 0 else ''} |")
    return "\n".join(lines)


def order_gaps(rows: Sequence[dict]) -> list[dict]:
    """Per round after 0, over every family and seed both orders ran: the mean exact match of each
    order, and the mean and standard deviation of one cell's difference (strseq minus random)."""
    loop = {(r["family"], r["seed"], r["round"]): r["exact_match"] for r in rows if r["order"] == "strseq"}
    rand = {(r["family"], r["seed"], r["round"]): r["exact_match"] for r in rows if r["order"] == "random"}
    out = []
    for n in sorted({k[2] for k in set(loop) & set(rand)} - {0}):
        cells = sorted(k for k in set(loop) & set(rand) if k[2] == n)
        gaps = [loop[k] - rand[k] for k in cells]
        out.append({"round": n, "cells": len(cells), "strseq": statistics.fmean(loop[k] for k in cells),
                    "random": statistics.fmean(rand[k] for k in cells), "gap": statistics.fmean(gaps),
                    "gap_sd": statistics.stdev(gaps) if len(gaps) > 1 else None})
    return out


def gap_table(rows: Sequence[dict], per_round: int) -> str:
    lines = ["| decisions | cells | strseq | random | difference, mean | difference, sd of one cell |",
             "|---:|---:|---:|---:|---:|---:|"]
    for g in order_gaps(rows):
        sd = "" if g["gap_sd"] is None else f"{100 * g['gap_sd']:.1f}"
        lines.append(f"| {g['round'] * per_round} | {g['cells']} | {100 * g['strseq']:.1f} | {100 * g['random']:.1f} | "
                     f"{100 * g['gap']:+.1f} | {sd} |")
    return "\n".join(lines)


def verdict_table(rows: Sequence[dict], reference: int) -> str:
    def yes(value) -> str:
        return "n/a" if value is None else "**yes**" if value else "no"

    lines = [f"| family | {reference} pairs exact % | loop's best within {BUDGET} decisions | reaches it | "
             "strseq order beats random at every round | per seed and round: wins / ties / losses |",
             "|---|---:|---:|---|---|---:|"]
    for family, v in verdicts(rows).items():
        best = "n/a" if v["best"] is None else f"{100 * v['best']:.1f} (round {v['best_round']})"
        ref = "n/a" if v["reference"] is None else f"{100 * v['reference']:.1f}"
        lines.append(f"| {family} | {ref} | {best} | {yes(v['reaches'])} | {yes(v['beats_every_round'])} "
                     f"({v['rounds_compared']} rounds) | {v['wins']} / {v['ties']} / {v['losses']} |")
    return "\n".join(lines)


def compare_orders(first: Sequence[dict], second: Sequence[dict],
                   metric: str = "exact_match") -> tuple[list[dict], list[str]]:
    """Two runs' strseq orders (two versions of ``teaching_order``) on the cells and rounds both
    measured, each against the random order: per family and round, the means over the seeds and
    each order's wins / ties / losses against random per seed. The random orders must agree (the
    same draws, answers and training: only the order differs); the family rounds where they do
    not (cells measured at commits that train differently) are left out and named."""
    out, differ = [], []
    for family in [f for f in FAMILIES if any(r["family"] == f for r in first)]:
        a, b = _by_round(first, family, "strseq"), _by_round(second, family, "strseq")
        ra, rb = _by_round(first, family, "random"), _by_round(second, family, "random")
        for n in sorted(set(a) & set(b) & set(ra) - {0}):
            seeds = sorted(set(a[n]) & set(b[n]) & set(ra[n]) & set(rb.get(n, {})))
            if not seeds:
                continue
            if any(abs(ra[n][s][metric] - rb[n][s][metric]) > 1e-9 for s in seeds):
                differ.append(f"{family} round {n}")
                continue
            rand = [ra[n][s][metric] for s in seeds]
            row = {"family": family, "round": n, "seeds": seeds, "random": statistics.fmean(rand)}
            for key, runs in (("first", a[n]), ("second", b[n])):
                mine = [runs[s][metric] for s in seeds]
                row[key] = statistics.fmean(mine)
                row[f"{key}_score"] = tuple(sum(f(x, y) for x, y in zip(mine, rand)) for f in (
                    lambda x, y: x > y, lambda x, y: x == y, lambda x, y: x < y))
            out.append(row)
    return out, differ


def compare_table(rows: Sequence[dict], first: str, second: str) -> str:
    lines = [f"| family | round | seeds | random | {first} | wins / ties / losses | {second} | wins / ties / losses |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['family']} | {r['round']} | {' '.join(map(str, r['seeds']))} | {100 * r['random']:.1f} | "
                     f"{100 * r['first']:.1f} | {' / '.join(map(str, r['first_score']))} | {100 * r['second']:.1f} | "
                     f"{' / '.join(map(str, r['second_score']))} |")
    totals = [tuple(sum(r[f"{k}_score"][i] for r in rows) for i in range(3)) for k in ("first", "second")]
    means = [statistics.fmean(r[k] for r in rows) if rows else float("nan") for k in ("random", "first", "second")]
    lines.append(f"| **all** | | | {100 * means[0]:.1f} | {100 * means[1]:.1f} | {' / '.join(map(str, totals[0]))} | "
                 f"{100 * means[2]:.1f} | {' / '.join(map(str, totals[1]))} |")
    return "\n".join(lines)


def plot(rows: Sequence[dict], path: Path) -> None:
    """One panel per family: exact match (solid) and coverage at 99% precision (dashed) against
    decisions, for both orders (mean over seeds, min-max bars on exact match); the reference
    as horizontal lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = [f for f in FAMILIES if any(r["family"] == f for r in rows)]
    fig, axes = plt.subplots(1, len(families), figsize=(3.6 * len(families), 3.6), squeeze=False)
    colours = {"strseq": "tab:blue", "random": "tab:orange", REFERENCE: "tab:gray"}
    for ax, family in zip(axes[0], families):
        for order in ORDERS:
            curve = _by_round(rows, family, order)
            x = [statistics.fmean(r["decisions"] for r in curve[n].values()) for n in sorted(curve)]
            em = [[100 * r["exact_match"] for r in curve[n].values()] for n in sorted(curve)]
            mean = [statistics.fmean(v) for v in em]
            ax.errorbar(x, mean, yerr=[[m - min(v) for m, v in zip(mean, em)], [max(v) - m for m, v in zip(mean, em)]],
                        marker="o", capsize=3, color=colours[order], label=f"{order} order: exact match")
            ax.plot(x, [100 * statistics.fmean(r["coverage_at_99"] for r in curve[n].values()) for n in sorted(curve)],
                    linestyle="--", marker=".", color=colours[order], label=f"{order} order: coverage at 99%")
        reference = [r for r in rows if r["family"] == family and r["order"] == REFERENCE]
        if reference:
            ax.axhline(100 * statistics.fmean(r["exact_match"] for r in reference), color=colours[REFERENCE],
                       label=f"{reference[0]['pairs']} pairs: exact match")
            ax.axhline(100 * statistics.fmean(r["coverage_at_99"] for r in reference), color=colours[REFERENCE],
                       linestyle="--", label=f"{reference[0]['pairs']} pairs: coverage at 99%")
        ax.set_title(family)
        ax.set_xlabel("decisions")
        ax.set_ylim(0, 100)
    axes[0][0].set_ylabel("% of the evaluation half")
    axes[0][-1].legend(loc="lower right", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def report(rows: Sequence[dict], per_round: int, reference: int) -> str:
    """The curves of exact match, coverage at 99% precision and harm, and the targets."""
    parts = [f"\n{title}, % of the evaluation half, by decisions (mean over seeds, min-max):\n\n"
             + curve_table(rows, metric, per_round, reference)
             for metric, title in (("exact_match", "exact match"), ("coverage_at_99", "coverage at 99% precision"),
                                   ("harm", "harm"))]
    return ("\n".join(parts) + "\n\nstrseq's order against random, every family and seed (exact match, %):\n\n"
            + gap_table(rows, per_round)
            + f"\n\nthe targets (exact match, mean over seeds):\n\n{verdict_table(rows, reference)}")


def default_name(args: argparse.Namespace, parser: argparse.ArgumentParser, options: dict[str, str]) -> str:
    """``loop`` (``dev`` for the development draws), then every option that is not the default."""
    loop_keys = ("start", "reference", "rounds", "per_round", "test_size", "threshold", "epochs", "max_minutes")
    return ("dev" if args.dev else "loop") + "".join(
        f"-{k}={getattr(args, k)}" for k in loop_keys if getattr(args, k) != parser.get_default(k)) + "".join(
        f"-{k}={v}" for k, v in sorted(options.items())).replace("/", "_") + (
        f"-pretrained-{Path(args.pretrained).name}" if args.pretrained else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default: 0 1 2 (--dev: 100 101 102)")
    parser.add_argument("--dev", action="store_true", help="the development draws (seeds 100-102)")
    parser.add_argument("--rounds", type=int, default=LoopSettings.rounds)
    parser.add_argument("--per-round", type=int, default=LoopSettings.per_round,
                        help="questions the reviewer answers per round")
    parser.add_argument("--start", type=int, default=LoopSettings.start, help="training pairs round 0 learns from")
    parser.add_argument("--reference", type=int, default=LoopSettings.reference,
                        help="pairs of the same draw the loop is measured against")
    parser.add_argument("--test-size", type=int, default=LoopSettings.test_size,
                        help="rows of the test column (about half pool, half evaluation)")
    parser.add_argument("--threshold", type=float, default=LoopSettings.threshold,
                        help="the cleaning job's threshold: changes below it go to review")
    parser.add_argument("--epochs", type=int, default=LoopSettings.epochs, help="maximum epochs (the train default)")
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a TrainConfig field or a model size, as in benchmarks/accuracy.py")
    parser.add_argument("--pretrained", default=None,
                        help="`default`, `none` (from scratch), a pretrained model or an LM folder "
                             "(default: the train default)")
    parser.add_argument("--jobs", type=int, default=2, help="cells run in parallel (one core each)")
    parser.add_argument("--name", default=None, help="results file name (default: from the options)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--resume", action="store_true",
                        help="keep the cells already in the results file (same options) and run only the others")
    parser.add_argument("--compare", nargs=2, type=Path, metavar="JSON",
                        help="two runs' strseq orders against the random order, round by round, and exit")
    args = parser.parse_args()
    if args.compare:
        first, second = (json.loads(path.read_text())["rows"] for path in args.compare)
        compared, differ = compare_orders(first, second)
        print(compare_table(compared, *(path.stem for path in args.compare)))
        if differ:
            print(f"\nnot compared, the random orders differ (measured at commits that train otherwise): "
                  f"{', '.join(differ)}")
        return
    logging.basicConfig(level=logging.WARNING)
    seeds = args.seeds or list(DEV_SEEDS if args.dev else REPORT_SEEDS)
    options = dict(item.split("=", 1) for item in args.set)
    train_config(0, args.epochs, args.max_minutes, options)  # fail fast on a bad --set
    model_sizes(options)
    pretrained = {None: DEFAULT_PRETRAINED, "none": None}.get(args.pretrained, args.pretrained)
    settings = LoopSettings(args.start, args.reference, args.rounds, args.per_round, args.test_size, args.threshold,
                            args.epochs, args.max_minutes, options, pretrained)
    name = args.name or default_name(args, parser, options)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{name}.json"
    meta = json.loads(json.dumps(vars(args) | {"out": str(args.out), "seeds": seeds,
                                                "pretrained_sha256": pretrained_sha256(pretrained)}, default=str))
    cells = earlier_cells(path, meta) if args.resume else {}
    meta["seeds"] = sorted({s for _, _, s in cells} | set(seeds))
    meta["families"] = [f for f in FAMILIES if f in {c[0] for c in cells} | set(args.families)]

    def save(key, rows):
        cells[key] = rows
        write_results(path, meta, cells)

    run(args.families, seeds, settings, args.jobs, cells, on_cell=save)
    if not cells:
        raise SystemExit("no cell finished")
    write_results(path, meta, cells)
    rows = json.loads(path.read_text())["rows"]
    print(report(rows, args.per_round, args.reference))
    plot(rows, args.out / f"{name}.png")
    print(f"\nwrote {path} and {name}.png ({len(cells)} cells)")


if __name__ == "__main__":
    main()
