"""Normalize a database column safely: confidence gate, audit, review, exactly-once, revert.

``clean_table`` streams the table in key order, predicts a batch at a time with any
``predict(texts) -> predictions`` function (the onnxruntime ``Normalizer`` in production, an
identity function in the throughput benchmark), and writes each batch in one transaction: the
changed values, their audit rows, the review rows and the processed markers commit together or
not at all. A value is only overwritten if it still holds what was read (a concurrent edit is
left alone and counted as a conflict). ``revert_run`` restores a run's old values.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import sqlalchemy as sa

from strseq_tasks.data.batches import count_rows, read_batches
from strseq_tasks.data.db import (
    AUDIT,
    DECISIONS,
    PROCESSED,
    REVIEW,
    RUNS,
    DatabaseJobError,
    UserTable,
    job_tables,
    key_text,
    upgrade_job_tables,
)
from strseq_tasks.data.locks import job_lock
from strseq_tasks.data.urls import mask_secrets
from strseq_tasks.jobs.clean_plan import (
    BatchPlan,
    RowHistory,
    Target,
    found_decision,
    plan_batch,
    repeated_keys,
    select_rows,
)
from strseq_tasks.jobs.clean_report import ModelIdentity, RunReport
from strseq_tasks.params import THRESHOLD

log = logging.getLogger("strseq.clean")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def clean_table(engine: sa.Engine, user: UserTable, model: ModelIdentity,
                predict: Callable[[list[str]], Sequence], threshold: float = THRESHOLD.default, batch_size: int = 1000,
                dry_run: bool = False, run_id: str | None = None, key_range: tuple[object, object] | None = None,
                on_batch: Callable[[RunReport], None] | None = None, sample_size: int = 20,
                params: dict | None = None) -> RunReport:
    """Clean ``user.column`` into ``user.target`` in one process; returns the counts (``RunReport``)."""
    if dry_run:
        return clean_range(engine, user, model, predict, RunReport(run_id or str(uuid.uuid4()), True), threshold,
                           batch_size, key_range, on_batch, sample_size)
    with cleaning_run(engine, user, model, threshold, params, run_id) as report:
        clean_range(engine, user, model, predict, report, threshold, batch_size, key_range, on_batch, sample_size)
    return report


@contextlib.contextmanager
def cleaning_run(engine: sa.Engine, user: UserTable, model: ModelIdentity, threshold: float,
                 params: dict | None = None, run_id: str | None = None) -> Iterator[RunReport]:
    """A run around one or more ``clean_range`` calls (in this process or on a cluster): holds
    the column's lock throughout, records the run in ``strseq_runs`` and its final status.

    The caller adds each range's counts to the yielded report (``RunReport.add``).
    """
    report = RunReport(run_id or str(uuid.uuid4()), False)
    meta, t = job_tables(user.table.schema)
    _create_job_tables(engine, meta)
    table_name, column_name = user.table.name, user.target.name
    runs = t[RUNS]
    with job_lock(engine, table_name, column_name, user.table.schema):
        with engine.begin() as conn:
            # holding the lock proves no other run on this column is alive: one still marked
            # running was killed; its ranges (on a cluster, perhaps) must stop writing
            stale = conn.execute(runs.update().where(runs.c.table_name == table_name,
                                                     runs.c.target_column == column_name,
                                                     runs.c.status == "running")
                                 .values(status="interrupted", finished=_now()))
            if stale.rowcount:
                log.warning("%d earlier run(s) on %s.%s had been killed; marked interrupted (their applied "
                            "rows are kept and skipped now)", stale.rowcount, table_name, column_name)
            conn.execute(runs.insert().values(
                run_id=report.run_id, table_name=table_name, key_column=user.key.name, column_name=user.column.name,
                target_column=column_name, model_name=model.name, model_version=model.version, model_sha=model.sha,
                threshold=threshold, params=json.dumps(mask_secrets(params or {}), default=str), status="running",
                started=_now(), **report.counts()))
        try:
            yield report
        except BaseException as exc:
            try:
                with engine.begin() as conn:
                    conn.execute(runs.update().where(runs.c.run_id == report.run_id).values(
                        status="failed", finished=_now(), error=f"{type(exc).__name__}: {exc}"[:2000]))
            except sa.exc.SQLAlchemyError as unmarked:  # the database is what failed: say the real error
                log.error("could not mark run %s failed (%s); the next run on %s.%s marks it interrupted",
                          report.run_id, str(unmarked).strip().splitlines()[0], table_name, column_name)
            raise
        with engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == report.run_id).values(
                status="completed", finished=_now(), **report.counts()))


class RunNotActive(DatabaseJobError):
    """The run this range belongs to is no longer running (it failed or was interrupted)."""


def clean_range(engine: sa.Engine, user: UserTable, model: ModelIdentity, predict: Callable[[list[str]], Sequence],
                report: RunReport, threshold: float = THRESHOLD.default, batch_size: int = 1000,
                key_range: tuple[object, object] | None = None,
                on_batch: Callable[[RunReport], None] | None = None, sample_size: int = 20) -> RunReport:
    """Rows with ``lo < key <= hi`` (``key_range``; None: all), a batch per transaction, counted
    into ``report``. A real run's ranges need its ``cleaning_run`` to be in progress: each batch
    commits only while the run is marked running."""
    lo, hi = key_range or (None, None)
    # markers of earlier runs, if any, tell a dry run what a real run would skip
    markers = not report.dry_run or sa.inspect(engine).has_table(PROCESSED, schema=user.table.schema)
    t = job_tables(user.table.schema)[1]
    if _LISTENERS:
        _tell({"total": count_rows(engine, user, lo, hi)})
    for rows in read_batches(engine, user, batch_size, lo, hi):
        before = report.counts()
        _process_retrying(engine, user, model, predict, threshold, rows, report, t, sample_size,
                          write=not report.dry_run, markers=markers)
        if on_batch:
            on_batch(report)
        if _LISTENERS:
            _tell({k: v - before[k] for k, v in report.counts().items()})
    return report


# Progress listeners in this process (the CLI's progress bar): each gets {"total": rows} once per
# range, then each batch's counts. Ranges on other processes (Dask) only log.
_LISTENERS: list[Callable[[dict], None]] = []


@contextlib.contextmanager
def watch_progress(listener: Callable[[dict], None]) -> Iterator[None]:
    _LISTENERS.append(listener)
    try:
        yield
    finally:
        _LISTENERS.remove(listener)


def _tell(event: dict) -> None:
    for listener in list(_LISTENERS):
        listener(event)


# a batch whose connection the server dropped (restart, failover, pg_terminate_backend), or whose
# rows another session kept locked past LOCK_TIMEOUT_S, is tried again: its transaction was rolled
# back, or (a connection lost at commit) it committed and its markers make it a no-op
BATCH_RETRIES = 3
RETRY_WAIT_S = 0.5  # doubled after each try
LOCK_TIMEOUT_S = 30.0  # PostgreSQL lock_timeout per batch; SQLite's busy timeout is the engine's (db.py)


class BatchLocked(DatabaseJobError):
    """Another session kept a batch's rows (or the table) locked through every try."""


