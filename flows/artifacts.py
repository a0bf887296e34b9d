"""What a flow run leaves in Prefect's UI besides its logs: artifacts, one key per model or per
cleaned column, so each has its own history in the Artifacts page (``names-metrics``,
``clean-customers-name``), never one key shared by every table.

Prefect keys allow lower-case letters, digits and dashes only: ``artifact_key`` makes one of any
model, table or column name.
"""

from __future__ import annotations

import base64

from prefect.artifacts import (
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from strseq_tasks.data.urls import mask_url
from strseq_tasks.jobs.retrain import METRIC_LABELS
from strseq_tasks.serve.registry import Registry

REVIEW_HEAD = 10  # review rows shown in a cleaning run's table artifact (the rest: strseq review)


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key of ``parts``: lower-case letters, digits and single dashes."""
    text = "-".join(parts).lower()
    key = "".join(c if c.isascii() and c.isalnum() else "-" for c in text)
    return "-".join(filter(None, key.split("-"))) or "strseq"


def column_key(table: str, column: str, schema: str | None = None) -> str:
    """The key prefix of one cleaned column: ``clean-[schema-]table-column``."""
    return artifact_key("clean", *([schema] if schema else []), table, column)


def metrics_table(name: str, challenger: dict, champion: dict | None, champion_version: int | None) -> None:
    """The held-out metrics of the new model beside production's, as a table artifact."""
    production = "production" if champion_version is None else f"production (version {champion_version})"
    rows = [{"metric": label, "new model": _percent(challenger.get(key)),
             production: None if champion is None else _percent(champion.get(key))}
            for key, label in METRIC_LABELS.items()]
    create_table_artifact(rows, key=artifact_key(name, "metrics"),
                          description=f"{name}: held-out metrics of the new model and of production")


def version_link(registry: Registry, name: str, version: int, promoted: bool) -> None:
    """A link to the version in the registry: ``file:///...`` for a folder, else its fsspec URL
    (``s3://bucket/models/names/versions/3``), password masked."""
    state = "promoted to production" if promoted else "published as candidate"
    url = registry.fs.unstrip_protocol(f"{registry.root}/{name}/versions/{version}")  # the registry's layout
    create_link_artifact(mask_url(url), link_text=f"{name} version {version} ({state})",
                         key=artifact_key(name, "version"), description=f"{name} version {version} in the registry")


def training_plot(name: str, version: int, png: bytes) -> None:
    """``training.png`` itself in the UI: an image artifact shows an image URL, so the PNG travels as
    a ``data:`` URL (~40 KB) rather than as a link to a file the browser could not reach."""
    url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    create_image_artifact(url, key=artifact_key(name, "training-plot"),
                          description=f"{name} version {version}: learning curve and held-out reliability diagram")


def report(markdown: str, key: str, description: str) -> None:
    create_markdown_artifact(markdown, key=key, description=description)


def review_table(rows: list[dict], key: str, description: str) -> None:
    """The head of a run's review queue, most useful question first, as a table artifact."""
    create_table_artifact([{"id": r["id"], "key": r["key"], "value": r["value"], "suggestion": r["suggestion"],
                            "confidence": _round(r["confidence"]), "reason": r.get("reason")} for r in rows],
                          key=key, description=description)


class ColumnProgress:
    """A cleaning run's progress in the UI: a progress artifact of the rows read out of the rows
    the validation counted, updated after each batch."""

    def __init__(self, key: str, total: int, what: str):
        self.total, self.what = max(total, 1), what
        self.id = create_progress_artifact(0.0, key=artifact_key(key, "progress"), description=f"cleaning {what}")

    def __call__(self, rows_read: int) -> None:
        update_progress_artifact(self.id, min(100.0, 100.0 * rows_read / self.total),
                                 description=f"cleaning {self.what}: {rows_read:,} of {self.total:,} rows read")


def _percent(value) -> str | None:
    """A rate as the reports print it (``97.5%``); None where it is undefined (NaN, missing)."""
    if not isinstance(value, int | float) or value != value:
        return None
    return f"{100 * value:.1f}%"


def _round(value):
    return None if value is None or value != value else round(float(value), 4)
