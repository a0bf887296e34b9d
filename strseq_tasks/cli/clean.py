"""``strseq clean``, ``strseq revert`` and ``strseq review``: the cleaning flow and what it leaves."""

from __future__ import annotations

from typing import Annotated

import typer

from strseq_tasks.cli.common import (
    RowsProgress,
    app,
    fail,
    option_error,
    setup_logging,
)
from strseq_tasks.runner.server_guard import guard_temporary_server


@app.command()
def clean(
    db: Annotated[str, typer.Option(help="SQLAlchemy URL of the database: sqlite:///file.db, postgresql+psycopg://user@host/db, or env:VAR / prefect-secret:BLOCK holding it.")],
    table: Annotated[str, typer.Option(help="Table to clean.")],
    key: Annotated[str, typer.Option(help="Integer or text column identifying a row (primary key or unique).")],
    column: Annotated[str, typer.Option(help="Text column to normalize.")],
    model: Annotated[str, typer.Option(help="Model folder, or REGISTRY/NAME@production.")],
    output_column: Annotated[str | None, typer.Option(help="Write predictions here (default: COLUMN_clean).")] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Overwrite COLUMN itself (old values stay in strseq_audit).")] = False,
    create_output_column: Annotated[bool, typer.Option("--create-output-column", help="Add the output column (TEXT) if missing.")] = False,
    threshold: Annotated[float, typer.Option(help="Apply predictions at least this confident; the rest go to review.")] = 0.9,
    batch_size: Annotated[int, typer.Option(help="Rows per read/predict/write transaction.")] = 1000,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Write nothing; report what would change.")] = False,
    schema: Annotated[str | None, typer.Option(help="Database schema of the table (PostgreSQL).")] = None,
    threads: Annotated[int | None, typer.Option(help="onnxruntime threads per partition (default 1: use --partitions for more cores).")] = None,
    precision: Annotated[str, typer.Option(help="Graphs to run: auto (the model's int8 graphs when it has them, else fp32), fp32 or int8.")] = "auto",
    partitions: Annotated[int, typer.Option(help="Split the key range into P partitions cleaned side by side (threads, or Dask workers with --dask-address).")] = 1,
    dask_address: Annotated[str | None, typer.Option(help="Run the partitions on this Dask scheduler (tcp://host:8786), or `local` for a temporary cluster of one worker process per partition.")] = None,
    min_non_null: Annotated[float, typer.Option(help="Validation: at least this share of values must be non-NULL.")] = 0.5,
    min_within_length: Annotated[float, typer.Option(help="Validation: at least this share must fit the model's length limit.")] = 0.99,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Normalize TABLE.COLUMN with MODEL (runs the Prefect flow `strseq-clean`): confident changes
    are applied and audited in the same transaction, the rest go to review; re-runs skip rows this
    model version already handled; `strseq revert --run-id` undoes a run."""
    # long: one typer option a line (19 of them); the body is preflight, flow, report
    setup_logging(quiet)
    from pydantic import ValidationError

    from strseq_tasks.jobs.clean import watch_progress
    from strseq_tasks.jobs.clean_params import CleanParams, preflight

    try:
        params = CleanParams(db=db, table=table, key=key, column=column, model=model, output_column=output_column,
                             in_place=in_place, create_output_column=create_output_column, threshold=threshold,
                             batch_size=batch_size, dry_run=dry_run, db_schema=schema, threads=threads,
                             precision=precision, partitions=partitions, dask_address=dask_address, min_non_null=min_non_null, min_within_length=min_within_length)
    except ValidationError as exc:
        fail("; ".join(option_error(e) for e in exc.errors()))
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
               f"{result['conflicts']} edited meanwhile (left alone)")
    for row in result["sample"][:10]:
        typer.echo(f"  {row['key']}: {row['diff']}  ({row['confidence']})")
    if len(result["workers"]) > 1:
        typer.echo(f"partitions ran in {len(result['workers'])} processes: {', '.join(result['workers'])}")
    if not dry_run and result["changed"]:
        typer.echo(f"undo with: strseq revert --db DB --run-id {result['run_id']}")


@app.command()
def revert(
    db: Annotated[str, typer.Option(help="SQLAlchemy URL of the database.")],
    run_id: Annotated[str, typer.Option(help="The run to undo (printed by `strseq clean`; see strseq_runs).")],
    schema: Annotated[str | None, typer.Option(help="Database schema (PostgreSQL).")] = None,
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
        fail(str(exc))
    finally:
        engine.dispose()
    typer.echo(f"run {run_id} reverted: {restored} value(s) restored")


@app.command()
def review(
    db: Annotated[str, typer.Option(help="SQLAlchemy URL of the database.")],
    table: Annotated[str | None, typer.Option(help="Only this table's rows.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show.")] = 50,
    schema: Annotated[str | None, typer.Option(help="Database schema (PostgreSQL).")] = None,
) -> None:
    """What waits for a person: predictions not applied (low confidence, too long)."""
    import sqlalchemy as sa

    from strseq_tasks.data.db import REVIEW, DatabaseJobError, create_engine, job_tables
    from strseq_tasks.data.urls import UrlReferenceError

    try:
        engine = create_engine(db)
    except (UrlReferenceError, DatabaseJobError) as exc:
        fail(str(exc))
    try:
        if not sa.inspect(engine).has_table(REVIEW, schema=schema):
            typer.echo("nothing to review (no strseq cleaning run in this database)")
            return
        t = job_tables(schema)[1][REVIEW]
        query = sa.select(t).where(t.c.status == "open").order_by(t.c.id)
        if table:
            query = query.where(t.c.table_name == table)
        with engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
            rows = conn.execute(query.limit(limit)).mappings().all()
    finally:
        engine.dispose()
    typer.echo(f"{total} row(s) to review" + (f" in {table}" if table else ""))
    for r in rows:
        suggestion = "(too long for the model)" if r["reason"] == "too_long" else repr(r["suggestion"])
        typer.echo(f"  {r['table_name']}.{r['column_name']} key {r['key']}: {r['value']!r} -> {suggestion} "
                   f"confidence {r['confidence']:.3f}, run {r['run_id']}")