class NotWritable(DatabaseJobError):
    """The connection may read but not write what a run must write (read-only database or role)."""


class RowsRefused(DatabaseJobError):
    """The database refused a batch's writes (a unique or check constraint on the output column, a
    trigger, a value its type cannot hold): the batch was rolled back."""


class KeyNotUnique(DatabaseJobError):
    """An update by key matched more than one row: the key does not name rows alone after all."""


def _create_job_tables(engine: sa.Engine, meta: sa.MetaData) -> None:
    for attempt in range(3):
        try:
            meta.create_all(engine, checkfirst=True)
            added = upgrade_job_tables(engine, meta)
            if added:
                log.info("added to strseq's tables what this version keeps: %s", ", ".join(added))
            return
        except sa.exc.DBAPIError as exc:
            if _not_writable(exc):
                raise NotWritable(f"cannot create strseq's tables ({_first_line(exc)}): a cleaning run writes "
                                  "strseq_runs, strseq_audit, strseq_review and strseq_processed beside the table; "
                                  "nothing was written (use --dry-run to see what would change without writing)"
                                  ) from exc
            if attempt == 2:
                raise
            # another run (another column's) created them at the same moment: look again
            log.info("strseq's tables were being created by another run at the same time (%s); checking again",
                     _first_line(exc))


def _first_line(exc: sa.exc.DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0]


def _not_writable(exc: sa.exc.DBAPIError) -> bool:
    # PostgreSQL insufficient_privilege / read_only_sql_transaction; SQLite opened read-only
    return getattr(exc.orig, "sqlstate", None) in ("42501", "25006") or "readonly database" in str(exc.orig)


def _lock_timed_out(exc: sa.exc.DBAPIError) -> bool:
    if getattr(exc.orig, "sqlstate", None) == "55P03":  # PostgreSQL lock_not_available
        return True
    return "database is locked" in str(exc.orig)  # SQLite, after its busy timeout


