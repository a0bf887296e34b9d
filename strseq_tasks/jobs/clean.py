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
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from strseq_tasks.data.db import (
    AUDIT,
    PROCESSED,
    REVIEW,
    RUNS,
    DatabaseJobError,
    UserTable,
    count_rows,
    create_engine,
    job_lock,
    job_tables,
    key_text,
    key_value,
    missing_output_column,
    read_batches,
    reflect_table,
)
from strseq_tasks.data.urls import MaskedUrl, mask_secrets
from strseq_tasks.jobs.clean_plan import (
    BatchPlan,
    Target,
    plan_batch,
    repeated_keys,
    select_rows,
)

log = logging.getLogger("strseq.clean")


class CleanParams(BaseModel):
    """One cleaning job (the ``strseq-clean`` flow's parameters); safe defaults: an output
    column, a 0.9 confidence gate, nothing written in place unless asked."""

    model_config = ConfigDict(extra="forbid")
    db: MaskedUrl = Field(description="SQLAlchemy URL of the database (sqlite:///..., postgresql+psycopg://...); "
                          "its JSON form (Prefect's flow-run parameters) hides the password")
    table: str
    key: str = Field(description="integer or text column that identifies a row (primary key or unique)")
    column: str = Field(description="text column to normalize")
    model: MaskedUrl = Field(description="model folder, or REGISTRY/NAME@production")
    output_column: str | None = Field(None, description="write here (default: COLUMN_clean) unless in_place")
    in_place: bool = Field(False, description="overwrite COLUMN itself (every old value is in the audit table)")
    create_output_column: bool = False
    threshold: float = Field(0.9, ge=0, le=1, description="apply predictions at least this confident")
    batch_size: int = Field(1000, ge=1, le=100_000)
    dry_run: bool = False
    db_schema: str | None = Field(None, description="database schema of the table (PostgreSQL)")
    threads: int | None = Field(None, ge=1, description="onnxruntime threads per partition (default 1: "
                                "use partitions for more cores)")
    precision: Literal["auto", "fp32", "int8"] = Field("auto", description="graphs to run: auto (the model's "
                                                       "int8 graphs when it has them, else fp32), fp32 or int8")
    partitions: int = Field(1, ge=1, le=1024, description="split the key range into this many partitions run "
                            "side by side (Prefect's thread pool, or Dask with dask_address)")
    dask_address: str | None = Field(None, description="run the partitions on the Dask cluster at this "
                                     "scheduler address (tcp://host:8786), or 'local' for a temporary cluster "
                                     "of one worker process per partition on this machine")
    min_non_null: float = Field(0.5, ge=0, le=1, description="validation: at least this share of values not NULL")
    min_within_length: float = Field(0.99, ge=0, le=1, description="validation: at least this share of values "
                                     "within the model's length limit (longer ones go to review)")

    @model_validator(mode="after")
    def _mode(self) -> CleanParams:
        if self.in_place and self.output_column:
            raise ValueError("give an output column or in_place, not both")
        return self

    def target_column(self) -> str | None:
        """The output column's name, or None when cleaning in place."""
        return None if self.in_place else (self.output_column or f"{self.column}_clean")


def preflight(params: CleanParams) -> None:
    """What can be checked before a run starts, writing nothing (the CLI calls it before Prefect
    starts, so a mistake is one clear line and no failed flow run): the model resolves (registry,
    name, alias or version), the database answers, and the table, its key and the columns can be
    cleaned as asked."""
    from strseq_tasks.serve.bundle import read_manifest
    from strseq_tasks.serve.registry import resolve_model

    read_manifest(resolve_model(params.model)[0])  # a folder that is not a model, or damaged
    engine = create_engine(params.db)
    try:
        user = reflect_table(engine, params.table, params.key, params.column, params.target_column(),
                             params.create_output_column, params.db_schema, dry_run=True)
    finally:
        engine.dispose()
    if user.target_missing and not params.create_output_column and not params.dry_run:
        raise missing_output_column(params.table, params.target_column())


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    version: int | None
    sha: str  # the bundle's manifest_sha256: "the same model" for idempotency


@dataclass
class RunReport:
    run_id: str
    dry_run: bool
    rows_read: int = 0
    changed: int = 0
    unchanged: int = 0
    review: int = 0
    skipped: int = 0  # NULL or empty values
    already_done: int = 0  # handled by this model version in an earlier run
    conflicts: int = 0  # changed by someone else between read and write: left alone
    sample: list[dict] = field(default_factory=list)  # some changes, with character diffs
    workers: list[str] = field(default_factory=list)  # host:pid of each process that cleaned a partition

    def counts(self) -> dict:
        return {k: v for k, v in asdict(self).items() if isinstance(v, int) and not isinstance(v, bool)}

    def add(self, other: RunReport, sample_size: int = 20) -> None:
        """Count in a range of the same run (a partition)."""
        for key, value in other.counts().items():
            setattr(self, key, getattr(self, key) + value)
        self.sample.extend(other.sample[:max(0, sample_size - len(self.sample))])
        self.workers.extend(w for w in other.workers if w not in self.workers)


