"""``strseq models``: list, inspect, label, promote, roll back and prune the models of a registry.

Commands about one version take a reference, ``REGISTRY/NAME@VERSION`` (a number, an alias or
``latest``: ``tag``, ``describe``, ``show``), ``prune`` takes a model, ``REGISTRY/NAME``; the
others take ``--registry`` and ``--name`` (``show`` either).
"""

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
    option,
    precision_line,
    print_metrics,
)
from strseq_tasks.data.urls import mask_secrets, mask_url
from strseq_tasks.params import RETRAIN
from strseq_tasks.serve.gates import failed_gates, recorded_gates
from strseq_tasks.serve.labels import parse_tag, tags_line
from strseq_tasks.serve.refs import PRODUCTION, RegistryError, parse_model_ref
from strseq_tasks.serve.registry import Registry

models_app = typer.Typer(no_args_is_help=True,
                         help="List, inspect, label, promote, roll back and prune registry models.")


app.add_typer(models_app, name="models")

VersionRef = Annotated[str, typer.Argument(metavar="REF", show_default=False, help="REGISTRY/NAME@VERSION: a "
                                           "version number, an alias or `latest` (models/names@production).")]


def version_ref(ref: str) -> tuple[Registry, str, int]:
    """The registry, model name and version number a ``REGISTRY/NAME@VERSION`` reference names."""
    parsed = parse_model_ref(ref)
    if parsed is None:
        raise RegistryError(f"{mask_url(ref)!r} is not a version reference: give REGISTRY/NAME@VERSION "
                            "(models/names@3, models/names@production, models/names@latest)")
    reg = Registry(parsed.registry)
    return reg, parsed.name, reg.resolve(parsed.name, parsed.selector)


@models_app.command("list")
def list_models(registry: RegistryOpt = "models",
                name: Annotated[str | None, typer.Option(help="Show the versions of this model.")] = None) -> None:
    """The models of a registry, or the versions of one model with their metrics, gates, aliases,
    tags and description."""
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
        versions = reg.versions(name)
        marks = {v: ", ".join(a for a, s in aliases.items() if s.version == v) or "-" for v in versions}
        width = max([len("aliases"), *map(len, marks.values())])
        typer.echo(f"version  published                  exact match  harm    measured on  gates   {'aliases':<{width}}  tags")
        for version in versions:
            record = reg.publication(name, version)
            metrics, on = record.get("metrics"), "held-out"
            if not metrics:
                metrics, on = reg.manifest(name, version).get("metrics", {}).get("validation", {}), "validation"
            gates = "FAILED" if failed_gates(record) else ("passed" if recorded_gates(record) else "-")
            labels = reg.labels(name, version)
            typer.echo(f"{version:>7}  {record.get('published', '?'):<25}  {_pct(metrics.get('exact_match')):>11}  "
                       f"{_pct(metrics.get('harm')):>6}  {on:<11}  {gates:<6}  {marks[version]:<{width}}  "
                       f"{tags_line(labels.tags)}".rstrip())
            if labels.description:  # its first line, under the version
                typer.echo(f"{'':9}{_first_line(labels.description)}")
        if not versions:
            raise RegistryError(f"no model {name!r} in registry {reg.label}")
    except RegistryError as exc:
        fail(str(exc))


def _pct(value) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.1f}%"


def _first_line(text: str, width: int = 100) -> str:
    line = text.splitlines()[0]
    if len(line) > width:
        return line[:width - 3].rstrip() + "..."
    return line + ("..." if "\n" in text else "")


