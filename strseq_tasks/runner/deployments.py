"""strseq's scheduled jobs as declared in ``deploy/prefect.yaml``, for ``strseq serve`` and tests.

``prefect deploy --prefect-file deploy/prefect.yaml --all`` turns the file into deployments on a
Prefect server, run by workers of a ``process`` pool. ``strseq serve`` reads the *same* file and
serves its deployments, schedules and parameters from one process (Prefect's ``serve``): no
work pool, no worker, nothing to keep in sync by hand.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from strseq_tasks.data.urls import mask_url
from strseq_tasks.errors import StrseqError

PLACEHOLDER = re.compile(r"{{\s*\$(\w+)\s*}}")


class DeploymentFileError(StrseqError, ValueError):
    """deploy/prefect.yaml cannot be used as it is (bad YAML, unset variable, bad parameters)."""


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    entrypoint: str  # module.path:flow_function
    parameters: dict
    crons: list[tuple[str, str | None]] = field(default_factory=list)  # (cron, timezone)
    tags: list[str] = field(default_factory=list)
    description: str | None = None


def placeholders(path: Path) -> list[str]:
    """Environment variables the file's values refer to (``{{ $NAME }}``), in order of appearance."""
    found: list[str] = []

    def walk(value) -> None:
        if isinstance(value, str):
            found.extend(PLACEHOLDER.findall(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    return list(dict.fromkeys(found))


def _fill(value, env: dict[str, str], path: Path):
    if isinstance(value, str):
        def sub(match: re.Match) -> str:
            if match.group(1) not in env:
                raise DeploymentFileError(f"{path}: {match.group(0)} needs the environment variable "
                                          f"{match.group(1)}, which is not set")
            return env[match.group(1)]

        return PLACEHOLDER.sub(sub, value)
    if isinstance(value, dict):
        return {k: _fill(v, env, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, env, path) for v in value]
    return value


def load_deployments(path: Path, env: dict[str, str] | None = None, fill: bool = True) -> list[DeploymentSpec]:
    """The deployments of a prefect.yaml, with ``{{ $VAR }}`` filled from ``env`` (default: the
    process environment) unless ``fill`` is False."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DeploymentFileError(f"{path}: cannot read it as YAML: {exc}") from None
    entries = (document or {}).get("deployments") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise DeploymentFileError(f"{path}: no `deployments:` list")
    specs = []
    for entry in entries:
        if fill:
            entry = _fill(entry, dict(os.environ) if env is None else env, path)
        name = entry.get("name")
        if not name or not entry.get("entrypoint"):
            raise DeploymentFileError(f"{path}: every deployment needs a name and an entrypoint "
                                      f"({mask_url(str(entry))})")
        crons = [(s["cron"], s.get("timezone")) for s in entry.get("schedules") or [] if "cron" in s]
        specs.append(DeploymentSpec(name, entry["entrypoint"], entry.get("parameters") or {}, crons,
                                    list(entry.get("tags") or []), entry.get("description")))
    return specs


def load_flow(spec: DeploymentSpec):
    from prefect.flows import load_flow_from_entrypoint

    try:
        return load_flow_from_entrypoint(spec.entrypoint)
    except Exception as exc:  # import errors, missing attribute, not a flow
        raise DeploymentFileError(f"deployment {spec.name}: cannot load {spec.entrypoint}: {exc}") from None


def check_parameters(spec: DeploymentSpec) -> dict:
    """The deployment's parameters validated against its flow's signature (pydantic models)."""
    import logging

    flow = load_flow(spec)
    prefect_log = logging.getLogger("prefect.flows")
    level = prefect_log.level
    prefect_log.setLevel(logging.CRITICAL)  # it logs the refused parameters whole, passwords and all
    try:
        return flow.validate_parameters(spec.parameters)
    except Exception as exc:  # prefect.exceptions.ParameterTypeError and friends
        # pydantic quotes the values it refused: a URL with its password (filled in from the environment)
        raise DeploymentFileError(f"deployment {spec.name}: invalid parameters: {mask_url(str(exc))}") from None
    finally:
        prefect_log.setLevel(level)


def runner_deployments(specs: list[DeploymentSpec]) -> list:
    """``RunnerDeployment``s for ``prefect.serve``, with the file's schedules and parameters."""
    from prefect.schedules import Cron

    out = []
    for spec in specs:
        check_parameters(spec)
        out.append(load_flow(spec).to_deployment(
            name=spec.name, parameters=spec.parameters, tags=spec.tags, description=spec.description,
            schedules=[Cron(cron, timezone=tz) for cron, tz in spec.crons] or None))
    return out


def demo_environment(demo: Path) -> dict[str, str]:
    """Values for the file's variables that run the jobs against a ``strseq demo`` folder."""
    demo = Path(demo).resolve()
    url = f"sqlite:///{demo / 'crm.db'}"
    return {"STRSEQ_HOME": str(demo), "STRSEQ_REGISTRY": str(demo / "models"), "STRSEQ_PAIRS_DB": url,
            "STRSEQ_CRM_DB": url}
