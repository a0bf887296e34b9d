"""Undo a run: restore exactly the old values it wrote, in one transaction (``strseq revert``).

A cleaning run's open review rows close with it (status ``reverted``); a run of people's
decisions (``jobs.decide``) is undone like any other: its decisions stop being in force and their
review rows are open again. Values a person typed into the column, which a cleaning run found and
recorded, stay decided: reverting the run does not untype them.
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa

from strseq_tasks.data.db import (
    AUDIT,
    DECISIONS,
    PROCESSED,
    REVIEW,
    RUNS,
    DatabaseJobError,
    job_tables,
    key_value,
    present_columns,
)
from strseq_tasks.data.locks import job_lock

log = logging.getLogger("strseq.clean")


class RevertConflict(DatabaseJobError):
    """Values changed again since the run: reverting would overwrite someone's edit."""


def revert_run(engine: sa.Engine, run_id: str, schema: str | None = None) -> int:
    """Restore the old values of every change of ``run_id``, in one transaction; returns the count.

    Refuses (and changes nothing) if any of those values was changed again since the run.
    """
    meta, t = job_tables(schema)
    if not sa.inspect(engine).has_table(RUNS, schema=schema):
        raise DatabaseJobError("no strseq runs in this database")
    with engine.connect() as conn:
        run = conn.execute(sa.select(*present_columns(conn, t[RUNS])).where(t[RUNS].c.run_id == run_id)
                           ).mappings().first()
    if run is None:
        raise DatabaseJobError(f"no run {run_id!r} in this database")
    if run["status"] == "reverted":
        raise DatabaseJobError(f"run {run_id} was already reverted")
    user_table, key_col, target = _run_table(engine, run, schema)
    with job_lock(engine, run["table_name"], run["target_column"], schema), engine.begin() as conn:
        audit = conn.execute(sa.select(*present_columns(conn, t[AUDIT])).where(
            t[AUDIT].c.run_id == run_id, t[AUDIT].c.reverted_at.is_(None))).mappings().all()
        conflicts = []
        for row in audit:  # each restore must touch exactly its row, still holding what the run wrote
            key = key_value(row["key"])
            restored = conn.execute(sa.update(user_table).where(key_col == key, target == row["new_value"])
                                    .values({target.name: row["old_value"]}))
            if restored.rowcount != 1:
                conflicts.append((key, row["new_value"], restored.rowcount))
        if conflicts:  # raising rolls every restore back
            listed = "; ".join(f"key {k}: run wrote {n!r}, now {_current(conn, user_table, key_col, target, k, c)}"
                               for k, n, c in conflicts[:10])
            raise RevertConflict(f"{len(conflicts)} value(s) of run {run_id} changed since; nothing was reverted "
                                 f"({listed}{' ...' if len(conflicts) > 10 else ''})")
        now = dt.datetime.now(dt.UTC)
        conn.execute(t[AUDIT].update().where(t[AUDIT].c.run_id == run_id, t[AUDIT].c.reverted_at.is_(None))
                     .values(reverted_at=now))
        conn.execute(t[PROCESSED].delete().where(t[PROCESSED].c.run_id == run_id))
        review, decisions = t[REVIEW], t[DECISIONS]
        conn.execute(review.update().where(review.c.run_id == run_id, review.c.status == "open")
                     .values(status="reverted"))
        if sa.inspect(conn).has_table(DECISIONS, schema=schema):
            undone = decisions.c.run_id == run_id, decisions.c.status == "active", decisions.c.action != "hand_edit"
            reopened = sa.select(decisions.c.review_id).where(*undone, decisions.c.review_id.is_not(None))
            conn.execute(review.update().where(review.c.id.in_(reopened)).values(status="open"))
            conn.execute(decisions.update().where(*undone).values(status="reverted"))
        conn.execute(t[RUNS].update().where(t[RUNS].c.run_id == run_id).values(status="reverted"))
    log.info("reverted run %s: %d value(s) restored", run_id, len(audit))
    return len(audit)


def _run_table(engine: sa.Engine, run: dict, schema: str | None) -> tuple[sa.Table, sa.Column, sa.Column]:
    """The table and columns a run wrote, as they are now (clear errors if they are gone)."""
    name = run["table_name"]
    try:
        table = sa.Table(name, sa.MetaData(schema=schema), autoload_with=engine)
    except sa.exc.NoSuchTableError:
        raise DatabaseJobError(f"table {name!r} no longer exists, so run {run['run_id']} cannot be reverted "
                               "(its old values stay in strseq_audit)") from None
    for role, column in (("key", run["key_column"]), ("output", run["target_column"])):
        if column not in table.c:
            raise DatabaseJobError(f"table {name!r} has no {role} column {column!r} any more (dropped since the "
                                   f"run?), so run {run['run_id']} cannot be reverted; its old values stay in "
                                   "strseq_audit")
    return table, table.c[run["key_column"]], table.c[run["target_column"]]


def _current(conn: sa.Connection, table: sa.Table, key_col: sa.Column, target: sa.Column, key: object,
             matched: int) -> str:
    """What a conflicting row holds now, for the message."""
    if matched > 1:
        return f"{matched} rows have this key"
    try:
        values = conn.execute(sa.select(target).where(key_col == key)).scalars().all()
    except sa.exc.DBAPIError:  # SQLite: bytes that are not UTF-8
        return "a value that is not text"
    return repr(values[0]) if len(values) == 1 else "the row is gone" if not values else f"{len(values)} rows"