@models_app.command("show")
def show(ref: Annotated[str | None, typer.Argument(metavar="[REF]", show_default=False, help="REGISTRY/NAME@VERSION "
                                                   "(or --registry, --name and --model-version).")] = None,
         registry: RegistryOpt = "models", name: Annotated[str | None, option(RETRAIN["name"])] = None,
         version: Annotated[str, typer.Option("--model-version", help="A version number, an alias or `latest`.")
                            ] = PRODUCTION,
         json_out: Annotated[bool, typer.Option("--json", help="Print the version's whole record as JSON.")] = False,
         ) -> None:
    """One version: its description, tags, aliases, lineage, gates and run report."""
    if (ref is None) == (name is None):
        fail("give the version as REF (REGISTRY/NAME@VERSION) or with --name (--registry, --model-version): one of the "
             "two")
    try:
        reg, name, number = version_ref(ref) if ref else (Registry(registry), name, None)
        number = number or reg.resolve(name, version)
        record, manifest = reg.publication(name, number), reg.manifest(name, number)
        labels, report, aliases = reg.labels(name, number), reg.attachment(name, number, "report.md"), reg.aliases(name)
    except RegistryError as exc:
        fail(str(exc))
    # masked on the way out too: versions published before records were masked may hold a password
    record, manifest = mask_secrets(record), mask_secrets(manifest)
    marks = {a: s for a, s in aliases.items() if s.version == number}
    if json_out:
        typer.echo(json.dumps({"name": name, "version": number, "registry": reg.label, "aliases": sorted(marks),
                               "description": labels.description, "tags": dict(labels.tags),
                               "labels_updated": labels.updated or None, "lineage": record.get("lineage"),
                               "gates": [vars(g) for g in recorded_gates(record)], "publication": record,
                               "manifest": manifest}, indent=2, ensure_ascii=False))
        return
    typer.echo(f"{name} version {number} ({reg.label})")
    typer.echo(f"  published {record.get('published', '?')}; model created {manifest.get('created')}")
    if labels.description:
        typer.echo("  description: " + labels.description.replace("\n", "\n    "))
    typer.echo(f"  tags: {tags_line(labels.tags) or 'none'}")
    typer.echo(f"  serves: {precision_line(manifest.get('precision') or {})}")
    for alias, state in marks.items():
        typer.echo(f"  alias {alias} (since {state.updated}: {mask_url(state.reason)})")
    for line in _lineage_lines(record.get("lineage")):
        typer.echo(f"  {line}")
    if report:  # written before the registry numbered the version
        text = report.decode("utf-8", errors="replace").replace("the new version", f"version {number}", 1)
        typer.echo("\n" + mask_url(text))
    elif manifest.get("metrics"):
        print_metrics(manifest["metrics"]["validation"])


def _lineage_lines(lineage: object) -> list[str]:
    if not isinstance(lineage, dict):  # a version published before lineage was recorded
        return ["lineage: not recorded (published before strseq recorded it)"]
    data, base, run = lineage.get("data") or {}, lineage.get("base_model"), lineage.get("flow_run")
    lines = [f"data: {data.get('pairs')} pairs from {data.get('source') or 'a source not named'} (fingerprint "
             f"{str(data.get('fingerprint'))[:16]})",
             "base model: " + (f"{base.get('name')} ({base.get('kind')}, manifest sha256 "
                               f"{str(base.get('manifest_sha256'))[:16]})" if isinstance(base, dict)
                               else "none (random weights)"),
             f"published {lineage.get('published')} by {lineage.get('user')} on {lineage.get('host')}, strseq "
             f"{lineage.get('strseq_version')} ({lineage.get('code_version')})"]
    if isinstance(run, dict):
        lines.append(f"flow run: {run.get('flow')}/{run.get('name')} {run.get('id')} {run.get('url') or ''}".rstrip())
    return [mask_url(line) for line in lines]


@models_app.command("tag")
def tag(ref: VersionRef,
        tags: Annotated[list[str] | None, typer.Argument(metavar="[KEY=VALUE]...", show_default=False,
                                                        help="Tags to set (a key set again gets the new value).")]
        = None,
        remove: Annotated[list[str] | None, typer.Option("--remove", metavar="KEY",
                                                         help="Remove this tag (repeat for several).")] = None,
        ) -> None:
    """Set or remove tags of a version. Keys: a letter, then letters, digits, '_', '.', '-' (up to 64);
    values: up to 256 printable characters."""
    try:
        if not tags and not remove:
            raise RegistryError("give tags to set (KEY=VALUE ...) or --remove KEY")
        given = dict(parse_tag(t) for t in tags or [])
        reg, name, number = version_ref(ref)
        labels = reg.set_labels(name, number, given, tuple(remove or ()))
    except RegistryError as exc:
        fail(str(exc))
    typer.echo(f"{name} version {number} tags: {tags_line(labels.tags) or 'none'}")


@models_app.command("describe")
def describe(ref: VersionRef, text: Annotated[str, typer.Argument(metavar="TEXT", show_default=False,
                                                                  help='The description ("" removes it).')]) -> None:
    """Set the description of a version: what it is, why it exists (up to 2,000 characters)."""
    try:
        reg, name, number = version_ref(ref)
        labels = reg.set_labels(name, number, description=text)
    except RegistryError as exc:
        fail(str(exc))
    typer.echo(f"{name} version {number}: " + ("description set" if labels.description else "description removed"))


