"""Retention: ``prune`` removes all but the newest versions of a model, never one an alias needs.

A version is kept when it is one of the newest ``keep``, when an alias points to it now
(production, candidate, ...), or when an alias would go back to it on its next rollback (the
last entry of its history): after a prune, ``strseq models rollback`` still works once.
``prune_plan`` decides that from the version numbers and the aliases alone (pure, tested on
three rows); ``Retention.prune`` applies it.

Removal is whole or nothing per version, and safe beside a concurrent publish or alias move:

- The plan is made and applied under the model's lock (``Registry._model_lock``), which every
  alias move holds while it checks its version exists and writes the alias: no alias can come
  to point at a version while it is being removed. A publish takes the next number above the
  newest version, which a prune always keeps, so the two never meet.
- On a local folder each version is renamed into ``NAME/.trash/`` (one ``rename``: the version is
  whole in ``versions/`` or gone from it), then deleted. A prune killed midway leaves whole
  versions and some trash, which the next prune empties.
- Elsewhere (object stores), the version's ``manifest.json`` is deleted first: that is what
  makes a folder a version (``publish.py``), so the version is gone at once, and its other
  files follow.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from strseq_tasks.serve.aliases import Alias
from strseq_tasks.serve.bundle import MANIFEST
from strseq_tasks.serve.refs import RegistryError, check_name

TRASH = ".trash"


@dataclass(frozen=True)
class Verdict:
    version: int
    keep: bool
    why: tuple[str, ...] = ()  # why it is kept: "one of the newest 3", "production points to it", ...
    size: int = 0  # bytes its files take (what removing it frees)


def prune_plan(versions: list[int], aliases: dict[str, Alias], keep: int) -> list[Verdict]:
    """Each version, newest first, kept or not, and why."""
    if keep < 1:
        raise RegistryError(f"--keep {keep}: keep at least 1 version (the newest is what the next publish follows)")
    newest = set(sorted(versions)[-keep:])
    reasons: dict[int, list[str]] = {v: [] for v in versions}
    for version in sorted(newest):
        reasons[version].append(f"one of the newest {keep}")
    for name, alias in sorted(aliases.items()):
        if alias.version in reasons:
            reasons[alias.version].append(f"{name} points to it")
        if alias.history and alias.history[-1] in reasons:
            reasons[alias.history[-1]].append(f"{name} would roll back to it")
    return [Verdict(v, bool(reasons[v]), tuple(reasons[v])) for v in sorted(versions, reverse=True)]


@dataclass(frozen=True)
class Pruned:
    name: str
    keep: int
    dry_run: bool
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def removed(self) -> list[Verdict]:
        return [v for v in self.verdicts if not v.keep]

    @property
    def freed(self) -> int:
        return sum(v.size for v in self.removed)


class Retention:
    """``Registry``'s retention half (``self``: a ``Registry``)."""

    def prune(self, name: str, keep: int, dry_run: bool = False) -> Pruned:
        """Remove every version ``prune_plan`` does not keep (with ``dry_run``, only say which)."""
        check_name(name)
        prune_plan([], {}, keep)  # --keep 0 is refused before anything is read
        if not self.versions(name):
            known = ", ".join(self.names()) or "none"
            raise RegistryError(f"no model {name!r} in registry {self.label} (models: {known})")
        self._empty_trash(name)  # what a prune killed midway left
        with self._model_lock(name):
            plan = prune_plan(self.versions(name), self.aliases(name), keep)
            plan = [v if v.keep else replace(v, size=self._size(name, v.version)) for v in plan]
            for verdict in [] if dry_run else plan:
                if not verdict.keep:
                    self._discard(name, verdict.version)
        if not dry_run:
            self._empty_trash(name)
        return Pruned(name, keep, dry_run, plan)

    def _size(self, name: str, version: int) -> int:
        return int(self.fs.du(self._path(name, "versions", version), total=True))

    def _discard(self, name: str, version: int) -> None:
        """Take one version out of ``versions/`` in one step (see the module's docstring)."""
        folder = self._path(name, "versions", version)
        if self.local:
            trash = Path(self._path(name, TRASH))
            trash.mkdir(exist_ok=True)
            os.rename(folder, trash / f"{version}-{uuid.uuid4().hex[:8]}")  # the removal
            return
        self.fs.rm_file(f"{folder}/{MANIFEST}")  # the removal: a folder without a manifest is no version
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(folder, recursive=True)

    def _empty_trash(self, name: str) -> None:
        if not self.local:
            return
        trash = Path(self._path(name, TRASH))
        for entry in trash.iterdir() if trash.is_dir() else ():
            shutil.rmtree(entry, ignore_errors=True)  # another prune may be emptying it too
