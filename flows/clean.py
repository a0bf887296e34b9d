"""Scheduled database cleaning: normalize a column with a registry model, safely.

    from strseq_tasks.flows.clean import clean, CleanParams     # or flows/clean.py:clean
    clean(CleanParams(db="sqlite:///crm.db", table="customers", key="id", column="name",
                      model="models/names@production", output_column="name_clean"))

Orchestration only: the job is ``cleaning.clean_table`` / ``clean_range`` (per-batch
transactions, audit, review, exactly-once markers, a lock per column); this flow resolves the
model, validates the column, runs the job in one process or as partitions on a task runner
(threads, or a Dask cluster), and reports.
"""

from __future__ import annotations

import contextlib
import uuid

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait

from strseq_tasks.data.db import create_engine, reflect_table
from strseq_tasks.data.urls import mask_url
from strseq_tasks.flows import artifacts
from strseq_tasks.jobs import partitions as part
from strseq_tasks.jobs.clean import clean_table, cleaning_run
from strseq_tasks.jobs.clean_params import CleanParams
from strseq_tasks.jobs.clean_report import ModelIdentity, RunReport, clean_report_markdown
from strseq_tasks.jobs.program_store import load_programs, save_programs
from strseq_tasks.jobs.repeat_cache import RepeatCache
from strseq_tasks.tasks import report_validation, worth_retrying

# Timeouts: loading a model (a registry download) and validating a column (a few aggregate queries)
# fail within the hour when a registry or database stops answering. The cleaning itself has none:
# a table's size sets its length, and a run stopped part-way is finished by the next (markers).
LOAD_S = 600
VALIDATE_S = 3600
REVIEW_S = 300


@task(name="load-model", retries=2, retry_delay_seconds=2, retry_condition_fn=worth_retrying, cache_policy=NO_CACHE,
      timeout_seconds=LOAD_S)
def load_model(params: CleanParams):
    """The model, its identity, and a reference pinned to its version (partitions load that one
    even if production moves meanwhile)."""
    from strseq_tasks.serve.loading import open_model

    opened = open_model(params.model, params.threads, params.precision, programs=not params.no_programs)
    get_run_logger().info("model %s: %s (%s graphs)", mask_url(params.model), opened.label,
                          opened.normalizer.precision)
    identity = ModelIdentity(opened.name, opened.version, opened.sha, opened.normalizer.familiar)
    return opened.normalizer, identity, opened.pinned


@task(name="validate-column", cache_policy=NO_CACHE, timeout_seconds=VALIDATE_S)
def validate(params: CleanParams, max_len: int):
    """The records suite, computed in the database, before anything is written."""
    from strseq_tasks.data.validation import ColumnValidationError, validate_column

    engine = create_engine(params.db)
    try:
        user = _reflect(engine, params, dry_run=True)
        report = validate_column(engine, user.table, user.column, max_len, params.min_non_null,
                                 params.min_within_length)
    finally:
        engine.dispose()
    return report_validation(report, f"{_key(params)}-validation", f"validation of {params.table}.{params.column}",
                             ColumnValidationError)


@task(name="clean-column", cache_policy=NO_CACHE)
def run_job(params: CleanParams, normalizer, identity: ModelIdentity, rows: int = 0) -> RunReport:
    engine = create_engine(params.db)
    progress = artifacts.ColumnProgress(_key(params), rows, f"{params.table}.{params.column}")
    try:
        _load_programs(engine, params, identity, normalizer)
        report = clean_table(engine, _reflect(engine, params, params.dry_run), identity,
                             RepeatCache(lambda texts: normalizer.normalize(texts, batch_size=64)),
                             threshold=params.threshold, batch_size=params.batch_size, dry_run=params.dry_run,
                             on_batch=_progress(progress=progress),
                             params=params.model_dump(mode="json", exclude={"db"}))
        return _with_programs(engine, params, identity, report, normalizer)
    finally:
        engine.dispose()


def _load_programs(engine, params: CleanParams, identity: ModelIdentity, normalizer) -> None:
    if normalizer.programs is not None:
        load_programs(engine, params.db_schema, identity.sha, normalizer.programs)


def _with_programs(engine, params: CleanParams, identity: ModelIdentity, report: RunReport, normalizer) -> RunReport:
    """``report`` with the programs that answered rows (shown in its artifact), which are stored
    for the model's next run (not by a dry run: it writes nothing)."""
    if normalizer.programs is not None:
        report.programs = [p for p in normalizer.programs.summary()["shown"] if p["covered"]][:10]
        if not params.dry_run:
            save_programs(engine, params.db_schema, identity.sha, normalizer.programs)
    return report


@task(cache_policy=NO_CACHE, task_run_name="clean-partition-{partition.index}")
def clean_partition(params: CleanParams, model: str, identity: ModelIdentity, partition: part.Partition) -> RunReport:
    """One key range, wherever the task runner puts it (a thread here, a process on Dask)."""
    normalizer = part.load_pinned(model, identity.sha, params.threads or 1, params.precision, not params.no_programs)
    engine = create_engine(params.db)
    try:
        _load_programs(engine, params, identity, normalizer)
        report = part.run_partition(engine, _reflect(engine, params, params.dry_run), identity,
                                    RepeatCache(lambda texts: normalizer.normalize(texts, batch_size=64)), partition,
                                    params.threshold, params.batch_size, _progress(f"partition {partition.index}: "))
        return _with_programs(engine, params, identity, report, normalizer)
    finally:
        engine.dispose()


