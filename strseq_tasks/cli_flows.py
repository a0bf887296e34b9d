"""``strseq retrain`` (the retraining flow) and ``strseq models`` (the registry)."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from .cli import _fail, _precision_line, _setup_logging, app, log, print_metrics
from .registry import PRODUCTION, Registry, RegistryError
from .server_guard import guard_temporary_server
from .urls import mask_secrets, mask_url

# strseq's commands never report usage to Prefect (set these to opt in); before prefect is imported
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Without a Prefect API URL, a flow run starts a temporary local server; Prefect waits 20 s for
# it, which a busy 2-core machine (a nightly job beside a training run) can exceed. Wait longer.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

models_app = typer.Typer(no_args_is_help=True, help="List, inspect, promote and roll back registry models.")
app.add_typer(models_app, name="models")

RegistryOpt = Annotated[str, typer.Option(help="Registry folder or fsspec URL (s3://..., memory://...).")]
NameOpt = Annotated[str, typer.Option(help="Model name in the registry.")]


@app.command()
def retrain(
    pairs: Annotated[str, typer.Option(help="Curated pairs: a CSV/Parquet file, or a SQLAlchemy URL with --pairs-table or --pairs-query.")],
    name: NameOpt,
    registry: RegistryOpt = "models",
    pairs_table: Annotated[str | None, typer.Option(help="Table of pairs (database URL source).")] = None,
    pairs_query: Annotated[str | None, typer.Option(help="SQL query returning the pairs (database URL source).")] = None,
    input_column: Annotated[str, typer.Option(help="Column holding the dirty values.")] = "input",
    target_column: Annotated[str, typer.Option(help="Column holding the clean values.")] = "target",
    adapt_on: Annotated[str | None, typer.Option(help="Unlabeled strings (file or database URL, e.g. the column to clean): adapt the pretrained LM to them first.")] = None,
    adapt_table: Annotated[str | None, typer.Option(help="Table of --adapt-on (database URL).")] = None,
    adapt_query: Annotated[str | None, typer.Option(help="Query of --adapt-on (database URL).")] = None,
    adapt_column: Annotated[str, typer.Option(help="Column of --adapt-on.")] = "input",
    adapt_minutes: Annotated[float, typer.Option(help="Time budget of the adaptation.")] = 3.0,
    pretrained: Annotated[str | None, typer.Option(help="Fine-tune from an LM: `default` or an LM folder (default: from scratch).")] = None,
    known_values: Annotated[list[str] | None, typer.Option(help="File(s) of valid output values (see `strseq train`).")] = None,
    heldout_fraction: Annotated[float, typer.Option(help="Share of pairs held out (by a hash of the input) to compare new and production models.")] = 0.15,
    min_pairs: Annotated[int, typer.Option(help="Fewer pairs fail validation.")] = 20,
    max_len: Annotated[int, typer.Option(help="Longest input/target accepted.")] = 128,
    precision: Annotated[str, typer.Option(help="int8: also write int8 graphs and serve them if they pass the int8 gate; fp32: fp32 only.")] = "int8",
    seed: int = 0,
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = 40,
    max_minutes: Annotated[float, typer.Option(help="Training time budget in minutes (keeps the best so far).")] = 6.0,
    min_exact_match: Annotated[float, typer.Option(help="Gate: held-out exact match at least this.")] = 0.5,
    max_harm: Annotated[float, typer.Option(help="Gate: held-out harm at most this.")] = 0.02,
    max_regression: Annotated[float, typer.Option(help="Gate: exact match may trail production's by at most this.")] = 0.005,
    no_promote: Annotated[bool, typer.Option("--no-promote", help="Publish as candidate only, whatever the gates say.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Validate PAIRS, fine-tune, compare with production on held-out pairs, publish NAME to the
    registry, and promote it to production if the gates pass (runs the Prefect flow `strseq-retrain`)."""
    _setup_logging(quiet)
    from pydantic import ValidationError

    try:
        from .flows.retrain import retrain as retrain_flow
        from .retraining import NotExported, RetrainParams
    except ImportError as exc:
        _fail(f"retrain needs the train and flows extras ({exc}): pip install 'strseq[train,flows]'", code=1)
    guard_temporary_server()
    try:
        params = RetrainParams(
            pairs=pairs, pairs_table=pairs_table, pairs_query=pairs_query, input_column=input_column,
            target_column=target_column, registry=registry, name=name, adapt_on=adapt_on, adapt_table=adapt_table,
            adapt_query=adapt_query, adapt_column=adapt_column, adapt_minutes=adapt_minutes, pretrained=pretrained,
            known_values=known_values or [], heldout_fraction=heldout_fraction, min_pairs=min_pairs, max_len=max_len,
            seed=seed, max_epochs=epochs, max_minutes=max_minutes, promote=not no_promote, precision=precision,
            gates={"min_exact_match": min_exact_match, "max_harm": max_harm, "max_regression": max_regression})
    except ValidationError as exc:
        _fail("; ".join(_option_error(e) for e in exc.errors()))
    except (ValueError, RegistryError) as exc:
        _fail(mask_url(str(exc)))
    from .bundle import BundleError
    from .io import InputFileError
    from .sources import read_pair_frame
    from .validation import PairsValidationError

    try:  # a file or table that cannot be read, or a registry that cannot be written: one line, before Prefect
        read_pair_frame(params.pairs_source(), params.input_column, params.target_column)
        Registry(params.registry).check_writable()
    except (InputFileError, RegistryError) as exc:
        _fail(mask_url(f"{exc} (nothing was published)"))
    try:
        result = retrain_flow(params)
    except PairsValidationError as exc:
        typer.echo(mask_url(str(exc)), err=True)
        _fail("the pairs failed validation: nothing was published and production is unchanged", code=1)
    except InputFileError as exc:
        _fail(mask_url(f"{exc} (nothing was published)"))
    except (RegistryError, BundleError) as exc:  # a damaged registry: the message says what was done
        _fail(mask_url(str(exc)))
    except NotExported as exc:  # trained, not exported: the message says where the training is kept
        _fail(str(exc), code=1)
    typer.echo(f"\npublished {name} version {result['version']} to {mask_url(registry)}: "
               + ("PROMOTED to production" if result["promoted"] else "not promoted (candidate only)"))
    for reason in result["reasons"]:
        typer.echo(f"  {reason}")
    typer.echo(f"held-out metrics ({result['heldout']['pairs']} pairs):")
    print_metrics(result["metrics"])


