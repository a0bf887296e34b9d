"""The review queue and what people decided, read from strseq's tables (``strseq review``).

``queue`` lists review rows by a ``QueueFilter`` (table, column, run, confidence range, text,
reason, status), most useful question first (``teaching_order``), ``review_item`` shows one with
its history, ``decision_pairs`` turns people's decisions into curated ``(input, target)``
pairs with their provenance, and ``with_decisions`` joins them to a retrain's pairs.
"""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from strseq_tasks.core.shapes import text_shape
from strseq_tasks.data.db import AUDIT, DECISIONS, REVIEW, DatabaseJobError, job_tables, present_columns

STATUSES = ("open", "approved", "rejected", "edited", "superseded", "reverted")
LEARNED = ("approve", "edit", "hand_edit", "reject")  # decisions that become pairs


@dataclass(frozen=True)
class QueueFilter:
    table: str | None = None
    column: str | None = None  # the output column (the input column, cleaning in place)
    run_id: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    text: str | None = None  # in the value or the suggestion, any case
    reason: str | None = None
    status: str = "open"  # or "all"
    ids: tuple[int, ...] = ()

    def where(self, r: sa.Table) -> list:
        if self.status not in (*STATUSES, "all"):
            raise DatabaseJobError(f"unknown status {self.status!r} (one of {', '.join(STATUSES)}, or all)")
        tests = [] if self.status == "all" else [r.c.status == self.status]
        for column, value in (("table_name", self.table), ("column_name", self.column), ("run_id", self.run_id),
                              ("reason", self.reason)):
            if value is not None:
                tests.append(r.c[column] == value)
        if self.min_confidence is not None:
            tests.append(r.c.confidence >= self.min_confidence)
        if self.max_confidence is not None:
            tests.append(r.c.confidence <= self.max_confidence)
        if self.text:
            tests.append(sa.or_(r.c.value.icontains(self.text, autoescape=True),
                                r.c.suggestion.icontains(self.text, autoescape=True)))
        if self.ids:
            tests.append(r.c.id.in_(self.ids))
        return tests


def teaching_order(rows: Sequence[dict]) -> list[dict]:
    """Review rows, the question whose answer teaches most first. A question stands for a group
    of rows of its table and column: a *shape* (``text_shape``: a layout), or a *new word* that
    more than one of the rows holds (``new_words``: a word no pair of the model showed, such as
    a surname particle, a unit or a brand the pairs never had), since what the model gets wrong
    is often a kind of value that cuts across layouts, and only an answer can teach it. Questions
    go to the groups in proportion to their rows, as seats go to parties by votes (D'Hondt: the
    next question goes to the group with the most rows per question its rows have had, a
    question counting for every group of its row; the larger group on a tie, a shape before a
    word), and within a group to its rows by confidence from the middle outward (``spread``), so
    a group's first answers are rows like most of it, not its odd ones out. Each row gets
    ``shape``, ``group`` (what its question stands for: the shape, or the word in quotes) and
    ``stands_for`` (that group's rows).

    Measured on the learning loop's development draws (docs/benchmarks.md, "The human loop"):
    one question per shape in turn spent the answers on rare layouts; each shape's least
    confident row first asked odd ones out; every shared word as a group asked about the words
    the pairs knew best (a brand in half the pairs); shapes and the new words won most rounds
    against a random order. Pure: rows in, rows out."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        row = {**row, "shape": text_shape(row["value"] or "")}
        where = (row["table_name"], row["column_name"])
        groups[(*where, "shape", row["shape"])].append(row)
        for word in sorted(set((row.get("new_words") or "").split())):
            groups[(*where, "word", word)].append(row)
    groups = {key: group for key, group in groups.items() if key[2] == "shape" or len(group) > 1}
    member: dict[int, list[tuple]] = defaultdict(list)  # id(row) -> the groups it belongs to
    for key, group in groups.items():
        by_confidence = sorted(group, key=lambda r: (_confidence(r), r["id"]))
        group[:] = [by_confidence[i] for i in spread(len(group))]
        for row in group:
            member[id(row)].append(key)
    asked = dict.fromkeys(groups, 0)  # questions each group's rows have had
    at = dict.fromkeys(groups, 0)  # each group's next row, in its own order
    # on a tie of rows per question and of size: a shape before a word, then by the group's first
    # question, least confident first (a group of one row: its row)
    rank = {key: n for n, key in enumerate(sorted(groups, key=lambda k: (
        k[2] != "shape", _confidence(groups[k][0]), groups[k][0]["id"], k)))}
    heap = [(-float(len(group)), -len(group), rank[key], key) for key, group in groups.items()]
    heapq.heapify(heap)
    done: set[int] = set()
    out = []
    while heap:
        per_question, *_, key = heapq.heappop(heap)
        group = groups[key]
        if per_question != -len(group) / (asked[key] + 1):
            continue  # stale: the group has had a question since this entry
        while at[key] < len(group) and id(group[at[key]]) in done:
            at[key] += 1
        if at[key] == len(group):
            continue  # every row of it asked, for other groups
        row = group[at[key]]
        done.add(id(row))
        out.append({**row, "group": f'"{key[3]}"' if key[2] == "word" else key[3], "stands_for": len(group)})
        for other in member[id(row)]:
            asked[other] += 1
            heapq.heappush(heap, (-len(groups[other]) / (asked[other] + 1), -len(groups[other]), rank[other], other))
    return out


def like_it(row: dict) -> str:
    """What a question stands for, in words: '3 more like it (Aa Aa)', '3 more with the new word
    "ó"'; '' for a question that stands for its row alone."""
    more = row.get("stands_for", 1) - 1
    if more < 1:
        return ""
    group = row.get("group", row.get("shape"))
    return f"{more} more with the new word {group}" if group.startswith('"') else f"{more} more like it ({group})"


