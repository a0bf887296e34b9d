"""``strseq retrain``: the retraining flow (``strseq-retrain``) from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from strseq_tasks.cli.common import (
    NameOpt,
    RegistryOpt,
    app,
    fail,
    option_error,
    print_metrics,
    setup_logging,
)
from strseq_tasks.data.files import (
    InputFileError,
)
from strseq_tasks.data.urls import mask_url
from strseq_tasks.errors import StrseqError
from strseq_tasks.runner.server_guard import guard_temporary_server


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
    # long: one typer option a line (28 of them); the body is preflight, flow, report
    setup_logging(quiet)
    from pydantic import ValidationError

    try:
        from strseq_tasks.jobs.retrain import RetrainParams, preflight
    except ImportError as exc:
        fail(f"retrain needs the train and flows extras ({exc}): pip install 'strseq[train,flows]'", code=1)
    try:
        params = RetrainParams(
            pairs=pairs, pairs_table=pairs_table, pairs_query=pairs_query, input_column=input_column,
            target_column=target_column, registry=registry, name=name, adapt_on=adapt_on, adapt_table=adapt_table,
            adapt_query=adapt_query, adapt_column=adapt_column, adapt_minutes=adapt_minutes, pretrained=pretrained,
            known_values=known_values or [], heldout_fraction=heldout_fraction, min_pairs=min_pairs, max_len=max_len,
            seed=seed, max_epochs=epochs, max_minutes=max_minutes, promote=not no_promote, precision=precision,
            gates={"min_exact_match": min_exact_match, "max_harm": max_harm, "max_regression": max_regression})
    except ValidationError as exc:
        fail("; ".join(option_error(e) for e in exc.errors()))
    except ValueError as exc:
        fail(mask_url(str(exc)))
    try:  # every source, the registry and the LM, before Prefect is imported: no flow run for a mistake
        preflight(params)
    except StrseqError as exc:
        fail(mask_url(f"{exc} (nothing was published)"))
    try:
        from strseq_tasks.flows.retrain import retrain as retrain_flow
    except ImportError as exc:
        fail(f"retrain needs the train and flows extras ({exc}): pip install 'strseq[train,flows]'", code=1)
    from strseq_tasks.data.validation import PairsValidationError

    guard_temporary_server()
    try:
        result = retrain_flow(params)
    except PairsValidationError as exc:
        typer.echo(mask_url(str(exc)), err=True)
        fail("the pairs failed validation: nothing was published and production is unchanged", code=1)
    except InputFileError as exc:
        fail(mask_url(f"{exc} (nothing was published)"))
    typer.echo(f"\npublished {name} version {result['version']} to {mask_url(registry)}: "
               + ("PROMOTED to production" if result["promoted"] else "not promoted (candidate only)"))
    for reason in result["reasons"]:
        typer.echo(f"  {reason}")
    typer.echo(f"held-out metrics ({result['heldout']['pairs']} pairs):")
    print_metrics(result["metrics"])