@flow(name="strseq-clean-partitions")
def clean_partitions(params: CleanParams, model: str, identity: ModelIdentity,
                     partitions: list[part.Partition]) -> list[RunReport]:
    futures = [clean_partition.submit(params, model, identity, p) for p in partitions]
    wait(futures)  # every partition has stopped before the run is closed and its lock released
    return [f.result() for f in futures]


def run_partitioned(params: CleanParams, model: str, identity: ModelIdentity) -> RunReport:
    engine = create_engine(params.db)
    try:
        user = _reflect(engine, params, params.dry_run)
        ranges = part.plan_partitions(engine, user, params.partitions)
        get_run_logger().info("%d partition(s) of %s: %s", len(ranges), params.key, part.describe(ranges))
        runner = part.task_runner(len(ranges), params.dask_address)
        subflow = clean_partitions.with_options(task_runner=runner)
        run = (contextlib.nullcontext(RunReport(str(uuid.uuid4()), True)) if params.dry_run else
               cleaning_run(engine, user, identity, params.threshold, params.model_dump(mode="json", exclude={"db"})))
        with run as report:  # a real run holds the column's lock until every partition has stopped
            for partition_report in subflow(params, model, identity, part.jobs(ranges, report)):
                report.add(partition_report)
        return report
    finally:
        engine.dispose()


@flow(name="strseq-clean")
def clean(params: CleanParams) -> dict:
    """Normalize TABLE.COLUMN with MODEL: changes above the threshold are applied and audited,
    the rest go to review; --dry-run reports what would change and writes nothing."""
    normalizer, identity, pinned = load_model(params)
    checked = validate(params, normalizer.max_len)
    if params.partitions > 1 or params.dask_address:
        report = run_partitioned(params, pinned, identity)
    else:
        report = run_job(params, normalizer, identity, checked.rows)
    artifacts.report(clean_report_markdown(params, identity, report), _key(params),
                     f"cleaning {params.table}.{params.column}")
    if report.review and not params.dry_run:
        review_head(params, report.run_id)
    get_run_logger().info("%s run %s: %s", "dry" if params.dry_run else "cleaning", report.run_id, report.counts())
    asked = ask_person(params, report.run_id) if params.ask_in_ui and report.review and not params.dry_run else {}
    return {"run_id": report.run_id, "dry_run": report.dry_run, **report.counts(), "sample": report.sample,
            "model": {"name": identity.name, "version": identity.version, "sha": identity.sha},
            "workers": report.workers, **asked}


def ask_person(params: CleanParams, run_id: str) -> dict:
    """Pause on the run's questions in Prefect's UI (``runner.ask``) and apply the answers."""
    from strseq_tasks.runner.ask import ask_in_ui

    engine = create_engine(params.db)
    try:
        asked, decided = ask_in_ui(engine, run_id, params.ask_in_ui, params.ask_timeout, params.db_schema)
    finally:
        engine.dispose()
    if decided is not None:
        get_run_logger().info("answered in the UI: %d decision(s), %d value(s) written, %d refused; %s", len(
            decided.applied), decided.changed, len(decided.refused), ", ".join(f"run {r}" for r in decided.runs)
            or "nothing written")
    return {"asked": asked, "answered": None if decided is None else len(decided.applied),
            "decision_runs": [] if decided is None else decided.runs}


@task(name="review-queue", retries=2, retry_delay_seconds=2, retry_condition_fn=worth_retrying, cache_policy=NO_CACHE,
      timeout_seconds=REVIEW_S)
def review_head(params: CleanParams, run_id: str) -> None:
    """The run's questions, most useful first, as a table artifact (all of them: ``strseq review``)."""
    from strseq_tasks.jobs.review_queue import QueueFilter, queue

    engine = create_engine(params.db)
    try:
        total, rows = queue(engine, QueueFilter(run_id=run_id), params.db_schema, limit=artifacts.REVIEW_HEAD)
    finally:
        engine.dispose()
    artifacts.review_table(rows, f"{_key(params)}-review", f"{params.table}.{params.column}: the {len(rows)} most "
                           f"useful of run {run_id}'s {total} question(s) (strseq review for all)")


def _key(params: CleanParams) -> str:
    return artifacts.column_key(params.table, params.column, params.db_schema)


def _reflect(engine, params: CleanParams, dry_run: bool):
    return reflect_table(engine, params.table, params.key, params.column, params.target_column(),
                         params.create_output_column, params.db_schema, dry_run=dry_run)


def _progress(prefix: str = "", progress: artifacts.ColumnProgress | None = None):
    logger = get_run_logger()

    def log(report: RunReport) -> None:
        logger.info("%srows read %d: changed %d, to review %d, unchanged %d, skipped %d, done before %d", prefix,
                    report.rows_read, report.changed, report.review, report.unchanged, report.skipped,
                    report.already_done)
        if progress is not None:
            progress(report.rows_read)

    return log