def _process_retrying(engine, user, model, predict, threshold, rows, report: RunReport, t, sample_size: int,
                      write: bool, markers: bool) -> None:
    span = f"keys {key_text(rows[0][0])} to {key_text(rows[-1][0])}"
    for attempt in range(BATCH_RETRIES + 1):
        counts, sampled = report.counts(), len(report.sample)
        try:
            return _process(engine, user, model, predict, threshold, rows, report, t, sample_size, write, markers)
        except sa.exc.DBAPIError as exc:
            if _not_writable(exc):
                raise NotWritable(f"cannot write {user.table.name}.{user.target.name} or strseq's tables "
                                  f"({_first_line(exc)}): nothing of this batch ({span}) was written") from exc
            locked = _lock_timed_out(exc)
            if isinstance(exc, sa.exc.IntegrityError | sa.exc.DataError):  # a constraint, a trigger, a type
                raise RowsRefused(f"the database refused a change to {user.table.name}.{user.target.name} "
                                  f"({span}): {_first_line(exc)}. Nothing of this batch was written; batches "
                                  "before it are applied and audited (strseq revert undoes them)") from exc
            if not (exc.connection_invalidated or locked):
                raise
            if attempt == BATCH_RETRIES:
                if locked:
                    raise BatchLocked(
                        f"the rows of {user.table.name} ({span}) stayed locked by another session through "
                        f"{BATCH_RETRIES + 1} tries: nothing of this batch was written (batches before it are "
                        f"applied; a re-run continues from here). {_first_line(exc)}") from exc
                raise
            for key, value in counts.items():  # this batch counts once, when it goes through
                setattr(report, key, value)
            del report.sample[sampled:]
            wait = RETRY_WAIT_S * 2**attempt
            what = "another session held a lock on its rows" if locked else "lost the database connection"
            log.warning("%s during a batch (%s): %s; trying it again in %.1f s (%d of %d)", what, span,
                        _first_line(exc), wait, attempt + 1, BATCH_RETRIES)
            time.sleep(wait)


def _process(engine, user: UserTable, model: ModelIdentity, predict, threshold, rows, report: RunReport, t,
             sample_size: int, write: bool, markers: bool = True) -> None:
    """One batch: read this model version's markers, sort the rows and plan the batch
    (``clean_plan``, pure), then apply the plan in one transaction (``_apply``)."""
    keys = [key_text(r[0]) for r in rows]
    twice = repeated_keys(keys)
    if twice:
        raise KeyNotUnique(f"{user.table.name}.{user.key.name} holds the key(s) {', '.join(twice[:5])} on several "
                           "rows: it does not name one row (a constraint that does not hold?). Nothing of this "
                           "batch was written; earlier batches are applied and audited (strseq revert undoes them)")
    # no strseq tables yet (a dry run): every value in an output column is someone else's
    done, history = _history(engine, user, model, t, keys) if markers else ({}, RowHistory())
    selection = select_rows(rows, done, user.in_place, history)
    if selection.not_text:
        log.warning("%d value(s) of %s.%s or %s are not text (a BLOB, or bytes that are not UTF-8) and were left "
                    "alone, counted as skipped: keys %s", len(selection.not_text), user.table.name,
                    user.column.name, user.target.name,
                    ", ".join(selection.not_text[:10]) + (" ..." if len(selection.not_text) > 10 else ""))
    predictions = predict([r[1] for r in selection.todo]) if selection.todo else []
    target = Target(report.run_id, user.table.name, user.target.name, user.in_place,
                    getattr(user.target.type, "length", None), model.name, model.version, model.sha, threshold,
                    model.familiar)
    now = _now()
    plan = plan_batch(selection.todo, predictions, target, now, sample_size - len(report.sample), selection.redecide)
    plan.decisions = [found_decision(target, *found, now) for found in selection.found]
    before = report.counts()
    report.rows_read += len(rows)
    report.skipped += selection.skipped
    report.already_done += selection.already_done
    report.decided += selection.decided
    report.unchanged += plan.unchanged
    report.review += plan.reviewed
    report.by_program += sum(getattr(p, "by", None) == "program" for p in predictions)
    report.sample.extend(plan.sample)
    if not write:
        report.changed += len(plan.updates)
        return
    _apply(engine, user, model, t, plan, report, before, keys[-1])


