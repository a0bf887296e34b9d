"""``strseq models``: list, inspect, promote and roll back the models of a registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from strseq_tasks.cli.common import (
    NameOpt,
    RegistryOpt,
    app,
    check_output_option,
    fail,
    log,
    precision_line,
    print_metrics,
)
from strseq_tasks.data.urls import mask_secrets, mask_url
from strseq_tasks.serve.refs import PRODUCTION, RegistryError
from strseq_tasks.serve.registry import Registry

models_app = typer.Typer(no_args_is_help=True, help="List, inspect, promote and roll back registry models.")


app.add_typer(models_app, name="models")


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
        # a retrain measures on its held-out pairs; a version published otherwise has only its
        # training's validation split: the column says which, the gates column what the retrain decided
        typer.echo("version  published                  exact match  harm    measured on  gates   aliases")
        for version in reg.versions(name):
            record = reg.publication(name, version)
            metrics, on = record.get("metrics"), "held-out"
            if not metrics:
                metrics, on = reg.manifest(name, version).get("metrics", {}).get("validation", {}), "validation"
            gates = "FAILED" if failed_gates(record) else ("passed" if record.get("decision") else "-")
            marks = ", ".join(a for a, s in aliases.items() if s.version == version)
            typer.echo(f"{version:>7}  {record.get('published', '?'):<25}  {_pct(metrics.get('exact_match')):>11}  "
                       f"{_pct(metrics.get('harm')):>6}  {on:<11}  {gates:<6}  {marks}")
        if not reg.versions(name):
            raise RegistryError(f"no model {name!r} in registry {reg.label}")
    except RegistryError as exc:
        fail(str(exc))


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
        fail(str(exc))
    # masked on the way out too: versions published before records were masked may hold a password
    record, manifest = mask_secrets(record), mask_secrets(manifest)
    if json_out:
        typer.echo(json.dumps({"version": number, "publication": record, "manifest": manifest}, indent=2))
        return
    typer.echo(f"{name} version {number} ({reg.label})")
    typer.echo(f"  published {record.get('published', '?')}; model created {manifest.get('created')}")
    typer.echo(f"  serves: {precision_line(manifest.get('precision') or {})}")
    for alias, state in aliases.items():
        if state.version == number:
            typer.echo(f"  alias {alias} (since {state.updated}: {mask_url(state.reason)})")
    if report:  # written before the registry numbered the version
        text = report.decode("utf-8", errors="replace").replace("the new version", f"version {number}", 1)
        typer.echo("\n" + mask_url(text))
    elif manifest.get("metrics"):
        print_metrics(manifest["metrics"]["validation"])


def failed_gates(publication: dict) -> list[str]:
    """The gates a version failed when its retrain decided (``jobs.retrain.decide``'s ``FAIL:``
    reasons, recorded in its publication record); none for a version published otherwise."""
    reasons = (publication.get("decision") or {}).get("reasons") or []
    return [r.removeprefix("FAIL: ") for r in reasons if isinstance(r, str) and r.startswith("FAIL: ")]


@models_app.command()
def promote(registry: RegistryOpt = "models", name: NameOpt = ...,
            version: Annotated[str, typer.Option(help="A version number, an alias or `latest`.")] = "latest",
            alias: Annotated[str, typer.Option(help="The alias to move.")] = PRODUCTION,
            reason: Annotated[str, typer.Option(help="Why (recorded with the alias).")] = "promoted by hand",
            repair: Annotated[bool, typer.Option("--repair", help="Replace a damaged alias file (kept beside "
                                                 "it as .ALIAS.json.damaged-TIME); its history is lost.")] = False,
            force: Annotated[bool, typer.Option("--force", help="Promote a version that failed a promotion gate "
                                                "when it was retrained (the reason records it).")] = False,
            ) -> None:
    """Point ALIAS (production) at a version. A version that failed a gate of its retrain (exact
    match, harm, regression against production) needs --force."""
    try:
        reg = Registry(registry)
        number = reg.resolve(name, version)
        failed = failed_gates(reg.publication(name, number))
        if failed and not force:
            fail(f"{name} version {number} failed its promotion gates when it was retrained ({'; '.join(failed)}); "
                 f"pass --force to promote it anyway")
        if failed:
            reason = f"{reason} (forced past: {'; '.join(failed)})"
        state = reg.set_alias(name, alias, number, reason, repair=repair)
    except RegistryError as exc:
        fail(str(exc))
    log.info("%s@%s -> version %d", name, alias, state.version)
    typer.echo(f"{name}@{alias} is now version {state.version}")


@models_app.command("history")
def alias_history(registry: RegistryOpt = "models", name: NameOpt = ...,
                  alias: Annotated[str, typer.Option(help="The alias whose moves to show.")] = PRODUCTION,
                  json_out: Annotated[bool, typer.Option("--json", help="Print the moves as JSON.")] = False) -> None:
    """Every move of ALIAS (production), oldest first: the version, when and why, rollbacks included."""
    try:
        state = Registry(registry).alias(name, alias)
    except RegistryError as exc:
        fail(str(exc))
    if state is None:
        fail(f"model {name!r} has no alias {alias!r} (strseq models list --registry {mask_url(registry)} "
             f"--name {name} shows its versions)")
    moves = [{**vars(m), "reason": mask_url(m.reason)} for m in state.moves]  # JSON too: no password shown
    if json_out:
        typer.echo(json.dumps({"alias": alias, "version": state.version, "moves": moves}, indent=2,
                              ensure_ascii=False))
        return
    if not moves:  # an alias file from before moves were kept
        typer.echo(f"{name}@{alias} is version {state.version} (since {state.updated}); its earlier moves were "
                   f"not recorded (versions before: {', '.join(map(str, state.history)) or 'none'})")
        return
    for move in moves:
        typer.echo(f"{move['updated']}  version {move['version']:>4}  {move['reason']}")


@models_app.command()
def rollback(registry: RegistryOpt = "models", name: NameOpt = ...,
             alias: Annotated[str, typer.Option(help="The alias to move back.")] = PRODUCTION) -> None:
    """Point ALIAS (production) back at the version it pointed to before."""
    try:
        state = Registry(registry).rollback(name, alias)
    except RegistryError as exc:
        fail(str(exc))
    typer.echo(f"{name}@{alias} is back to version {state.version}")


@models_app.command("copy")
def copy(model: Annotated[str, typer.Option(help="Model folder, or REGISTRY/NAME@ALIAS|VERSION|latest.")],
           out: Annotated[Path, typer.Option(help="Folder to write the copy to (written whole or not at all).")],
           runtime_only: Annotated[bool, typer.Option(
               "--runtime-only", help="Leave out what only training reads (the PyTorch weights) and the graphs of "
                                      "the precision the model does not serve: what a CPU server needs.")] = False,
           all_graphs: Annotated[bool, typer.Option(
               "--all-graphs", help="With --runtime-only: keep the graphs of both precisions.")] = False,
           force: Annotated[bool, typer.Option("--force", help="Replace an existing folder at --out.")] = False,
           json_flag: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False) -> None:
    """Copy a model to a folder of its own, verified; --runtime-only makes the copy a CPU server
    needs (same outputs, same identity for the cleaning job, a fraction of the size)."""
    from strseq_tasks.cli.predict import resolve_model
    from strseq_tasks.serve.bundle_copy import export_bundle
    from strseq_tasks.serve.bundle_schema import BundleError

    if all_graphs and not runtime_only:
        fail("--all-graphs keeps graphs a --runtime-only copy would leave out: give --runtime-only too")
    source = resolve_model(model)
    check_output_option("--out", out, [("--model", source)], folder=True)
    if out.exists() and not force:
        fail(f"--out {out} already exists (pass --force to replace it)")
    try:
        copy = export_bundle(source, out, runtime_only, all_graphs, overwrite=force)
    except (BundleError, OSError) as exc:
        fail(f"{model}: {exc}")
    before, after = _size(source), _size(out)
    result = {"model": mask_url(model), "out": str(out), "runtime_only": runtime_only,
              "left_out": sorted((copy.get("runtime_only") or {}).get("left_out", {})),
              "bytes": after, "source_bytes": before, "smaller": round(1 - after / before, 3) if before else 0.0,
              "content_sha256": copy.get("content_sha256")}
    if json_flag:
        typer.echo(json.dumps(result, indent=2))
        return
    left = f"; left out {', '.join(result['left_out'])}" if result["left_out"] else ""
    typer.echo(f"wrote {out}: {after / 1e6:.1f} MB, {100 * result['smaller']:.0f}% smaller than "
               f"{mask_url(model)} ({before / 1e6:.1f} MB){left}; the same model (content sha256 "
               f"{str(result['content_sha256'])[:12]})")


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).iterdir() if f.is_file())