def _option_error(error: dict) -> str:
    """A pydantic error as the option it concerns: '--max-harm: Input should be <= 1'."""
    message = error["msg"].removeprefix("Value error, ")
    where = "-".join(map(str, error["loc"])).replace("_", "-").removeprefix("gates-")
    where = {"max-epochs": "epochs"}.get(where, where)
    return mask_url(f"--{where}: {message}" if where else message)


@models_app.command("list")
def list_models(registry: RegistryOpt = "models",
                name: Annotated[str | None, typer.Option(help="Show the versions of this model.")] = None) -> None:
    """The models of a registry, or the versions of one model, with their aliases and metrics."""
    try:
        reg = Registry(registry)
        if name is None:
            names = reg.names()
            if not names:
                typer.echo(f"no models in {reg.label}")
            for model in names:
                aliases = reg.aliases(model)
                marks = ", ".join(f"{a}={s.version}" for a, s in aliases.items()) or "no aliases"
                typer.echo(f"{model}: {len(reg.versions(model))} version(s); {marks}")
            return
        aliases = reg.aliases(name)
        typer.echo("version  published                  exact match  harm    aliases")
        for version in reg.versions(name):
            record = reg.publication(name, version)
            metrics = record.get("metrics") or reg.manifest(name, version).get("metrics", {}).get("validation", {})
            marks = ", ".join(a for a, s in aliases.items() if s.version == version)
            typer.echo(f"{version:>7}  {record.get('published', '?'):<25}  {_pct(metrics.get('exact_match')):>11}  "
                       f"{_pct(metrics.get('harm')):>6}  {marks}")
        if not reg.versions(name):
            raise RegistryError(f"no model {name!r} in registry {reg.label}")
    except RegistryError as exc:
        _fail(str(exc))


def _pct(value) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.1f}%"


@models_app.command("show")
def show(registry: RegistryOpt = "models", name: NameOpt = ...,
         version: Annotated[str, typer.Option(help="A version number, an alias or `latest`.")] = PRODUCTION,
         json_out: Annotated[bool, typer.Option("--json", help="Print the publication record as JSON.")] = False) -> None:
    """One version: its publication record, gate decision and run report."""
    try:
        reg = Registry(registry)
        number = reg.resolve(name, version)
        record = reg.publication(name, number)
        manifest = reg.manifest(name, number)
        report = reg.attachment(name, number, "report.md")
        aliases = reg.aliases(name)
    except RegistryError as exc:
        _fail(str(exc))
    # masked on the way out too: versions published before records were masked may hold a password
    record, manifest = mask_secrets(record), mask_secrets(manifest)
    if json_out:
        typer.echo(json.dumps({"version": number, "publication": record, "manifest": manifest}, indent=2))
        return
    typer.echo(f"{name} version {number} ({reg.label})")
    typer.echo(f"  published {record.get('published', '?')}; model created {manifest.get('created')}")
    typer.echo(f"  serves: {_precision_line(manifest.get('precision') or {})}")
    for alias, state in aliases.items():
        if state.version == number:
            typer.echo(f"  alias {alias} (since {state.updated}: {mask_url(state.reason)})")
    if report:  # written before the registry numbered the version
        text = report.decode("utf-8", errors="replace").replace("the new version", f"version {number}", 1)
        typer.echo("\n" + mask_url(text))
    elif manifest.get("metrics"):
        print_metrics(manifest["metrics"]["validation"])