def _history(engine, user: UserTable, model: ModelIdentity, t, keys: list[str]
             ) -> tuple[dict[str, tuple[str, str]], RowHistory]:
    """This model version's markers on these keys (key -> (value hash, outcome)), and what else
    strseq's tables know of them: decisions in force, strseq's last change, open review rows."""
    def rows(conn: sa.Connection, table: sa.Table, *columns: str, where=()) -> list:
        """(key, *columns) of ``table``'s rows about these keys of this column, oldest first."""
        return conn.execute(sa.select(*(table.c[c] for c in ("key", *columns))).where(
            table.c.table_name == user.table.name, table.c.column_name == user.target.name, table.c.key.in_(keys),
            *where).order_by(*(table.c.id,) if "id" in table.c else ())).all()

    p, a, r, d = t[PROCESSED], t[AUDIT], t[REVIEW], t[DECISIONS]
    with engine.connect() as conn:
        done = {k: (hashed, kind) for k, hashed, kind in rows(conn, p, "value_hash", "outcome",
                                                              where=[p.c.model_sha == model.sha])}
        written = {k: (old, new, gone is not None) for k, old, new, gone in
                   rows(conn, a, "old_value", "new_value", "reverted_at")}
        reviewing = dict(rows(conn, r, "value", where=[r.c.status == "open"]))
        # (a dry run on a database from before the decisions has no such table)
        has_decisions = sa.inspect(conn).has_table(DECISIONS, schema=user.table.schema)
        decided = dict(rows(conn, d, "value_hash", where=[d.c.status == "active"])) if has_decisions else {}
    return done, RowHistory(decided, written, reviewing)


def _apply(engine, user: UserTable, model: ModelIdentity, t, plan: BatchPlan, report: RunReport, before: dict,
           last_key: str) -> None:
    """The plan in one transaction: all of it or none of it. An update changes its row only if it
    still holds what was read (else it is a conflict: no audit row, no marker); an update that
    touches other than one row, or a run no longer marked running, rolls the batch back."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # wait this long for a row another session holds, then retry
            conn.execute(sa.text(f"SET LOCAL lock_timeout = '{int(LOCK_TIMEOUT_S * 1000)}ms'"))
        applied = set()
        for key, source, old, new in plan.updates:
            where = [user.key == key, user.column == source]
            if not user.in_place:
                where.append(user.target.is_(None) if old is None else user.target == old)
            result = conn.execute(sa.update(user.table).where(*where).values({user.target.name: new}))
            if result.rowcount == 1:
                applied.add(key_text(key))
            elif result.rowcount == 0:  # edited since it was read: left alone
                report.conflicts += 1
            else:  # raising rolls the whole batch back: no row changes without its audit row
                raise KeyNotUnique(
                    f"the update of {user.table.name} where {user.key.name} = {key_text(key)} matched "
                    f"{result.rowcount} rows: {user.key.name} does not name one row (a collation or a constraint "
                    "that does not hold?). Nothing of this batch was written; earlier batches are applied and "
                    "audited (strseq revert undoes them)")
        audit = [a for a in plan.audit if a["key"] in applied]
        conflicted = {key_text(u[0]) for u in plan.updates} - applied
        markers = [m for m in plan.markers if m["key"] not in conflicted]
        if audit:
            conn.execute(t[AUDIT].insert(), audit)
        review = t[REVIEW]
        # a new question about a row replaces its open one, and so does a change this (surer) model
        # applied to it; a person's value found answers it
        for status, asked in (("superseded", [r["key"] for r in plan.review] + sorted(applied)),
                              ("edited", [d["key"] for d in plan.decisions])):
            if asked:
                conn.execute(review.update().where(review.c.table_name == user.table.name,
                                                   review.c.column_name == user.target.name,
                                                   review.c.key.in_(asked), review.c.status == "open")
                             .values(status=status))
        if plan.review:
            conn.execute(review.insert(), plan.review)
        if plan.decisions:
            conn.execute(t[DECISIONS].insert(), plan.decisions)
        if markers:
            conn.execute(t[PROCESSED].delete().where(
                t[PROCESSED].c.table_name == user.table.name, t[PROCESSED].c.column_name == user.target.name,
                t[PROCESSED].c.model_sha == model.sha, t[PROCESSED].c.key.in_([m["key"] for m in markers])))
            conn.execute(t[PROCESSED].insert(), markers)
        report.changed += len(applied)
        runs = t[RUNS]
        delta = {k: runs.c[k] + (v - before[k]) for k, v in report.counts().items()}
        active = conn.execute(runs.update().where(runs.c.run_id == report.run_id, runs.c.status == "running")
                              .values(last_key=last_key, **delta))
        if active.rowcount != 1:  # raising rolls this batch back
            raise RunNotActive(f"run {report.run_id} is not running any more (failed or interrupted): "
                               "this batch was not applied")


