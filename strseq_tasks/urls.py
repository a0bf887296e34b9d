"""Database URLs by reference, so that no password is written into a deployment file or a log.

Wherever strseq takes a database URL (``--db``, ``--pairs``, the flows' ``db`` and ``pairs``
parameters) it also takes a reference, resolved on the machine that runs the job, when it
connects:

- ``env:NAME``: the value of the environment variable NAME (e.g. set on the worker);
- ``prefect-secret:NAME``: the value of the Prefect Secret block NAME
  (``prefect block create secret``, or ``Secret(value=url).save("NAME")``).

Flow parameters, logs and reports keep the reference, never the URL (strseq_runs stores no URL).
"""

from __future__ import annotations

import os

ENV, PREFECT_SECRET = "env:", "prefect-secret:"


class UrlReferenceError(ValueError):
    """A URL reference that cannot be resolved here (unset variable, unknown block)."""


def is_reference(value: str) -> bool:
    return value.startswith((ENV, PREFECT_SECRET))


def resolve_url(value: str) -> str:
    """The URL behind ``value`` (``value`` itself unless it is a reference)."""
    if value.startswith(ENV):
        name = value[len(ENV):]
        url = os.environ.get(name, "")
        if not url.strip():
            raise UrlReferenceError(f"{value}: the environment variable {name} is not set here "
                                    "(it should hold the database URL)")
        return url.strip()
    if value.startswith(PREFECT_SECRET):
        name = value[len(PREFECT_SECRET):]
        from prefect.blocks.system import Secret

        try:
            url = Secret.load(name).get()
        except ValueError as exc:  # Prefect: "Unable to find block document named ..."
            raise UrlReferenceError(f"{value}: no Prefect Secret block named {name!r} ({exc})") from None
        if not isinstance(url, str) or not url.strip():
            raise UrlReferenceError(f"{value}: the Prefect Secret block {name!r} does not hold a URL")
        return url.strip()
    return value
