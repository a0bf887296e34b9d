"""Publishing a version to a registry: the write that makes a bundle a numbered version.

Versions are immutable and numbered 1, 2, ... A version exists once its ``manifest.json`` exists.

- On a local folder, a version is assembled in ``NAME/.staging/`` and renamed into place: the
  rename is the commit, so an interrupted publish leaves no version at all. Two publishers
  racing for the same number cannot both win: renaming onto an existing (non-empty) version
  folder fails, and the loser takes the next number.
- On other filesystems, the number is claimed by creating ``versions/N/.claim`` exclusively,
  files are uploaded, and ``manifest.json`` is written last: that write is the commit. A failed
  publish removes what it wrote; one killed outright leaves a folder without a manifest, which
  is not a version and is never listed or loaded.

A publish carries an id (``publish_id``): a retry after a commit whose answer was lost finds
the version it made (``published_as``) instead of publishing a second copy.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from strseq_tasks.data.safe_files import fsync_dir, fsync_file, new_folder_mode, pid_alive
from strseq_tasks.data.urls import mask_secrets
from strseq_tasks.serve.bundle import MANIFEST, read_manifest
from strseq_tasks.serve.labels import LABELS, Labels, labels_bytes
from strseq_tasks.serve.lineage import lineage
from strseq_tasks.serve.refs import RegistryError, check_name

log = logging.getLogger("strseq.registry")
PUBLICATION = "publication.json"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Publisher:
    """``Registry``'s publishing half (``self``: a ``Registry``)."""

    def publish(self, name: str, bundle: Path, publication: dict | None = None,
                attachments: dict[str, bytes] | None = None, publish_id: str | None = None,
                tags: dict[str, str] | None = None, description: str | None = None) -> int:
        """Copy a verified bundle folder in as the next version; returns its number.

        ``publication`` (JSON) and ``attachments`` (e.g. ``report.md``, a plot) are stored beside
        the bundle's files; they are not part of the bundle and not covered by its hashes. The
        record gains the version's ``lineage`` (``lineage.py``); ``tags`` and ``description`` are
        its first labels (``labels.py``), checked before anything is written.
        ``publish_id`` makes a retried publish idempotent: when one of the newest versions was
        published with the same id (the first attempt committed, then failed or lost its answer),
        that version is returned instead of a second copy.
        """
        check_name(name)
        manifest = read_manifest(Path(bundle))
        labels = Labels().edited(tags, (), description, _now()) if tags or description else None
        if publish_id is not None:
            done = self.published_as(name, publish_id)
            if done is not None:
                return done
        files = [MANIFEST, *manifest["files"]]
        published = _now()
        record = {"published": published, "name": name, **(publication or {}),
                  "lineage": lineage(manifest, publication, published), "publish_id": publish_id}
        record = mask_secrets(json.loads(json.dumps(record, default=str)))  # no password is ever stored
        extra = {PUBLICATION: json.dumps(record, indent=2, ensure_ascii=False).encode("utf-8")}
        if labels is not None:
            extra[LABELS] = labels_bytes(labels)
        for file, data in (attachments or {}).items():
            if Path(file).name != file or file in files or file in (PUBLICATION, LABELS) or file.startswith("."):
                raise RegistryError(f"invalid attachment name {file!r}")
            extra[file] = data
        if self.local:
            return self._publish_local(name, Path(bundle), files, extra)
        return self._publish_remote(name, Path(bundle), files, extra)

    def published_as(self, name: str, publish_id: str, newest: int = 20) -> int | None:
        """The version (among the ``newest``) that was published with ``publish_id``, if any."""
        for version in reversed(self.versions(name)[-newest:]):
            try:
                record = self.publication(name, version)
            except RegistryError as exc:  # not this publish's: a publish writes whole files
                log.warning("%s", exc)
                continue
            if record.get("publish_id") == publish_id:
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
                fsync_file(path)
            os.chmod(staging, new_folder_mode())  # mkdtemp makes it 0700: other accounts read versions too
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

