"""Prefect tasks for users' own flows (needs the flows extra).

    from prefect import flow
    from strseq_tasks.tasks import normalize_records

    @flow
    def nightly_import(path: str):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)  # text as written: "0012", "NA"
        frame = normalize_records(frame, column="name", model="models/names@production", threshold=0.9)
        ...  # frame now has name_prediction, name_confidence, name_status
"""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from strseq_tasks.data.urls import mask_url
from strseq_tasks.data.validation import ValidationFailed, ValidationReport
from strseq_tasks.errors import StrseqError
from strseq_tasks.runner.run_logs import send_strseq_logs_to_runs
from strseq_tasks.serve.loading import open_model
from strseq_tasks.serve.series import normalize_series

send_strseq_logs_to_runs()  # strseq's own log lines in the runs of strseq's flows and of users' own


def worth_retrying(task, task_run, state) -> bool:
    """Prefect's ``retry_condition_fn`` for strseq's tasks: retry what may work in a moment (a
    database that did not answer, a network error) and nothing a person must fix first (a missing
    file, an unknown alias: a ``StrseqError`` that is not ``transient`` fails the same way again)."""
    error = state.data
    if not isinstance(error, BaseException):
        try:
            state.result(raise_on_failure=True)
        except BaseException as exc:  # noqa: BLE001 - only read, never swallowed: Prefect re-raises it
            error = exc
    return not (isinstance(error, StrseqError) and not error.transient)


@task(cache_policy=NO_CACHE, retries=0)
def normalize_records(records: pd.DataFrame | list[dict], column: str, model: str, threshold: float | None = None,
                      prefix: str | None = None) -> pd.DataFrame:
    """Add ``<prefix>_prediction``, ``_confidence``, ``_status`` and ``_model`` for ``column``
    (prefix: the column's name); the input frame is not modified. With ``threshold``,
    low-confidence rows keep their input as prediction (status ``below_threshold``).

    ``model`` (a folder or ``REGISTRY/NAME@production``) is resolved at every call: after a
    promotion or a rollback, the next call uses the new version, and ``_model`` names the one used
    (``names@3``)."""
    frame = pd.DataFrame(records) if not isinstance(records, pd.DataFrame) else records.copy()
    if column not in frame.columns:
        raise KeyError(f"no column {column!r} in the records (columns: {', '.join(map(str, frame.columns))})")
    prefix = prefix or column
    added = [f"{prefix}_{suffix}" for suffix in ("prediction", "confidence", "status", "model")]
    clash = [c for c in added if c in frame.columns]
    if clash:
        raise ValueError(f"the records already have column(s) {', '.join(clash)}; pass another prefix")
    opened = open_model(model)
    out = normalize_series(frame[column], opened.normalizer, threshold)
    frame[f"{prefix}_prediction"] = out["prediction"]
    frame[f"{prefix}_confidence"] = out["confidence"]
    frame[f"{prefix}_status"] = out["status"]
    frame[f"{prefix}_model"] = opened.label
    get_run_logger().info("normalized %d %s value(s) with %s (%s): %d changed", len(frame), column,
                          mask_url(str(model)), opened.label, int(out["changed"].sum()))
    return frame


def report_validation(report: ValidationReport, key: str, description: str,
                      error: type[ValidationFailed] = ValidationFailed) -> ValidationReport:
    """Log a validation report, keep it as a Prefect markdown artifact, and raise ``error`` if it failed."""
    create_markdown_artifact(report.markdown(), key=key, description=description)
    logger = get_run_logger()
    (logger.info if report.success else logger.error)(report.summary())
    if not report.success:
        raise error(report)
    return report
