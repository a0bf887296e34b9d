"""A person's decisions about review rows, applied the way a cleaning run applies its changes.

``decide`` takes decisions about rows of ``strseq_review`` (approve the suggestion, reject it and
keep the original, or give the right value) and applies them under the column's job lock, in one
transaction per table and column: the changed values, their audit rows, the decision rows
(``strseq_decisions``: who, when, why) and the review rows' new status commit together or not at
all. Each application is a run in ``strseq_runs`` (``model_name`` "person"), so ``strseq revert
--run-id`` undoes it like any run, and no later cleaning run of any model touches a decided row
(``jobs.clean_plan.RowHistory``).

A decision about a row that changed since it was queued (its input, or its output column, is no
longer what the review row saw) is not applied: it is reported, and its review row stays open.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import sqlalchemy as sa

from strseq_tasks.data.db import (
    AUDIT,
    DECISIONS,
    REVIEW,
    RUNS,
    DatabaseJobError,
    job_tables,
    key_value,
    upgrade_job_tables,
    value_hash,
)
from strseq_tasks.data.locks import job_lock

log = logging.getLogger("strseq.review")

Action = Literal["approve", "reject", "edit"]
STATUS = {"approve": "approved", "reject": "rejected", "edit": "edited"}
PERSON = "person"  # strseq_runs.model_name of a run that applied people's decisions


@dataclass(frozen=True)
class Decision:
    review_id: int
    action: Action
    value: str | None = None  # edit: the right value


@dataclass
class Decided:
    """What ``decide`` did (or, in a dry run, would do)."""

    dry_run: bool
    runs: list[str] = field(default_factory=list)  # one per table and column decided
    applied: list[int] = field(default_factory=list)  # review ids decided
    changed: int = 0  # values written
    refused: list[tuple[int, str]] = field(default_factory=list)  # (review id, why): left open


def decide(engine: sa.Engine, decisions: Sequence[Decision], by: str, note: str | None = None,
           schema: str | None = None, dry_run: bool = False) -> Decided:
    """Apply ``decisions`` (review ids must exist and be open: else nothing is applied)."""
    meta, t = job_tables(schema)
    if not sa.inspect(engine).has_table(REVIEW, schema=schema):
        raise DatabaseJobError("nothing to review in this database (no strseq cleaning run yet)")
    for d in decisions:
        if d.action not in STATUS:
            raise DatabaseJobError(f"unknown decision {d.action!r} (approve, reject or edit)")
        if d.action == "edit" and d.value is None:
            raise DatabaseJobError(f"editing review row {d.review_id} needs the right value")
    if not dry_run:
        meta.create_all(engine, checkfirst=True)
        upgrade_job_tables(engine, meta)
    wanted = {d.review_id: d for d in decisions}
    with engine.connect() as conn:
        found = conn.execute(sa.select(t[REVIEW], t[RUNS].c.key_column, t[RUNS].c.column_name.label("input_column"))
                             .join(t[RUNS], t[RUNS].c.run_id == t[REVIEW].c.run_id)
                             .where(t[REVIEW].c.id.in_(list(wanted)))).mappings().all()
    rows = {r["id"]: dict(r) for r in found}
    missing = sorted(set(wanted) - set(rows))
    if missing:
        raise DatabaseJobError(f"no review row {', '.join(map(str, missing[:10]))}: nothing was decided")
    closed = [(i, r["status"]) for i, r in rows.items() if r["status"] != "open"]
    if closed:
        listed = ", ".join(f"{i} ({status})" for i, status in sorted(closed)[:10])
        raise DatabaseJobError(f"review row(s) {listed} are not open any more: nothing was decided")
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows.values():
        groups[(r["table_name"], r["column_name"], r["key_column"], r["input_column"])].append(r)
    result = Decided(dry_run)
    now = dt.datetime.now(dt.UTC)
    for (table, column, key_column, input_column), group in sorted(groups.items()):
        user = _user_table(engine, table, key_column, input_column, column, schema)
        with job_lock(engine, table, column, schema), engine.begin() as conn:
            run_id = str(uuid.uuid4())
            ordered = [(r, wanted[r["id"]]) for r in sorted(group, key=lambda r: r["id"])]
            _apply_group(conn, t, user, run_id, ordered, by, note, now, result)
            if not dry_run:
                result.runs.append(run_id)
    return result


def _user_table(engine: sa.Engine, table: str, key: str, column: str, target: str, schema: str | None):
    try:
        reflected = sa.Table(table, sa.MetaData(schema=schema), autoload_with=engine)
    except sa.exc.NoSuchTableError:
        raise DatabaseJobError(f"table {table!r} no longer exists: its review rows cannot be decided") from None
    for name in {key, column, target}:
        if name not in reflected.c:
            raise DatabaseJobError(f"table {table!r} has no column {name!r} any more: its review rows cannot be "
                                   "decided")
    return reflected, reflected.c[key], reflected.c[column], reflected.c[target]


def _apply_group(conn: sa.Connection, t: dict, user: tuple, run_id: str, decisions: list[tuple[dict, Decision]],
                 by: str, note: str | None, now: dt.datetime, result: Decided) -> None:
    """One table and column's decisions, in the caller's transaction (a dry run only checks them)."""
    # long: per decision, the checks, the write and its audit row, the decision, the question's status
    table, key_col, source, target = user
    in_place, write = source.name == target.name, not result.dry_run
    if write:
        conn.execute(t[RUNS].insert().values(
            run_id=run_id, table_name=table.name, key_column=key_col.name, column_name=source.name,
            target_column=target.name, model_name=PERSON, params=json.dumps({"by": by, "note": note}),
            status="running", started=now, rows_read=0, changed=0, unchanged=0, review=0, skipped=0,
            already_done=0, conflicts=0, decided=0))
    changed = decided = refused = 0
    for review, d in decisions:
        key = key_value(review["key"])
        current = conn.execute(sa.select(source, target).where(key_col == key)).all()
        a = t[AUDIT]
        last = conn.execute(sa.select(a.c.new_value, a.c.reverted_at).where(
            a.c.table_name == table.name, a.c.column_name == target.name, a.c.key == review["key"])
            .order_by(a.c.id.desc()).limit(1)).first()
        why = _stale(review, current, in_place, last)
        new = review["suggestion"] if d.action == "approve" else d.value if d.action == "edit" else None
        if why is None and d.action == "approve" and new is None:
            why = "it has no suggestion to approve (the input was too long for the model): edit it instead"
        if why is not None:
            result.refused.append((review["id"], why))
            refused += 1
            continue
        value, output = current[0]
        if new is not None and new != output and not write:
            changed += 1
        elif new is not None and new != output:
            where = [key_col == key, source == value, target.is_(None) if output is None else target == output]
            if conn.execute(sa.update(table).where(*where).values({target.name: new})).rowcount != 1:
                result.refused.append((review["id"], "the row changed while it was being decided"))
                refused += 1
                continue
            conn.execute(t[AUDIT].insert().values(
                run_id=run_id, table_name=table.name, key=review["key"], column_name=target.name, old_value=output,
                new_value=new, source_value=value, confidence=review["confidence"], model_name=PERSON,
                applied_at=now))
            changed += 1
        result.applied.append(review["id"])
        decided += 1
        if not write:
            continue
        right = new if new is not None else value
        conn.execute(t[DECISIONS].insert().values(
            table_name=table.name, column_name=target.name, key=review["key"], action=d.action,
            source_value=review["value"], value=right if d.action != "reject" else review["value"],
            suggestion=review["suggestion"], confidence=review["confidence"],
            value_hash=value_hash(right if in_place else value), review_id=review["id"], run_id=run_id,
            decided_by=by, note=note, decided_at=now, status="active"))
        # this row's question is answered: its open review rows (this one, older ones) close
        r = t[REVIEW]
        conn.execute(r.update().where(r.c.table_name == table.name, r.c.column_name == target.name,
                                      r.c.key == review["key"], r.c.status == "open", r.c.id != review["id"])
                     .values(status="superseded"))
        conn.execute(r.update().where(r.c.id == review["id"]).values(status=STATUS[d.action]))
    result.changed += changed
    if write:
        conn.execute(t[RUNS].update().where(t[RUNS].c.run_id == run_id).values(
            status="completed", finished=now, rows_read=len(decisions), changed=changed, decided=decided,
            conflicts=refused))
    log.info("%s.%s: %d decision(s) by %s applied (%d value(s) written), %d refused; run %s", table.name,
             target.name, decided, by, changed, refused, run_id)


def _stale(review: dict, current: list, in_place: bool, last: sa.Row | None) -> str | None:
    """Why the row no longer is what its review row asked about, if it is not. ``last``: strseq's
    last change of the column (None: none)."""
    if not current:
        return "the row is gone"
    if len(current) > 1:
        return "its key names several rows"
    value, output = current[0]
    if value != review["value"]:
        return f"its input changed since it was queued (now {value!r})"
    ours = last is not None and last.reverted_at is None and output == last.new_value
    if not in_place and output is not None and not ours:
        return f"its output column holds {output!r}, which strseq did not write (someone's value: kept)"
    return None

