"""The event strseq sends Prefect when a model version becomes production: ``strseq.model.promoted``.

The cleaning deployment in ``flows/prefect.yaml`` is triggered by it (an automation Prefect runs),
so a column is cleaned with a new model as soon as one is promoted, whoever promoted it: the
retrain flow's ``promote`` task, or a person with ``strseq models promote`` / ``rollback``.
"""

from __future__ import annotations

import logging
import os

PROMOTED = "strseq.model.promoted"

log = logging.getLogger("strseq.events")


def promotion(name: str, version: int, alias: str, registry: str, reason: str) -> dict:
    """The event's fields (pure): its resource names the model, as the deployment's trigger matches it."""
    return {"event": PROMOTED,
            "resource": {"prefect.resource.id": f"strseq.model.{name}", "prefect.resource.name": name,
                         "strseq.model.name": name, "strseq.model.version": str(version),
                         "strseq.model.alias": alias, "strseq.registry": registry},
            "payload": {"reason": reason}}


def announce_promotion(name: str, version: int, alias: str, registry: str, reason: str,
                       outside_a_run: bool = False) -> bool:
    """Send ``strseq.model.promoted``; whether it was sent. ``outside_a_run`` (a command a person
    ran): only to a Prefect server the environment names (``PREFECT_API_URL``), whose automations
    listen, and waiting until it is delivered, since the process ends next; not without Prefect."""
    try:
        from prefect.events import emit_event
        from prefect.events.worker import EventsWorker
        from prefect.settings import PREFECT_API_URL
    except ImportError:  # a CPU server with the runtime alone: no Prefect to tell
        return False
    if outside_a_run and not PREFECT_API_URL.value() and not os.environ.get("PREFECT_API_URL"):
        return False
    sent = emit_event(**promotion(name, version, alias, registry, reason)) is not None
    if sent and outside_a_run:
        EventsWorker.drain_all()
        log.info("told Prefect: %s %s version %d (%s)", PROMOTED, name, version, alias)
    return sent
