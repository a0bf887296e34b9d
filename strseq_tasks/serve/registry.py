"""A versioned model registry on a local folder or any fsspec URL (``s3://``, ``memory://``, ...).

Layout (readable with ``ls``)::

    REGISTRY/NAME/versions/1/            a model bundle (manifest.json, vocab.json, *.onnx, ...)
    REGISTRY/NAME/versions/1/publication.json   who published it, when, from what (lineage), the gates
    REGISTRY/NAME/versions/1/labels.json        its tags and description (``labels``)
    REGISTRY/NAME/aliases/production.json        {"version": 3, "history": [1, 2], ...}

Versions are numbered 1, 2, ...; a version's bundle and publication record never change (its
labels may). How one is published atomically, locally and on object stores, is ``publish.py``'s;
how old ones are removed, ``retention.py``'s.

Aliases (``production``, ``candidate``) are small JSON files replaced atomically (``os.replace``
locally, a single object write elsewhere). Each keeps the versions it pointed to before, so
``rollback`` can step back. Bundles are verified by their manifest hashes whenever loaded.

Moving an alias reads it, then writes it (the history grows): two moves at once must not lose
one. On a local folder each move holds an exclusive ``flock`` on ``aliases/.ALIAS.lock`` (see
``aliases``): moves from any number of processes land one after the other, each in the history.
On other filesystems fsspec offers no compare-and-swap of an existing object, so moves are
serialized within one process only: two processes (or machines) moving the same alias of an
``s3://`` registry at the same instant can lose a history entry (the alias still names one whole
version: the last write wins). Move an alias there from one place at a time (the retrain
deployment, run one at a time).

What may remove a version, or depends on one staying, also holds the model's lock
(``NAME/.lock``, ``_model_lock``): an alias move (after its alias's lock) checks that its version
exists and writes the alias under it, a change of labels reads and writes them under it, and
``prune`` decides what to remove and removes it under it. So no alias is ever left pointing at
a version a prune removed at the same moment.

Everything read back is checked before use: version folders are ASCII numbers (anything else
in ``versions/`` is ignored), alias files must hold exactly the alias format, selectors given by
users must be a number, an alias name or ``latest``; a damaged file is a ``RegistryError`` that
names it. Passwords in URLs (the registry's own, or the sources in a publication record) are
shown through ``urls.mask_url``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from strseq_tasks.data.safe_files import write_bytes_atomically
from strseq_tasks.data.urls import mask_url
from strseq_tasks.serve.aliases import (
    MAX_BYTES,
    VERSION_PATTERN,
    Alias,
    alias_bytes,
    file_lock,
    parse_alias,
    process_lock,
)
from strseq_tasks.serve.bundle import MANIFEST, BundleError, read_manifest
from strseq_tasks.serve.labels import LABELS, Labels, labels_bytes, parse_labels
from strseq_tasks.serve.publish import PUBLICATION, Publisher
from strseq_tasks.serve.refs import (
    ALIAS_PATTERN,
    NAME_PATTERN,
    PRODUCTION,
    ModelRef,
    RegistryError,
    cache_root,
    check_alias,
    check_name,
)
from strseq_tasks.serve.retention import Retention

log = logging.getLogger("strseq.registry")

VERSION = re.compile(VERSION_PATTERN)
MAX_RECORD_BYTES = 64 << 20  # publication.json and manifest.json are kilobytes


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Registry(Publisher, Retention):
    def __init__(self, url: str | Path, cache_dir: str | Path | None = None):
        self.url = str(url)
        self.label = mask_url(self.url)  # what messages show
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url)
        except (ValueError, ImportError, OSError) as exc:  # unknown protocol, its package missing, no server
            raise RegistryError(f"cannot open the registry {self.label}: {mask_url(str(exc))}") from None
        self.root = self.root.rstrip("/") or "/"
        self.local = isinstance(self.fs, LocalFileSystem)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else cache_root() / "registry"

    def __repr__(self) -> str:
        return f"Registry({self.label!r})"

    def _path(self, *parts: object) -> str:
        return "/".join([self.root.rstrip("/"), *map(str, parts)])

    # --- reading -------------------------------------------------------------------------

    def names(self) -> list[str]:
        if not self.fs.isdir(self.root):
            return []
        found = [Path(p).name for p in self.fs.ls(self.root, detail=False)]
        return sorted(n for n in found if NAME_PATTERN.fullmatch(n) and self.versions(n))

    def versions(self, name: str) -> list[int]:
        """Committed versions of ``name`` (those with a manifest), ascending."""
        check_name(name)
        return [v for v in self._numbered(name) if self.fs.isfile(self._path(name, "versions", v, MANIFEST))]

    def _numbered(self, name: str) -> list[int]:
        folder = self._path(name, "versions")
        if not self.fs.isdir(folder):
            return []
        names = (Path(p).name for p in self.fs.ls(folder, detail=False))
        return sorted(int(n) for n in names if VERSION.fullmatch(n))  # anything else is not ours: ignored

    def manifest(self, name: str, version: int) -> dict:
        """The manifest as stored (not verified: ``fetch`` verifies every file)."""
        self._require_version(name, version)
        return self._record(self._path(name, "versions", version, MANIFEST), "manifest")

    def publication(self, name: str, version: int) -> dict:
        self._require_version(name, version)
        path = self._path(name, "versions", version, PUBLICATION)
        return self._record(path, "publication record") if self.fs.isfile(path) else {}

    def labels(self, name: str, version: int) -> Labels:
        """A version's tags and description (empty for a version never labelled)."""
        self._require_version(name, version)
        path = self._path(name, "versions", version, LABELS)
        if not self.fs.isfile(path):
            return Labels()
        try:
            return parse_labels(self.fs.cat_file(path))
        except ValueError as exc:
            raise RegistryError(f"{path}: damaged labels file ({exc}); `strseq models tag`/`describe` write a "
                                "new one once it is removed") from None

    def _record(self, path: str, what: str) -> dict:
        """A JSON object stored in the registry, or RegistryError naming the file."""
        try:
            data = json.loads(self.fs.cat_file(path, start=0, end=MAX_RECORD_BYTES + 1).decode("utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise RegistryError(f"{path}: unreadable {what} ({exc})") from None
        return data

    def attachment(self, name: str, version: int, file: str) -> bytes | None:
        """A file stored beside a version's bundle (``publication.json``, ``report.md``, ...)."""
        self._require_version(name, version)
        path = self._path(name, "versions", version, Path(file).name)
        return self.fs.cat_file(path) if self.fs.isfile(path) else None

    def alias(self, name: str, alias: str) -> Alias | None:
        """The alias as stored (None if it was never set); RegistryError if its file is damaged."""
        path = self._alias_path(name, alias)
        if not self.fs.isfile(path):
            return None
        try:
            return parse_alias(self.fs.cat_file(path, start=0, end=MAX_BYTES + 1))
        except ValueError as exc:
            raise RegistryError(f"{path}: damaged alias file ({exc}); `strseq models promote --registry "
                                f"{self.label} --name {name} --alias {alias} --model-version N --repair` "
                                "replaces it (the damaged file is kept beside it)") from None

    def _alias_path(self, name: str, alias: str) -> str:
        return self._path(check_name(name), "aliases", f"{check_alias(alias)}.json")

    def aliases(self, name: str) -> dict[str, Alias]:
        folder = self._path(check_name(name), "aliases")
        if not self.fs.isdir(folder):
            return {}
        found = [Path(p).stem for p in self.fs.ls(folder, detail=False) if p.endswith(".json")]
        return {a: self.alias(name, a) for a in sorted(found) if ALIAS_PATTERN.fullmatch(a)}

    def resolve(self, name: str, selector: str) -> int:
        """The version an alias, a number or ``latest`` names."""
        if not isinstance(selector, str) or not (selector == "latest" or VERSION.fullmatch(selector)
                                                 or ALIAS_PATTERN.fullmatch(selector)):
            raise RegistryError(f"invalid version {str(selector)[:60]!r}: give a version number (1, 2, ...), an "
                                "alias (production, candidate, ...) or 'latest'")
        versions = self.versions(name)
        if not versions:
            known = ", ".join(self.names()) or "none"
            raise RegistryError(f"no model {name!r} in registry {self.label} (models: {known})")
        if selector == "latest":
            return versions[-1]
        if VERSION.fullmatch(selector):
            self._require_version(name, int(selector))
            return int(selector)
        state = self.alias(name, selector)
        if state is None:
            known = ", ".join(self.aliases(name)) or "none"
            raise RegistryError(f"model {name!r} has no alias {selector!r} (aliases: {known}; or give a version "
                                f"number or 'latest')")
        if state.version not in versions:
            raise RegistryError(f"{self._alias_path(name, selector)}: alias {selector!r} points at version "
                                f"{state.version}, which the registry does not have (versions: "
                                f"{', '.join(map(str, versions))}); move it with `strseq models promote` or "
                                "`rollback`")
        return state.version

    def _require_version(self, name: str, version: int) -> None:
        versions = self.versions(name)
        if version not in versions:
            raise RegistryError(f"model {name!r} has no version {version} in {self.label} "
                                f"(versions: {', '.join(map(str, versions)) or 'none'})")

    def fetch(self, name: str, version: int) -> Path:
        """A local, verified folder of the bundle (downloaded into the cache if the registry is remote)."""
        self._require_version(name, version)
        source = self._path(name, "versions", version)
        if self.local:
            real, root = Path(source).resolve(), Path(self.root).resolve()
            if not real.is_relative_to(root):
                raise RegistryError(f"{source} leads outside the registry (to {real}): refused")
            read_manifest(Path(source))
            return Path(source)
        key = hashlib.sha256(f"{self.fs.protocol}:{self.root}".encode()).hexdigest()[:16]
        target = self.cache_dir / key / name / str(version)
        if target.is_dir():
            try:
                read_manifest(target)
                return target
            except BundleError:
                shutil.rmtree(target, ignore_errors=True)  # a damaged cache entry: download again
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=target.parent))
        try:
            for path in self.fs.ls(source, detail=False):
                if self.fs.isfile(path) and Path(path).name != ".claim":
                    (tmp / Path(path).name).write_bytes(self.fs.cat_file(path))
            read_manifest(tmp)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    def load(self, ref: ModelRef | str) -> tuple[Path, int]:
        ref = ref if isinstance(ref, ModelRef) else ModelRef(self.url, *str(ref).split("@", 1))
        version = self.resolve(ref.name, ref.selector)
        return self.fetch(ref.name, version), version

    # --- writing (publish and published_as: publish.Publisher) -----------------------

    def check_writable(self) -> None:
        """Refuse, before a run's work, a local registry it could not publish to (a file, a path
        under a file, a folder not writable). Remote registries say so when written."""
        if not self.local:
            return
        from strseq_tasks.data.output_paths import OutputPathError, check_output

        try:
            check_output("--registry", Path(self.root), folder=True, replaced=False)
        except OutputPathError as exc:
            raise RegistryError(str(exc)) from None

    def set_alias(self, name: str, alias: str, version: int, reason: str, repair: bool = False) -> Alias:
        """Point ``alias`` at ``version``; the version it pointed to joins its history. A damaged
        alias file is refused, or with ``repair`` kept aside (``.ALIAS.json.damaged-TIME``) and
        replaced by a new alias with no history."""
        self._require_version(name, version)  # a clear error before waiting for any lock
        with self._moving(name, alias):
            self._require_version(name, version)  # still there: a prune removes versions under the model's lock
            try:
                current = self.alias(name, alias)
            except RegistryError:
                if not repair:
                    raise
                kept = self._keep_damaged(name, alias)
                current, reason = None, f"{reason} (replaced a damaged alias file, kept as {kept})"
            history = () if current is None else current.history
            if current is not None and current.version != version:
                history = (*history, current.version)
            state = (current or Alias(version, (), "", "")).moved(version, history, _now(), reason)
            self._write_alias(name, alias, state)
        return state

    def rollback(self, name: str, alias: str = PRODUCTION, reason: str = "rollback") -> Alias:
        """Point ``alias`` back at the version it pointed to before."""
        with self._moving(name, alias):
            current = self.alias(name, alias)
            if current is None:
                raise RegistryError(f"model {name!r} has no alias {alias!r} to roll back")
            if not current.history:
                raise RegistryError(f"{name}@{alias} has no earlier version to roll back to (it is version "
                                    f"{current.version}, its first)")
            self._require_version(name, current.history[-1])
            state = current.moved(current.history[-1], current.history[:-1], _now(),
                                  f"{reason} (from version {current.version})")
            self._write_alias(name, alias, state)
        return state

    def set_labels(self, name: str, version: int, tags: dict[str, str] | None = None, remove: tuple[str, ...] = (),
              description: str | None = None) -> Labels:
        """Set ``tags``, remove the tags named in ``remove``, replace the description (None: kept;
        "": removed) of a version; one whole-file write. LabelError for a label that cannot be."""
        self._require_version(name, version)
        with self._model_lock(name):
            labels = self.labels(name, version).edited(tags, remove, description, _now())
            self._write_small(self._path(name, "versions", version, LABELS), labels_bytes(labels))
        return labels

    @contextlib.contextmanager
    def _moving(self, name: str, alias: str) -> Iterator[None]:
        """Held around every read-modify-write of an alias (see the module's docstring)."""
        path = self._alias_path(name, alias)
        if self.local:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        with self._locked(Path(path).with_name(f".{alias}.lock"), f"{name}@{alias}"), self._model_lock(name):
            yield

    @contextlib.contextmanager
    def _model_lock(self, name: str) -> Iterator[None]:
        """Held by whatever removes versions, or depends on one staying (see the module's docstring)."""
        with self._locked(Path(self._path(check_name(name), ".lock")), name):
            yield

    @contextlib.contextmanager
    def _locked(self, path: Path, what: str) -> Iterator[None]:
        """An exclusive ``flock`` on ``path`` on a local folder; a lock of this process elsewhere."""
        if self.local:
            path.parent.mkdir(parents=True, exist_ok=True)
        lock = file_lock(path) if self.local else process_lock(f"{self.fs.protocol}:{path}")
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(lock)
            except TimeoutError as exc:
                raise RegistryError(f"cannot change {what}: {exc}") from None
            yield

    def _keep_damaged(self, name: str, alias: str) -> str:
        path = self._alias_path(name, alias)
        kept = path.rsplit("/", 1)[0] + f"/.{alias}.json.damaged-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}"
        self.fs.copy(path, kept)
        log.warning("%s is damaged: kept as %s and replaced", path, kept)
        return kept

    def _write_alias(self, name: str, alias: str, state: Alias) -> None:
        self._write_small(self._alias_path(name, alias), alias_bytes(state))

    def _write_small(self, path: str, data: bytes) -> None:
        """A whole small file (an alias, labels): a reader sees the old one or the new one."""
        if not self.local:
            self.fs.pipe_file(path, data)  # one object write: atomic on object stores
            return
        write_bytes_atomically(path, data)