@models_app.command()
def promote(registry: RegistryOpt = "models", name: NameOpt = ...,
            version: Annotated[str, typer.Option("--model-version", help="A version number, an alias or `latest`.")
                               ] = "latest",
            alias: Annotated[str, typer.Option(help="The alias to move.")] = PRODUCTION,
            reason: Annotated[str, typer.Option("--note", help="Why (recorded with the alias).")] = "promoted by hand",
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
        failed = [g.detail for g in failed_gates(reg.publication(name, number))]
        if failed and not force:
            fail(f"{name} version {number} failed its promotion gates when it was retrained ({'; '.join(failed)}); "
                 f"pass --force to promote it anyway")
        if failed:
            reason = f"{reason} (forced past: {'; '.join(failed)})"
        state = reg.set_alias(name, alias, number, reason, repair=repair)
    except RegistryError as exc:
        fail(str(exc))
    log.info("%s@%s -> version %d", name, alias, state.version)
    _announce(name, state.version, alias, reg.label, reason)
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
        reg = Registry(registry)
        state = reg.rollback(name, alias)
    except RegistryError as exc:
        fail(str(exc))
    _announce(name, state.version, alias, reg.label, "rolled back by hand")
    typer.echo(f"{name}@{alias} is back to version {state.version}")


def _announce(name: str, version: int, alias: str, registry: str, reason: str) -> None:
    """A new production version is news for Prefect's automations (the cleaning deployment's
    trigger, runner/events.py), when the environment names a Prefect server."""
    if alias != PRODUCTION:
        return
    from strseq_tasks.runner.events import announce_promotion

    try:
        announce_promotion(name, version, alias, registry, reason, outside_a_run=True)
    except Exception as exc:  # noqa: BLE001 - the move itself is done and recorded; the news is best effort
        log.warning("%s@%s moved to version %d, but Prefect could not be told (%s): trigger the cleaning "
                    "deployment by hand", name, alias, version, str(exc).splitlines()[0] if str(exc) else exc)


@models_app.command("prune")
def prune(model: Annotated[str, typer.Argument(metavar="MODEL", show_default=False,
                                               help="REGISTRY/NAME (models/names).")],
          keep: Annotated[int, typer.Option(help="Keep the newest N versions (and every version an alias "
                                                 "points to or would roll back to).", show_default=False)],
          dry_run: Annotated[bool, typer.Option("--dry-run", help="Remove nothing; say what would go.")] = False,
          json_out: Annotated[bool, typer.Option("--json", help="Print what was kept and removed as JSON.")] = False,
          ) -> None:
    """Remove all but the newest N versions of a model, never one an alias points to now or would
    roll back to; each version is removed whole (a crash leaves it whole or gone)."""
    registry, slash, name = model.rstrip("/").rpartition("/")
    if "@" in name or not slash:
        fail(f"{mask_url(model)!r}: give the model as REGISTRY/NAME (models/names), without @VERSION: "
             "--keep says which versions stay")
    try:
        reg = Registry(registry or "/")
        pruned = reg.prune(name, keep, dry_run=dry_run)
    except RegistryError as exc:
        fail(str(exc))
    mb = pruned.freed / 1e6
    if json_out:
        typer.echo(json.dumps({"model": name, "registry": reg.label, "keep": keep, "dry_run": dry_run,
                               "kept": [{"version": v.version, "why": list(v.why)} for v in pruned.verdicts if v.keep],
                               "removed": [{"version": v.version, "bytes": v.size} for v in pruned.removed],
                               "freed_bytes": pruned.freed, "freed_mb": round(mb, 1)}, indent=2))
        return
    kept = [v for v in pruned.verdicts if v.keep]
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"{name}: kept {len(kept)} version(s), {verb} {len(pruned.removed)} "
               f"({'would free' if dry_run else 'freed'} {mb:.1f} MB){' (dry run: nothing removed)' if dry_run else ''}")
    for verdict in pruned.verdicts:
        detail = "; ".join(verdict.why) if verdict.keep else f"{verdict.size / 1e6:.1f} MB"
        typer.echo(f"  {'kept' if verdict.keep else verb:<12}  version {verdict.version:>4}  {detail}")


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
