"""One way to open a model: ``open_model``, for every command, flow, task and worker.

    model = open_model("models/names@production")
    model.normalizer.normalize(["SMITH, John"])
    model.label  # 'names@3': the version that answered

A reference is resolved on every call (``REGISTRY/NAME@production`` follows the alias as it
moves: a promotion or a rollback reaches a long-lived process, such as ``strseq serve``, a Dask
worker or a user's flow, at its next call), and the loaded model is kept per process by what
was resolved: the bundle's folder and its manifest checksum (which covers the sha256 of every
file), with the threads and precision asked for. A call that resolves to the version already
loaded costs a read of the alias and of ``manifest.json``; loading a new version verifies every
file of the bundle (``Normalizer``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from strseq_tasks.core.known import KnownValues
from strseq_tasks.serve.bundle import MANIFEST
from strseq_tasks.serve.identity import model_identity
from strseq_tasks.serve.refs import ModelRef, parse_model_ref
from strseq_tasks.serve.registry import Registry
from strseq_tasks.serve.runtime import Normalizer

CACHE_SIZE = 8  # loaded models kept per process (each holds its onnxruntime sessions)

_cache: dict[tuple, Normalizer] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class OpenedModel:
    normalizer: Normalizer
    name: str
    version: int | None  # the registry version the reference resolved to (None: a folder)
    sha: str  # the bundle's content identity (identity.model_identity): the same sha is the same model
    pinned: str  # the reference with its alias replaced by that version (a folder: itself)

    @property
    def label(self) -> str:
        """How outputs name the model: 'names@3' from a registry, 'names (sha 1a2b3c4d5e6f)' for a folder."""
        return f"{self.name}@{self.version}" if self.version is not None else f"{self.name} (sha {self.sha[:12]})"


def open_model(model: str | Path, threads: int | None = None, precision: str = "auto",
               known: KnownValues | None = None, programs: bool = True) -> OpenedModel:
    """``model`` (a bundle folder or ``REGISTRY/NAME@ALIAS|VERSION|latest``) resolved now and
    loaded, or taken from this process's cache when that exact bundle is loaded already.

    ``known`` replaces the model's own known values; such a model is not cached (it is the
    command line's, loaded once). ``programs`` False: no layout programs (``Normalizer``). A cached
    model keeps the programs it learned for the next job of this process (a worker serving flows).
    Raises ``RegistryError`` or ``BundleError`` (``StrseqError``)."""
    path, name, version = resolve_model(model)
    sha = _manifest_sha(Path(path))
    if known is not None:
        normalizer = Normalizer(path, threads=threads, known=known, precision=precision, programs=programs)
    else:
        key = (str(Path(path).resolve()), sha, threads, precision, programs)
        with _lock:
            normalizer = _cache.get(key)
        if normalizer is None:
            normalizer = Normalizer(path, threads=threads, precision=precision, programs=programs)  # verifies
            with _lock:
                _cache[key] = normalizer
                while len(_cache) > CACHE_SIZE:
                    _cache.pop(next(iter(_cache)))  # the oldest
    # the verified manifest's: two builds of one model (a retrain on unchanged inputs) share it
    return OpenedModel(normalizer, name, version, model_identity(normalizer.manifest), pin_model(str(model), version))


def _manifest_sha(folder: Path) -> str:
    """The checksum ``manifest.json`` records, read without verifying (``Normalizer`` verifies a
    bundle when it loads it; a cached one was verified then). '' when it cannot be read: the load
    that follows says what is wrong."""
    try:
        return str(json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("manifest_sha256", ""))
    except (OSError, ValueError, AttributeError):
        return ""


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