class RepeatCache:
    """``predict`` that remembers the predictions of the last ``size`` distinct values, so a value
    repeated across batches (a common name, a status code, a date) is predicted once per run.
    Thread-safe: partitions on threads share one. The model is deterministic: a remembered
    prediction is the one a new call would give."""

    def __init__(self, predict: Callable[[list[str]], Sequence], size: int = 100_000):
        self.predict, self.size = predict, size
        self.memory: OrderedDict[str, object] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = 0

    def __call__(self, texts: list[str]) -> list:
        with self.lock:
            known = {t: self.memory[t] for t in texts if t in self.memory}
            for t in known:
                self.memory.move_to_end(t)
        new = list(dict.fromkeys(t for t in texts if t not in known))
        answers = dict(zip(new, self.predict(new))) if new else {}
        with self.lock:
            self.hits += len(texts) - len(new)
            for t, p in answers.items():
                self.memory[t] = p
            while len(self.memory) > self.size:
                self.memory.popitem(last=False)
        answers.update(known)
        return [answers[t] for t in texts]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def clean_table(engine: sa.Engine, user: UserTable, model: ModelIdentity,
                predict: Callable[[list[str]], Sequence], threshold: float = 0.9, batch_size: int = 1000,
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
                report: RunReport, threshold: float = 0.9, batch_size: int = 1000,
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
    done = _markers(engine, user, model, t, keys) if markers else {}
    selection = select_rows(rows, done, user.in_place)
    if selection.not_text:
        log.warning("%d value(s) of %s.%s or %s are not text (a BLOB, or bytes that are not UTF-8) and were left "
                    "alone, counted as skipped: keys %s", len(selection.not_text), user.table.name,
                    user.column.name, user.target.name,
                    ", ".join(selection.not_text[:10]) + (" ..." if len(selection.not_text) > 10 else ""))
    predictions = predict([r[1] for r in selection.todo]) if selection.todo else []
    target = Target(report.run_id, user.table.name, user.target.name, user.in_place,
                    getattr(user.target.type, "length", None), model.name, model.version, model.sha, threshold)
    plan = plan_batch(selection.todo, predictions, target, _now(), sample_size - len(report.sample))
    before = report.counts()
    report.rows_read += len(rows)
    report.skipped += selection.skipped
    report.already_done += selection.already_done
    report.unchanged += plan.unchanged
    report.review += plan.reviewed
    report.sample.extend(plan.sample)
    if not write:
        report.changed += len(plan.updates)
        return
    _apply(engine, user, model, t, plan, report, before, keys[-1])


def _markers(engine, user: UserTable, model: ModelIdentity, t, keys: list[str]) -> dict[str, tuple[str, str]]:
    """key -> (value hash, outcome) of this model version's markers on these keys."""
    p = t[PROCESSED]
    with engine.connect() as conn:
        return {key: (hashed, kind) for key, hashed, kind in conn.execute(
            sa.select(p.c.key, p.c.value_hash, p.c.outcome).where(
                p.c.table_name == user.table.name, p.c.column_name == user.target.name,
                p.c.model_sha == model.sha, p.c.key.in_(keys)))}


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
        if plan.review:
            conn.execute(t[REVIEW].insert(), plan.review)
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


def _md(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", "\\n")


def clean_report_markdown(params: CleanParams, model: ModelIdentity, report: RunReport) -> str:
    """What a person reads after a run (a Prefect artifact)."""
    where = f"{params.table}.{params.column}" + ("" if params.in_place else f" -> {params.target_column()}")
    title = "Dry run (nothing written)" if report.dry_run else f"Run `{report.run_id}`"
    version = f" version {model.version}" if model.version is not None else ""
    lines = [f"## {title}: {where}", "", f"Model {model.name}{version}; confidence threshold {params.threshold}.",
             "", "| rows | count |", "|---|---:|"]
    lines += [f"| {k.replace('_', ' ')} | {v} |" for k, v in report.counts().items()]
    if report.sample:
        lines += ["", "### Sample of changes" + (" that would be made" if report.dry_run else ""), "",
                  "| key | before | after | confidence | diff |", "|---|---|---|---:|---|"]
        lines += [f"| {_md(s['key'])} | {_md(s['before'])} | {_md(s['after'])} | {s['confidence']} | "
                  f"`{_md(s['diff'])}` |" for s in report.sample]
    if report.review:
        lines += ["", f"{report.review} row(s) wait in `strseq_review` (`strseq review --db ...`)."]
    if not report.dry_run and report.changed:
        lines += ["", f"Undo with `strseq revert --db ... --run-id {report.run_id}`."]
    return "\n".join(lines)


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
        run = conn.execute(sa.select(t[RUNS]).where(t[RUNS].c.run_id == run_id)).mappings().first()
    if run is None:
        raise DatabaseJobError(f"no run {run_id!r} in this database")
    if run["status"] == "reverted":
        raise DatabaseJobError(f"run {run_id} was already reverted")
    user_table, key_col, target = _run_table(engine, run, schema)
    with job_lock(engine, run["table_name"], run["target_column"], schema), engine.begin() as conn:
        audit = conn.execute(sa.select(t[AUDIT]).where(t[AUDIT].c.run_id == run_id,
                                                       t[AUDIT].c.reverted_at.is_(None))).mappings().all()
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
        now = _now()
        conn.execute(t[AUDIT].update().where(t[AUDIT].c.run_id == run_id, t[AUDIT].c.reverted_at.is_(None))
                     .values(reverted_at=now))
        conn.execute(t[PROCESSED].delete().where(t[PROCESSED].c.run_id == run_id))
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