@models_app.command()
def promote(registry: RegistryOpt = "models", name: NameOpt = ...,
            version: Annotated[str, typer.Option(help="A version number, an alias or `latest`.")] = "latest",
            alias: Annotated[str, typer.Option(help="The alias to move.")] = PRODUCTION,
            reason: Annotated[str, typer.Option(help="Why (recorded with the alias).")] = "promoted by hand",
            repair: Annotated[bool, typer.Option("--repair", help="Replace a damaged alias file (kept beside "
                                                 "it as .ALIAS.json.damaged-TIME); its history is lost.")] = False,
            ) -> None:
    """Point ALIAS (production) at a version."""
    try:
        reg = Registry(registry)
        state = reg.set_alias(name, alias, reg.resolve(name, version), reason, repair=repair)
    except RegistryError as exc:
        _fail(str(exc))
    log.info("%s@%s -> version %d", name, alias, state.version)
    typer.echo(f"{name}@{alias} is now version {state.version}")


@models_app.command()
def rollback(registry: RegistryOpt = "models", name: NameOpt = ...,
             alias: Annotated[str, typer.Option(help="The alias to move back.")] = PRODUCTION) -> None:
    """Point ALIAS (production) back at the version it pointed to before."""
    try:
        state = Registry(registry).rollback(name, alias)
    except RegistryError as exc:
        _fail(str(exc))
    typer.echo(f"{name}@{alias} is back to version {state.version}")



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
    _setup_logging(quiet)
    from pydantic import ValidationError

    from .cleaning import CleanParams, watch_progress
    from .db import DatabaseJobError

    try:
        params = CleanParams(db=db, table=table, key=key, column=column, model=model, output_column=output_column,
                             in_place=in_place, create_output_column=create_output_column, threshold=threshold,
                             batch_size=batch_size, dry_run=dry_run, db_schema=schema, threads=threads,
                             precision=precision, partitions=partitions, dask_address=dask_address, min_non_null=min_non_null, min_within_length=min_within_length)
    except ValidationError as exc:
        _fail("; ".join(_option_error(e) for e in exc.errors()))
    try:
        from .flows.clean import clean as clean_flow
    except ImportError as exc:
        _fail(f"clean needs the flows extra ({exc}): pip install 'strseq[flows]'", code=1)
    guard_temporary_server()
    from .bundle import BundleError
    from .urls import UrlReferenceError
    from .validation import ColumnValidationError

    if dask_address:
        try:
            import prefect_dask  # noqa: F401
        except ImportError as exc:
            _fail(f"--dask-address needs prefect-dask ({exc}): pip install 'strseq[dask]'", code=1)
    from .cleaning import preflight

    try:
        preflight(params)
    except (DatabaseJobError, UrlReferenceError) as exc:
        _fail(str(exc))
    try:
        with _rows_progress(quiet, "dry run" if dry_run else "cleaning") as progress, watch_progress(progress):
            result = clean_flow(params)
    except (DatabaseJobError, RegistryError, BundleError, UrlReferenceError) as exc:
        _fail(str(exc))
    except ColumnValidationError as exc:
        typer.echo(str(exc), err=True)
        _fail(f"{table}.{column} failed validation: nothing was written", code=1)
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


class _rows_progress:
    """A tqdm bar of rows on a terminal (the flow logs progress lines everywhere)."""

    def __init__(self, quiet: bool, desc: str):
        self.bar, self.desc = None, desc
        self.counts: dict[str, int] = {}
        self.show = not quiet and sys.stderr.isatty()

    def __enter__(self):
        return self

    def __call__(self, event: dict) -> None:
        if not self.show:
            return
        if self.bar is None:  # at the first batch: the rate does not count Prefect's start-up
            from tqdm import tqdm

            self.bar = tqdm(total=0, desc=self.desc, unit="row", file=sys.stderr, dynamic_ncols=True)
        if "total" in event:
            self.bar.total += event["total"]
            self.bar.refresh()
            return
        for key, value in event.items():
            self.counts[key] = self.counts.get(key, 0) + value
        self.bar.set_postfix({k: self.counts.get(k, 0) for k in ("changed", "review", "skipped")}, refresh=False)
        self.bar.update(event.get("rows_read", 0))

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


@app.command()
def revert(
    db: Annotated[str, typer.Option(help="SQLAlchemy URL of the database.")],
    run_id: Annotated[str, typer.Option(help="The run to undo (printed by `strseq clean`; see strseq_runs).")],
    schema: Annotated[str | None, typer.Option(help="Database schema (PostgreSQL).")] = None,
) -> None:
    """Restore exactly the old values of a cleaning run, in one transaction (refused, changing
    nothing, where a value was changed again since)."""
    _setup_logging(False)

    from .cleaning import revert_run
    from .db import DatabaseJobError, create_engine
    from .urls import UrlReferenceError

    try:
        engine = create_engine(db)
    except (UrlReferenceError, DatabaseJobError) as exc:
        _fail(str(exc))
    try:
        restored = revert_run(engine, run_id, schema)
    except DatabaseJobError as exc:
        _fail(str(exc))
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

    from .db import REVIEW, DatabaseJobError, create_engine, job_tables
    from .urls import UrlReferenceError

    try:
        engine = create_engine(db)
    except (UrlReferenceError, DatabaseJobError) as exc:
        _fail(str(exc))
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
