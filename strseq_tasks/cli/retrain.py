"""``strseq retrain``: the retraining flow (``strseq-retrain``) from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from strseq_tasks.cli.common import (
    NameOpt,
    Precision,
    QuietOpt,
    RegistryOpt,
    app,
    fail,
    graphs_to_write,
    option,
    option_error,
    print_metrics,
    setup_logging,
)
from strseq_tasks.data.files import (
    InputFileError,
)
from strseq_tasks.data.urls import mask_url
from strseq_tasks.errors import StrseqError
from strseq_tasks.params import GATES, RETRAIN
from strseq_tasks.runner.server_guard import guard_temporary_server
from strseq_tasks.serve.labels import parse_tag

_R = RETRAIN


@app.command()
def retrain(
    pairs: Annotated[str, option(_R["pairs"])],
    name: NameOpt,
    registry: RegistryOpt = _R["registry"].default,
    pairs_table: Annotated[str | None, option(_R["pairs_table"])] = None,
    pairs_query: Annotated[str | None, option(_R["pairs_query"])] = None,
    input_column: Annotated[str, option(_R["input_column"])] = _R["input_column"].default,
    target_column: Annotated[str, option(_R["target_column"])] = _R["target_column"].default,
    decisions: Annotated[str | None, option(_R["decisions"])] = None,
    decisions_table: Annotated[str | None, option(_R["decisions_table"])] = None,
    decisions_column: Annotated[str | None, option(_R["decisions_column"])] = None,
    adapt_on: Annotated[str | None, option(_R["adapt_on"])] = None,
    adapt_table: Annotated[str | None, option(_R["adapt_table"])] = None,
    adapt_query: Annotated[str | None, option(_R["adapt_query"])] = None,
    adapt_column: Annotated[str, option(_R["adapt_column"])] = _R["adapt_column"].default,
    adapt_minutes: Annotated[float, option(_R["adapt_minutes"])] = _R["adapt_minutes"].default,
    pretrained: Annotated[str | None, option(_R["pretrained"])] = None,
    known_values: Annotated[list[str] | None, option(_R["known_values"])] = None,
    heldout_fraction: Annotated[float, option(_R["heldout_fraction"])] = _R["heldout_fraction"].default,
    min_pairs: Annotated[int, option(_R["min_pairs"])] = _R["min_pairs"].default,
    max_len: Annotated[int, option(_R["max_len"])] = _R["max_len"].default,
    precision: Annotated[Precision, option(_R["precision"])] = Precision(_R["precision"].default),
    seed: Annotated[int, option(_R["seed"])] = _R["seed"].default,
    max_epochs: Annotated[int, option(_R["max_epochs"])] = _R["max_epochs"].default,
    max_minutes: Annotated[float, option(_R["max_minutes"])] = _R["max_minutes"].default,
    threads: Annotated[int, option(_R["threads"])] = _R["threads"].default,
    min_exact_match: Annotated[float, option(GATES["min_exact_match"])] = GATES["min_exact_match"].default,
    max_harm: Annotated[float, option(GATES["max_harm"])] = GATES["max_harm"].default,
    max_regression: Annotated[float, option(GATES["max_regression"])] = GATES["max_regression"].default,
    no_promote: Annotated[bool, option(_R["promote"])] = False,
    description: Annotated[str | None, option(_R["description"])] = None,
    tags: Annotated[list[str] | None, option(_R["tags"])] = None,
    force: Annotated[bool, option(_R["force"])] = False,
    quiet: QuietOpt = False,
) -> None:
    """Validate PAIRS, fine-tune, compare with production on held-out pairs, publish NAME to the
    registry, and promote it to production if the gates pass (runs the Prefect flow `strseq-retrain`).
    When production (or the newest version) was trained on the same pairs, known values, parameters
    and base model, it trains and publishes nothing and says so (exit 0); --force retrains anyway.
    Every option is a field of the flow's parameters (`RetrainParams`) under the same name."""
    # long: one typer option a line (35 of them); the body is preflight, flow, report
    setup_logging(quiet)
    from pydantic import ValidationError

    try:
        from strseq_tasks.jobs.retrain import RetrainParams, preflight
    except ImportError as exc:
        fail(f"retrain needs the train and flows extras ({exc}): pip install 'strseq[train,flows]'", code=1)
    given = {k: v for k, v in locals().items() if k in _R}  # the options named as RetrainParams' fields
    try:
        params = RetrainParams(**{**given, "known_values": known_values or [], "promote": not no_promote,
                                  "precision": graphs_to_write(precision), "tags": dict(map(parse_tag, tags or [])),
                                  "gates": {"min_exact_match": min_exact_match, "max_harm": max_harm,
                                            "max_regression": max_regression}})
    except ValidationError as exc:
        fail("; ".join(option_error(e, _R) for e in exc.errors()))
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
    if not result["published"]:
        typer.echo(f"\n{result['reasons'][0]}")
        return
    typer.echo(f"\npublished {name} version {result['version']} to {mask_url(registry)}: "
               + ("PROMOTED to production" if result["promoted"] else "not promoted (candidate only)"))
    for reason in result["reasons"]:
        typer.echo(f"  {reason}")
    typer.echo(f"held-out metrics ({result['heldout']['pairs']} pairs):")
    print_metrics(result["metrics"])
