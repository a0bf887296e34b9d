"""Database URLs by reference, so that no password is written into a deployment file or a log.

Wherever strseq takes a database URL (``--db``, ``--pairs``, the flows' ``db`` and ``pairs``
parameters) it also takes a reference, resolved on the machine that runs the job, when it
connects:

- ``env:NAME``: the value of the environment variable NAME (e.g. set on the worker);
- ``prefect-secret:NAME``: the value of the Prefect Secret block NAME
  (``prefect block create secret``, or ``Secret(value=url).save("NAME")``).

Flow parameters, logs and reports keep the reference, never the URL (strseq_runs stores no URL).

A URL given as it is (``postgresql+psycopg://etl:PASSWORD@host/db``, ``ftp://user:PASSWORD@host``)
works too, and whatever strseq writes or prints about it shows it through ``mask_url``, with the
password replaced by ``***``: the publication record and report of a version, ``strseq models
show``, messages, and the flows' parameters as Prefect stores them (``MaskedUrl``: the flow
receives the URL itself, its JSON form is masked).
"""

from __future__ import annotations

import os
import re
from typing import Annotated

from strseq_tasks.errors import StrseqError

ENV, PREFECT_SECRET = "env:", "prefect-secret:"
MASK = "***"

# scheme://USER:PASSWORD@ with SQLAlchemy's grammar (the user runs to the first ':' and may hold
# '@', the password to the next '@' and may hold '/' and spaces), on one line, and the password
# never runs across another '://' (SQLAlchemy renders ':' and '/' in it percent-encoded): a message
# that names a URL without a password and, further on, another URL with a user ("postgres+psycopg:
# //postgres@host:5432/x is not ... e.g. postgresql://user@host/db") is not masked from the first
# ':' to the last '@'
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/\n]*:)(?:(?!://)[^@\n])*@")
# ?password=..., &sslpassword=..., &aws_secret_access_key=..., &sig=... (an Azure SAS)
_QUERY_SECRET = re.compile(r"(?P<head>[?&;][\w.\-]*(?:pass|pwd|secret|token|apikey|api_key|accountkey|sig)"
                           r"[\w.\-]*=)[^&#\s]*", re.IGNORECASE)


class UrlReferenceError(StrseqError, ValueError):
    """A URL reference that cannot be resolved here (unset variable, unknown block)."""


def mask_url(text: str) -> str:
    """``text`` (a URL, or a message or report holding URLs) with every password in it replaced
    by ``***``: the user:password part of ``scheme://user:password@host`` (what SQLAlchemy's
    ``render_as_string(hide_password=True)`` gives, for any scheme) and the value of query
    parameters such as ``password=`` or ``secret=``. References (``env:NAME``), file paths and URLs
    without a password are returned as they are. The one place strseq hides passwords."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['head']}{MASK}", text)


def mask_secrets(value):
    """A JSON-like value (dicts, lists, strings) with ``mask_url`` applied to every string in it."""
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, dict):
        return {mask_secrets(k): mask_secrets(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v) for v in value]
    return value


class _MaskedInJson:
    """Pydantic metadata: the field holds the value itself; its JSON form goes through ``mask_url``."""

    def __get_pydantic_core_schema__(self, source, handler):
        from pydantic_core import core_schema  # pydantic comes with the flows; the runtime never needs it

        schema = handler(source)
        schema["serialization"] = core_schema.plain_serializer_function_ser_schema(mask_url, when_used="json")
        return schema


# A parameter field for a URL, reference or path: ``params.pairs`` is the URL to connect with;
# ``model_dump(mode="json")`` (Prefect's flow-run parameters, a run's record) shows it masked.
# A run created from such a dump (a deployment's run) gets the masked value: use a reference there.
MaskedUrl = Annotated[str, _MaskedInJson()]


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
