"""``strseq clean`` and ``strseq revert``: the cleaning flow, and undoing a run (``review.py``: the queue)."""

from __future__ import annotations

from typing import Annotated

import typer

from strseq_tasks.cli.common import (
    DbOpt,
    Precision,
    QuietOpt,
    RowsProgress,
    SchemaOpt,
    app,
    fail,
    option,
    option_error,
    revert_hint,
    setup_logging,
)
from strseq_tasks.cli.review import run_elsewhere
from strseq_tasks.params import CLEAN
from strseq_tasks.runner.server_guard import guard_temporary_server

_C = CLEAN


@app.command()
def clean(
    db: Annotated[str, option(_C["db"])],
    table: Annotated[str, option(_C["table"])],
    key: Annotated[str, option(_C["key"])],
    column: Annotated[str, option(_C["column"])],
    model: Annotated[str, option(_C["model"])],
    output_column: Annotated[str | None, option(_C["output_column"])] = None,
    in_place: Annotated[bool, option(_C["in_place"])] = False,
    create_output_column: Annotated[bool, option(_C["create_output_column"])] = False,
    threshold: Annotated[float, option(_C["threshold"])] = _C["threshold"].default,
    batch_size: Annotated[int, option(_C["batch_size"])] = _C["batch_size"].default,
    dry_run: Annotated[bool, option(_C["dry_run"])] = False,
    ask_in_ui: Annotated[int, option(_C["ask_in_ui"])] = _C["ask_in_ui"].default,
    ask_timeout: Annotated[int, option(_C["ask_timeout"])] = _C["ask_timeout"].default,
    db_schema: Annotated[str | None, option(_C["db_schema"])] = None,
    threads: Annotated[int | None, option(_C["threads"])] = None,
    precision: Annotated[Precision, option(_C["precision"])] = Precision(_C["precision"].default),
    no_programs: Annotated[bool, option(_C["no_programs"])] = False,
    partitions: Annotated[int, option(_C["partitions"])] = _C["partitions"].default,
    dask_address: Annotated[str | None, option(_C["dask_address"])] = None,
    min_non_null: Annotated[float, option(_C["min_non_null"])] = _C["min_non_null"].default,
    min_within_length: Annotated[float, option(_C["min_within_length"])] = _C["min_within_length"].default,
    quiet: QuietOpt = False,
) -> None:
    """Normalize TABLE.COLUMN with MODEL (runs the Prefect flow `strseq-clean`): confident changes
    are applied and audited in the same transaction, the rest go to review; re-runs skip rows this
    model version already handled; `strseq revert --run-id` undoes a run. Every option is a field
    of the flow's parameters (`CleanParams`) under the same name (`--schema`: `db_schema`)."""
    # long: one typer option a line (22 of them); the body is preflight, flow, report
    setup_logging(quiet)
    from pydantic import ValidationError

    from strseq_tasks.jobs.clean import watch_progress
    from strseq_tasks.jobs.clean_params import CleanParams, preflight

    given = {k: v for k, v in locals().items() if k in _C}  # the options named as CleanParams' fields
    try:
        params = CleanParams(**{**given, "precision": str(precision)})
    except ValidationError as exc:
        fail("; ".join(option_error(e, _C) for e in exc.errors()))
    if dask_address:
        try:
            import prefect_dask  # noqa: F401
        except ImportError as exc:
            fail(f"--dask-address needs prefect-dask ({exc}): pip install 'strseq[dask]'", code=1)
    # the model, the database, the table and its columns, before Prefect is even imported: a
    # mistake is one error line (StrseqError, in cli.main), and no flow run is left Failed
    preflight(params)
    try:
        from strseq_tasks.flows.clean import clean as clean_flow
    except ImportError as exc:
        fail(f"clean needs the flows extra ({exc}): pip install 'strseq[flows]'", code=1)
    from strseq_tasks.data.validation import ColumnValidationError

    guard_temporary_server()
    try:
        with RowsProgress(quiet, "dry run" if dry_run else "cleaning") as progress, watch_progress(progress):
            result = clean_flow(params)
    except ColumnValidationError as exc:
        typer.echo(str(exc), err=True)
        fail(f"{table}.{column} failed validation: nothing was written", code=1)
    what = "would change" if dry_run else "changed"
    typer.echo(f"\n{'dry run' if dry_run else 'run ' + result['run_id']}: {result['rows_read']} rows read, "
               f"{result['changed']} {what}, {result['review']} to review, {result['unchanged']} unchanged, "
               f"{result['skipped']} skipped (empty), {result['already_done']} done by this model before, "
               f"{result['conflicts']} edited meanwhile (left alone), {result['decided']} decided by a person "
               f"(left alone); {result['by_program']} answered by layout programs")
    for row in result["sample"][:10]:
        typer.echo(f"  {row['key']}: {row['diff']}  ({row['confidence']})")
    if len(result["workers"]) > 1:
        typer.echo(f"partitions ran in {len(result['workers'])} processes: {', '.join(result['workers'])}")
    if not dry_run and result["changed"]:
        typer.echo(revert_hint(result["run_id"], db_schema))


@app.command()
def revert(
    db: DbOpt,
    run_id: Annotated[str, typer.Option(help="The run to undo (printed by `strseq clean`; see strseq_runs).")],
    schema: SchemaOpt = None,
) -> None:
    """Restore exactly the old values of a cleaning run, in one transaction (refused, changing
    nothing, where a value was changed again since)."""
    setup_logging(False)

    from strseq_tasks.data.db import DatabaseJobError, create_engine
    from strseq_tasks.data.urls import UrlReferenceError
    from strseq_tasks.jobs.revert import revert_run

    try:
        engine = create_engine(db)
    except (UrlReferenceError, DatabaseJobError) as exc:
        fail(str(exc))
    try:
        restored = revert_run(engine, run_id, schema)
    except DatabaseJobError as exc:
        fail(f"{exc}{run_elsewhere(engine, run_id, schema)}")
    finally:
        engine.dispose()
    typer.echo(f"run {run_id} reverted: {restored} value(s) restored")
