"""strseq's scheduled jobs as declared in ``flows/prefect.yaml``, for ``strseq serve`` and tests.

The file ships inside the package (``strseq_tasks/flows/prefect.yaml``; ``deploy/prefect.yaml`` in
a checkout is a link to it), so ``strseq serve`` works from any install. ``prefect deploy
--prefect-file ... --all`` turns it into deployments run by the workers of a ``process`` pool;
``strseq serve`` serves the *same* deployments from one process (Prefect's ``serve``: no work
pool, no worker). Each entry is read the way ``prefect deploy`` reads it: ``{{ $VAR }}`` filled by
Prefect's own templating, and every schedule, trigger and concurrency limit built as Prefect's own
objects (``prefect.schedules.Schedule``: cron, interval or rrule, ``active``, ``parameters``;
``DeploymentTriggerTypes``; ``ConcurrencyLimitConfig``). A key that only a work pool's deployment
uses (``work_pool``, ``pull``, ...) is not needed to serve; any other key is refused by name,
never dropped in silence.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from strseq_tasks.data.urls import mask_url
from strseq_tasks.errors import StrseqError

PREFECT_FILE = Path(__file__).resolve().parents[1] / "flows" / "prefect.yaml"
PLACEHOLDER = re.compile(r"{{\s*\$(\w+)\s*}}")
SERVED = {"name", "description", "version", "tags", "entrypoint", "parameters", "schedules", "paused",
          "concurrency_limit", "triggers", "enforce_parameter_schema"}
POOL_ONLY = {"work_pool", "pull", "build", "push", "version_type"}  # where a worker finds the code: not served
SCHEDULE_KEYS = {"cron", "interval", "rrule", "timezone", "anchor_date", "day_or", "active", "parameters", "slug"}


class DeploymentFileError(StrseqError, ValueError):
    """The deployments file cannot be used as it is (bad YAML, unset variable, bad parameters)."""


@dataclass(frozen=True)
class DeploymentSpec:
    """One entry of the file, its ``{{ $VAR }}`` filled in."""

    entry: dict

    @property
    def name(self) -> str:
        return self.entry["name"]

    @property
    def entrypoint(self) -> str:
        return self.entry["entrypoint"]

    @property
    def parameters(self) -> dict:
        return self.entry.get("parameters") or {}

    def schedules(self) -> list:
        """``prefect.schedules.Schedule`` of each entry of ``schedules:``, as ``prefect deploy`` reads it."""
        from prefect.schedules import Schedule

        out = []
        for item in self.entry.get("schedules") or []:
            unknown = sorted(set(item) - SCHEDULE_KEYS)
            if unknown:
                raise DeploymentFileError(f"deployment {self.name}: unknown schedule key(s) {', '.join(unknown)}")
            item = dict(item)
            if isinstance(item.get("interval"), int | float):
                item["interval"] = datetime.timedelta(seconds=item["interval"])  # seconds, as prefect deploy reads it
            if isinstance(item.get("anchor_date"), str):
                item["anchor_date"] = datetime.datetime.fromisoformat(item["anchor_date"])
            try:
                out.append(Schedule(**item))
            except (TypeError, ValueError) as exc:
                raise DeploymentFileError(f"deployment {self.name}: bad schedule {item}: {exc}") from None
        return out

    def triggers(self) -> list:
        from prefect.events import DeploymentTriggerTypes
        from pydantic import TypeAdapter, ValidationError

        adapter = TypeAdapter(DeploymentTriggerTypes)
        out = []
        for i, spec in enumerate(self.entry.get("triggers") or [], start=1):
            try:  # named as prefect deploy names them
                out.append(adapter.validate_python({"name": f"{self.name}__automation_{i}", **spec}))
            except ValidationError as exc:
                raise DeploymentFileError(f"deployment {self.name}: bad trigger {i}: {exc}") from None
        return out

    def concurrency_limit(self):
        from prefect.client.schemas.objects import ConcurrencyLimitConfig

        limit = self.entry.get("concurrency_limit")
        return ConcurrencyLimitConfig(**limit) if isinstance(limit, dict) else limit

    def when(self) -> str:
        """The schedules, triggers and limit in a line (``strseq serve`` prints it)."""
        parts = [_describe(s) for s in self.schedules()]
        parts += [f"on {', '.join(sorted(t.expect))}" for t in self.triggers() if getattr(t, "expect", None)]
        limit = self.concurrency_limit()
        if limit is not None:
            parts.append(f"at most {getattr(limit, 'limit', limit)} run(s) at a time")
        return "; ".join(parts) or "no schedule"


def _describe(schedule) -> str:
    what = schedule.cron or schedule.rrule or (f"every {schedule.interval}" if schedule.interval else "?")
    return f"{what} ({schedule.timezone or 'UTC'})" + ("" if schedule.active else " inactive")


def placeholders(path: Path = PREFECT_FILE) -> list[str]:
    """Environment variables the file's values refer to (``{{ $NAME }}``), in order of appearance."""
    values = yaml.safe_dump(yaml.safe_load(Path(path).read_text(encoding="utf-8")), sort_keys=False)  # no comments
    return list(dict.fromkeys(PLACEHOLDER.findall(values)))


def load_deployments(path: Path = PREFECT_FILE) -> list[DeploymentSpec]:
    """The deployments of a prefect.yaml, with ``{{ $VAR }}`` filled from the environment."""
    from prefect.utilities.templating import apply_values

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
        entry = apply_values(entry, {}, remove_notset=False)  # {{ $VAR }} as prefect deploy fills it
        unset = PLACEHOLDER.findall(yaml.safe_dump(entry))
        if unset:
            raise DeploymentFileError(f"{path}: {{{{ ${unset[0]} }}}} needs the environment variable {unset[0]}, "
                                      "which is not set")
        if not entry.get("name") or not entry.get("entrypoint"):
            raise DeploymentFileError(f"{path}: every deployment needs a name and an entrypoint "
                                      f"({mask_url(str(entry))})")
        unknown = sorted(set(entry) - SERVED - POOL_ONLY)
        if unknown:
            raise DeploymentFileError(f"{path}: deployment {entry['name']}: unknown key(s) {', '.join(unknown)}")
        specs.append(DeploymentSpec(entry))
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
    """``RunnerDeployment``s for ``prefect.serve``: the file's parameters, schedules (cron, interval
    or rrule; ``active: false`` kept inactive), triggers, concurrency limit, tags and description."""
    out = []
    for spec in specs:
        check_parameters(spec)
        entry = spec.entry
        out.append(load_flow(spec).to_deployment(
            name=spec.name, parameters=spec.parameters, tags=list(entry.get("tags") or []),
            description=entry.get("description"), version=entry.get("version"), paused=entry.get("paused"),
            schedules=spec.schedules() or None, triggers=spec.triggers() or None,
            concurrency_limit=spec.concurrency_limit(),
            enforce_parameter_schema=entry.get("enforce_parameter_schema", True)))
    return out


def demo_environment(demo: Path) -> dict[str, str]:
    """Values for the file's variables that run the jobs against a ``strseq demo`` folder."""
    demo = Path(demo).resolve()
    url = f"sqlite:///{demo / 'crm.db'}"
    return {"STRSEQ_HOME": str(demo), "STRSEQ_REGISTRY": str(demo / "models"), "STRSEQ_PAIRS_DB": url,
            "STRSEQ_CRM_DB": url}
