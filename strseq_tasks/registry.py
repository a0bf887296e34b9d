"""A versioned model registry on a local folder or any fsspec URL (``s3://``, ``memory://``, ...).

Layout (readable with ``ls``)::

    REGISTRY/NAME/versions/1/            a model bundle (manifest.json, vocab.json, *.onnx, ...)
    REGISTRY/NAME/versions/1/publication.json   who published it, when, and the run's report
    REGISTRY/NAME/aliases/production.json        {"version": 3, "history": [1, 2], ...}

Versions are immutable and numbered 1, 2, ... A version exists once its ``manifest.json`` exists.

- On a local folder, a version is assembled in ``NAME/.staging/`` and renamed into place: the
  rename is the commit, so an interrupted publish leaves no version at all. Two publishers
  racing for the same number cannot both win: renaming onto an existing (non-empty) version
  folder fails, and the loser takes the next number.
- On other filesystems, the number is claimed by creating ``versions/N/.claim`` exclusively,
  files are uploaded, and ``manifest.json`` is written last: that write is the commit. A failed
  publish removes what it wrote; one killed outright leaves a folder without a manifest, which
  is not a version and is never listed or loaded.

Aliases (``production``, ``candidate``) are small JSON files replaced atomically (``os.replace``
locally, a single object write elsewhere). Each keeps the versions it pointed to before, so
``rollback`` can step back. Bundles are verified by their manifest hashes whenever loaded.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from .bundle import MANIFEST, BundleError, fsync_dir, pid_alive, read_manifest

log = logging.getLogger("strseq.registry")

PRODUCTION = "production"
CANDIDATE = "candidate"
PUBLICATION = "publication.json"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
ALIAS_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,49}")


class RegistryError(Exception):
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


@dataclass(frozen=True)
class Alias:
    version: int
    history: tuple[int, ...]  # versions it pointed to before, oldest first
    updated: str
    reason: str


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or name in (".", ".."):
        raise RegistryError(f"invalid model name {name!r}: use letters, digits, '.', '_' and '-' "
                            "(not starting with '.', '_' or '-'; at most 100 characters)")
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not ALIAS_PATTERN.fullmatch(alias) or alias == "latest":
        raise RegistryError(f"invalid alias {alias!r}: lower-case letters, digits, '_' and '-' ('latest' is reserved)")
    return alias


class Registry:
    def __init__(self, url: str | Path, cache_dir: str | Path | None = None):
        self.url = str(url)
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.root = self.root.rstrip("/") or "/"
        self.local = isinstance(self.fs, LocalFileSystem)
        default_cache = Path(os.environ.get("STRSEQ_CACHE", Path.home() / ".cache" / "strseq")) / "registry"
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache

    def __repr__(self) -> str:
        return f"Registry({self.url!r})"

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
        return sorted(int(Path(p).name) for p in self.fs.ls(folder, detail=False) if Path(p).name.isdigit())

    def manifest(self, name: str, version: int) -> dict:
        """The manifest as stored (not verified: ``fetch`` verifies every file)."""
        self._require_version(name, version)
        return json.loads(self.fs.cat_file(self._path(name, "versions", version, MANIFEST)))

    def publication(self, name: str, version: int) -> dict:
        return json.loads(self.attachment(name, version, PUBLICATION) or b"{}")

    def attachment(self, name: str, version: int, file: str) -> bytes | None:
        """A file stored beside a version's bundle (``publication.json``, ``report.md``, ...)."""
        self._require_version(name, version)
        path = self._path(name, "versions", version, Path(file).name)
        return self.fs.cat_file(path) if self.fs.isfile(path) else None

    def alias(self, name: str, alias: str) -> Alias | None:
        path = self._path(check_name(name), "aliases", f"{check_alias(alias)}.json")
        if not self.fs.isfile(path):
            return None
        data = json.loads(self.fs.cat_file(path))
        return Alias(int(data["version"]), tuple(int(v) for v in data["history"]), data["updated"], data["reason"])

    def aliases(self, name: str) -> dict[str, Alias]:
        folder = self._path(check_name(name), "aliases")
        if not self.fs.isdir(folder):
            return {}
        found = [Path(p).stem for p in self.fs.ls(folder, detail=False) if p.endswith(".json")]
        return {a: self.alias(name, a) for a in sorted(found) if ALIAS_PATTERN.fullmatch(a)}

    def resolve(self, name: str, selector: str) -> int:
        """The version an alias, a number or ``latest`` names."""
        versions = self.versions(name)
        if not versions:
            known = ", ".join(self.names()) or "none"
            raise RegistryError(f"no model {name!r} in registry {self.url} (models: {known})")
        if selector == "latest":
            return versions[-1]
        if selector.isdigit():
            self._require_version(name, int(selector))
            return int(selector)
        state = self.alias(name, selector)
        if state is None:
            known = ", ".join(self.aliases(name)) or "none"
            raise RegistryError(f"model {name!r} has no alias {selector!r} (aliases: {known}; or give a version "
                                f"number or 'latest')")
        return state.version

    def _require_version(self, name: str, version: int) -> None:
        if version not in self.versions(name):
            raise RegistryError(f"model {name!r} has no version {version} in {self.url} "
                                f"(versions: {', '.join(map(str, self.versions(name))) or 'none'})")

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

    # --- writing -------------------------------------------------------------------------

    def publish(self, name: str, bundle: Path, publication: dict | None = None,
                attachments: dict[str, bytes] | None = None, publish_id: str | None = None) -> int:
        """Copy a verified bundle folder in as the next version; returns its number.

        ``publication`` (JSON) and ``attachments`` (e.g. ``report.md``, a plot) are stored beside
        the bundle's files; they are not part of the bundle and not covered by its hashes.
        ``publish_id`` makes a retried publish idempotent: when one of the newest versions was
        published with the same id (the first attempt committed, then failed or lost its answer),
        that version is returned instead of a second copy.
        """
        check_name(name)
        manifest = read_manifest(Path(bundle))
        if publish_id is not None:
            done = self.published_as(name, publish_id)
            if done is not None:
                return done
        files = [MANIFEST, *manifest["files"]]
        extra = {PUBLICATION: json.dumps({"published": _now(), "name": name, "source": str(bundle),
                                          **(publication or {}), "publish_id": publish_id}, indent=2,
                                         ensure_ascii=False, default=str).encode("utf-8")}
        for file, data in (attachments or {}).items():
            if Path(file).name != file or file in files or file in extra or file.startswith("."):
                raise RegistryError(f"invalid attachment name {file!r}")
            extra[file] = data
        if self.local:
            return self._publish_local(name, Path(bundle), files, extra)
        return self._publish_remote(name, Path(bundle), files, extra)

    def published_as(self, name: str, publish_id: str, newest: int = 20) -> int | None:
        """The version (among the ``newest``) that was published with ``publish_id``, if any."""
        for version in reversed(self.versions(name)[-newest:]):
            if self.publication(name, version).get("publish_id") == publish_id:
                return version
        return None

    def _publish_local(self, name: str, bundle: Path, files: list[str], extra: dict[str, bytes]) -> int:
        staging_root = Path(self._path(name, ".staging"))
        staging_root.mkdir(parents=True, exist_ok=True)
        Path(self._path(name, "versions")).mkdir(parents=True, exist_ok=True)
        for left in staging_root.glob("publish-*"):  # what publishers killed mid-copy left
            pid = left.name.split("-")[1]
            if left.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
                shutil.rmtree(left, ignore_errors=True)
                log.warning("removed %s, left by a publisher that was killed", left)
        staging = Path(tempfile.mkdtemp(prefix=f"publish-{os.getpid()}-", dir=staging_root))
        try:
            for file in files:
                shutil.copy2(bundle / file, staging / file)
            for file, data in extra.items():
                (staging / file).write_bytes(data)
            for path in staging.iterdir():
                _fsync_file(path)
            os.chmod(staging, 0o755)
            read_manifest(staging)  # what lands is verified
            version = max(self._numbered(name), default=0) + 1
            while True:
                try:
                    os.rename(staging, self._path(name, "versions", version))  # the commit
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
                    version += 1  # another publisher took this number
            fsync_dir(Path(self._path(name, "versions")))
            return version
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _publish_remote(self, name: str, bundle: Path, files: list[str], extra: dict[str, bytes]) -> int:
        version = max(self._numbered(name), default=0) + 1
        while True:
            claim = self._path(name, "versions", version, ".claim")
            try:
                with self.fs.open(claim, "xb") as f:
                    f.write(uuid.uuid4().hex.encode())
                break
            except FileExistsError:
                version += 1
        folder = self._path(name, "versions", version)
        try:
            for file in files[1:]:
                self.fs.pipe_file(f"{folder}/{file}", (bundle / file).read_bytes())
            for file, data in extra.items():
                self.fs.pipe_file(f"{folder}/{file}", data)
            self.fs.pipe_file(f"{folder}/{MANIFEST}", (bundle / MANIFEST).read_bytes())  # the commit
        except BaseException:
            try:
                self.fs.rm(folder, recursive=True)
            except Exception:  # noqa: BLE001 - best effort; a folder without manifest is no version
                pass
            raise
        return version

    def set_alias(self, name: str, alias: str, version: int, reason: str) -> Alias:
        """Point ``alias`` at ``version``; the version it pointed to joins its history."""
        self._require_version(name, version)
        current = self.alias(name, alias)
        history = () if current is None else current.history
        if current is not None and current.version != version:
            history = (*history, current.version)
        state = Alias(version, history, _now(), reason)
        self._write_alias(name, alias, state)
        return state

    def rollback(self, name: str, alias: str = PRODUCTION, reason: str = "rollback") -> Alias:
        """Point ``alias`` back at the version it pointed to before."""
        current = self.alias(name, alias)
        if current is None:
            raise RegistryError(f"model {name!r} has no alias {alias!r} to roll back")
        if not current.history:
            raise RegistryError(f"{name}@{alias} has no earlier version to roll back to (it is version "
                                f"{current.version}, its first)")
        state = Alias(current.history[-1], current.history[:-1], _now(), f"{reason} (from version {current.version})")
        self._write_alias(name, alias, state)
        return state

    def _write_alias(self, name: str, alias: str, state: Alias) -> None:
        data = json.dumps({"version": state.version, "history": list(state.history), "updated": state.updated,
                           "reason": state.reason}, indent=2).encode("utf-8")
        path = self._path(name, "aliases", f"{check_alias(alias)}.json")
        if not self.local:
            self.fs.pipe_file(path, data)  # one object write: atomic on object stores
            return
        folder = Path(path).parent
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{alias}.", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_dir(folder)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise



def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def pin_model(model: str, version: int | None) -> str:
    """``model`` with its alias replaced by the version it resolved to (a folder stays as it is):
    what a job's other processes load, so the whole job uses one version even if the alias moves."""
    ref = None if version is None else parse_model_ref(str(model))
    return str(model) if ref is None else str(ModelRef(ref.registry, ref.name, str(version)))


def resolve_model(model: str | Path) -> tuple[Path, str, int | None]:
    """A model folder, or REGISTRY/NAME@SELECTOR fetched (verified) from a registry.

    Returns the local folder, the model's name and its registry version (None for a folder).
    """
    folder = Path(model)
    ref = None if folder.is_dir() else parse_model_ref(str(model))
    if ref is None:
        return folder, folder.name, None
    path, version = Registry(ref.registry).load(ref)
    return path, ref.name, version
