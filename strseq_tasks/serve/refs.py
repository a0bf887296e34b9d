"""Names and references of registry models: ``REGISTRY/NAME@SELECTOR`` (``ModelRef``), what a
model name and an alias may be, the registry's error, and where strseq keeps things on this
machine (``cache_root``)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from strseq_tasks.errors import StrseqError

PRODUCTION = "production"


CANDIDATE = "candidate"


NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


ALIAS_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,49}")


def cache_root() -> Path:
    """strseq's folder on this machine for what it keeps between runs: copies of remote registry
    versions, trainings whose export failed (``$STRSEQ_CACHE``, default ``~/.cache/strseq``)."""
    return Path(os.environ.get("STRSEQ_CACHE", Path.home() / ".cache" / "strseq"))


class RegistryError(StrseqError):
    """A registry operation that cannot be done (unknown model, version or alias, bad name)."""


@dataclass(frozen=True)
class ModelRef:
    """``REGISTRY/NAME@SELECTOR``: SELECTOR is an alias, a version number or ``latest``."""

    registry: str
    name: str
    selector: str

    def __str__(self) -> str:
        return f"{self.registry.rstrip('/')}/{self.name}@{self.selector}"


def parse_model_ref(text: str) -> ModelRef | None:
    """A ``ModelRef`` when ``text`` has the form REGISTRY/NAME@SELECTOR, else None (a folder)."""
    head, sep, selector = str(text).rpartition("@")
    if not sep or "/" in selector or not selector:
        return None
    registry, slash, name = head.rstrip("/").rpartition("/")
    if not slash or not NAME_PATTERN.fullmatch(name):
        return None
    return ModelRef(registry or "/", name, selector)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or name in (".", ".."):
        raise RegistryError(f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' "
                            "(not starting with '.', '_' or '-'; at most 100 characters)")
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS_PATTERN.fullmatch(alias) or alias == "latest":
        raise RegistryError(f"invalid alias {alias!r}: lower-case letters, digits, '_' and '-' ('latest' is reserved)")
    return alias