def spread(n: int) -> list[int]:
    """0..n-1 as a sample that stays spread over the range: the middle first, then the middles of
    the halves, of the quarters, ... (a confidence-sorted shape is asked its typical row first,
    and its extremes only once the middle of each stretch has been asked)."""
    out, stretches = [], deque([(0, n)])
    while stretches:
        lo, hi = stretches.popleft()
        if lo < hi:
            mid = (lo + hi - 1) // 2
            out.append(mid)
            stretches += [(lo, mid), (mid + 1, hi)]
    return out


def _confidence(row: dict) -> float:
    return -1.0 if row["confidence"] is None else row["confidence"]


def _has_review(engine: sa.Engine, schema: str | None) -> bool:
    return sa.inspect(engine).has_table(REVIEW, schema=schema)


ORDERS = ("teach", "id")


def queue(engine: sa.Engine, where: QueueFilter, schema: str | None = None, limit: int | None = 50,
          offset: int = 0, order: str = "teach") -> tuple[int, list[dict]]:
    """(rows matching, the page of them from ``offset``): ``teach`` puts the most useful question
    first (``teaching_order``, over every matching row), ``id`` in the order they were queued."""
    if order not in ORDERS:
        raise DatabaseJobError(f"unknown order {order!r} (teach or id)")
    if not _has_review(engine, schema):
        return 0, []
    r = job_tables(schema)[1][REVIEW]
    query = sa.select(*present_columns(engine, r)).where(*where.where(r)).order_by(r.c.id)
    with engine.connect() as conn:
        if order == "id":
            total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
            return total, [dict(row) for row in conn.execute(query.offset(offset).limit(limit)).mappings()]
        rows = teaching_order([dict(row) for row in conn.execute(query).mappings()])
    return len(rows), rows[offset: None if limit is None else offset + limit]


def review_item(engine: sa.Engine, review_id: int, schema: str | None = None) -> dict:
    """One review row, with every review row, change and decision of the same table row."""
    total, rows = queue(engine, QueueFilter(status="all", ids=(review_id,)), schema)
    if not total:
        raise DatabaseJobError(f"no review row {review_id}")
    item = rows[0]
    _, t = job_tables(schema)
    same = lambda table: (table.c.table_name == item["table_name"],  # noqa: E731
                          table.c.column_name == item["column_name"], table.c.key == item["key"])
    with engine.connect() as conn:
        rows = lambda name: [dict(x) for x in conn.execute(  # noqa: E731
            sa.select(*present_columns(conn, t[name])).where(*same(t[name])).order_by(t[name].c.id)).mappings()]
        item["questions"], item["changes"] = rows(REVIEW), rows(AUDIT)
        item["decisions"] = rows(DECISIONS) if sa.inspect(conn).has_table(DECISIONS, schema=schema) else []
    return item


def decision_pairs(engine: sa.Engine, schema: str | None = None, table: str | None = None,
                   column: str | None = None, actions: Sequence[str] = LEARNED) -> list[dict]:
    """People's decisions in force as curated pairs: ``input`` (the value decided on), ``target``
    (the right value), and where each came from (table, column, key, action, who, when, note).
    A row decided twice gives its latest decision only."""
    if not sa.inspect(engine).has_table(DECISIONS, schema=schema):
        return []
    d = job_tables(schema)[1][DECISIONS]
    query = sa.select(*present_columns(engine, d)).where(d.c.status == "active", d.c.action.in_(list(actions)))
    if table is not None:
        query = query.where(d.c.table_name == table)
    if column is not None:
        query = query.where(d.c.column_name == column)
    latest: dict[tuple, dict] = {}
    with engine.connect() as conn:
        for row in conn.execute(query.order_by(d.c.id)).mappings():
            latest[(row["table_name"], row["column_name"], row["key"])] = dict(row)
    return [{"input": row["source_value"], "target": row["value"], "table": row["table_name"],
             "column": row["column_name"], "key": row["key"], "action": row["action"],
             "decided_by": row["decided_by"], "decided_at": row["decided_at"], "note": row["note"]}
            for row in latest.values() if row["source_value"] is not None and row["value"] is not None]


def with_decisions(frame: pd.DataFrame, decided: list[dict]) -> tuple[pd.DataFrame, int]:
    """The pairs and people's decisions (``review_queue.decision_pairs``) as one frame to validate
    and train on, and how many decisions it gained. A decision the pairs already hold is not added
    twice; one that gives an input another target than the pairs do stays, so validation's
    one-target-per-input rule names the conflict for the team to settle."""
    have = set(zip(frame["input"], frame["target"]))
    new = [d for d in decided if (d["input"], d["target"]) not in have]
    if not new:
        return frame, 0
    start = int(frame["row"].max()) + 1 if len(frame) else 1
    extra = pd.DataFrame({"row": range(start, start + len(new)), "input": [d["input"] for d in new],
                          "target": [d["target"] for d in new]})
    return pd.concat([frame, extra], ignore_index=True), len(new)
