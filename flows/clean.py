"""Scheduled database cleaning: normalize a column with a registry model, safely.

    from strseq_tasks.flows.clean import clean, CleanParams     # or flows/clean.py:clean
    clean(CleanParams(db="sqlite:///crm.db", table="customers", key="id", column="name",
                      model="models/names@production", output_column="name_clean"))

Orchestration only: the job is ``cleaning.clean_table`` (per-batch transactions, audit, review,
exactly-once markers, a lock per column); this flow resolves the model, runs it and reports.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from strseq_tasks.cleaning import CleanParams, ModelIdentity, clean_report_markdown, clean_table
from strseq_tasks.db import reflect_table
from strseq_tasks.tasks import report_validation


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def load_model(params: CleanParams):
    from strseq_tasks.registry import resolve_model
    from strseq_tasks.runtime import Normalizer

    path, name, version = resolve_model(params.model)
    normalizer = Normalizer(path, threads=params.threads)
    identity = ModelIdentity(name, version, normalizer.manifest["manifest_sha256"])
    get_run_logger().info("model %s: %s%s", params.model, name, f" version {version}" if version else "")
    return normalizer, identity


@task(cache_policy=NO_CACHE)
def validate(params: CleanParams, max_len: int):
    """The records suite, computed in the database, before anything is written."""
    import sqlalchemy as sa

    from strseq_tasks.validation import ColumnValidationError, validate_column

    engine = sa.create_engine(params.db)
    try:
        user = reflect_table(engine, params.table, params.key, params.column, params.target_column(),
                             params.create_output_column, params.db_schema, dry_run=True)
        report = validate_column(engine, user.table, user.column, max_len, params.min_non_null,
                                 params.min_within_length)
    finally:
        engine.dispose()
    return report_validation(report, "strseq-clean-validation", f"validation of {params.table}.{params.column}",
                             ColumnValidationError)


@task(cache_policy=NO_CACHE)
def run_job(params: CleanParams, normalizer, identity: ModelIdentity):
    import sqlalchemy as sa

    logger = get_run_logger()
    engine = sa.create_engine(params.db)
    try:
        user = reflect_table(engine, params.table, params.key, params.column, params.target_column(),
                             params.create_output_column, params.db_schema, dry_run=params.dry_run)

        def progress(report) -> None:
            logger.info("rows read %d: changed %d, to review %d, unchanged %d, skipped %d, done before %d",
                        report.rows_read, report.changed, report.review, report.unchanged, report.skipped,
                        report.already_done)

        return clean_table(engine, user, identity, lambda texts: normalizer.normalize(texts, batch_size=64),
                           threshold=params.threshold, batch_size=params.batch_size, dry_run=params.dry_run,
                           on_batch=progress, params=params.model_dump(mode="json", exclude={"db"}))
    finally:
        engine.dispose()


@flow(name="strseq-clean")
def clean(params: CleanParams) -> dict:
    """Normalize TABLE.COLUMN with MODEL: changes above the threshold are applied and audited,
    the rest go to review; --dry-run reports what would change and writes nothing."""
    normalizer, identity = load_model(params)
    validate(params, normalizer.max_len)
    report = run_job(params, normalizer, identity)
    markdown = clean_report_markdown(params, identity, report)
    create_markdown_artifact(markdown, key="strseq-clean", description=f"cleaning {params.table}.{params.column}")
    get_run_logger().info("%s run %s: %s", "dry" if params.dry_run else "cleaning", report.run_id, report.counts())
    return {"run_id": report.run_id, "dry_run": report.dry_run, **report.counts(), "sample": report.sample,
            "model": vars(identity)}
