"""Model bundles: a folder a stranger can read, written atomically, verified on load.

```
MODEL_DIR/
  encoder.onnx          the encoder graph
  decoder_step.onnx     one decoder step
  encoder.int8.onnx     the same graphs quantized to int8 (when they passed the int8 gate; learn/int8.py)
  decoder_step.int8.onnx
  vocab.json            the character vocabulary (plain JSON)
  weights.safetensors   the PyTorch weights (for fine-tuning and re-export; never needed to predict:
                        a runtime copy leaves them out, bundle_copy.py)
  MODEL_CARD.md         what the model is for, what it learned from, how well it did (model_card.py)
  manifest.json         configs, metrics, calibration, data fingerprint, sha256 of every file,
                        content_sha256 (what decides the outputs: identity.py)
```

Torch-free. Nothing here (or anywhere in strseq) unpickles.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from strseq_tasks.data.safe_files import fsync_dir, new_file_mode, new_folder_mode, pid_alive
from strseq_tasks.serve.bundle_schema import MODEL_FORMAT, BundleError, check_manifest
from strseq_tasks.serve.identity import content_sha256, left_out

FORMAT = MODEL_FORMAT
MANIFEST = "manifest.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder_step.onnx"
VOCAB_FILE = "vocab.json"
WEIGHTS_FILE = "weights.safetensors"
KNOWN_FILE = "known_values.json"  # optional: the known values decoding prefers (see known.py)
INT8_ENCODER_FILE = "encoder.int8.onnx"  # optional: int8 graphs, served by default when present (learn/int8.py)
INT8_DECODER_FILE = "decoder_step.int8.onnx"
GRAPH_FILES = {"fp32": (ENCODER_FILE, DECODER_FILE), "int8": (INT8_ENCODER_FILE, INT8_DECODER_FILE)}
REQUIRED_FILES = (ENCODER_FILE, DECODER_FILE, VOCAB_FILE)  # what prediction reads
LM_WEIGHTS = "lm.safetensors"  # a language-model bundle (learn/lm_bundle.py): its weights and vocabulary
LM_FILES = (LM_WEIGHTS, VOCAB_FILE)
# a training kept after its export failed (unexported.py): no graphs, the rows to check them on
PARITY_FILE = "parity_inputs.json"
PARITY_ROWS = 64  # validation inputs an export is checked on
KEPT_FILES = (WEIGHTS_FILE, VOCAB_FILE, PARITY_FILE)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_pairs(pairs: Iterable[tuple[str, str]]) -> str:
    """sha256 over the sorted pairs: the same data in any order gives the same fingerprint."""
    digest = hashlib.sha256()
    for src, tgt in sorted(pairs):
        digest.update(json.dumps([src, tgt], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def _manifest_checksum(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


log = logging.getLogger("strseq.bundle")


_RENAME_EXCHANGE, _AT_FDCWD = 2, -100
try:
    _renameat2 = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).renameat2
except (AttributeError, OSError):  # not Linux, or a libc without renameat2 (glibc < 2.28)
    _renameat2 = None


def exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``): a reader sees
    one or the other at each path, never neither. False where the system or the file system
    cannot (the caller then renames twice)."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV):
        return False
    raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")


def recover_leftovers(out_dir: Path) -> list[str]:
    """Tidy what a build of ``out_dir`` killed part-way (SIGKILL, power loss) left beside it.

    Its temporary folder (``.NAME.tmp-PID-*``; after an atomic swap, the previous bundle) is
    removed. Where no atomic swap exists, the previous bundle it had moved aside to put the new
    one in (``.NAME.old-PID``) is moved back if ``out_dir`` is missing (the kill came between the
    two renames), else removed (the new bundle is in place). Folders of a build
    whose process is still alive are left alone. Returns what was done, one line each.
    """
    out_dir = Path(out_dir)
    done = []
    pattern = re.compile(rf"^\.{re.escape(out_dir.name)}\.(tmp|old)-(\d+)(?:-.*)?$")
    for path in sorted(out_dir.parent.glob(f".{out_dir.name}.*")):
        found = pattern.match(path.name)
        if not found or not path.is_dir() or pid_alive(int(found.group(2))):
            continue
        if found.group(1) == "old" and not out_dir.exists():
            os.replace(path, out_dir)
            done.append(f"restored {out_dir} from {path.name} (a build was killed while swapping bundles)")
        else:
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path.name}, left by a build that was killed")
    for line in done:
        log.warning("%s", line)
    return done


def write_bundle(out_dir: Path, build: Callable[[Path], dict], overwrite: bool = False, fmt: str = FORMAT,
                 required: tuple[str, ...] = REQUIRED_FILES) -> dict:
    """Build a bundle in a temporary folder beside ``out_dir``, then move it into place.

    ``build(folder)`` writes the bundle's files and returns the manifest body; hashes, format,
    creation time and (for a model bundle) its content identity are added here. A failure
    anywhere leaves ``out_dir`` as it was.
    """
    out_dir = Path(out_dir)
    if out_dir.parent.is_dir():
        recover_leftovers(out_dir)
    if out_dir.exists() and not overwrite:
        raise BundleError(f"{out_dir} already exists (pass --force to replace it)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-{os.getpid()}-", dir=out_dir.parent))
    os.chmod(tmp, new_folder_mode())  # mkdtemp makes it 0700; a bundle is as readable as any folder
    try:
        manifest = dict(build(tmp))
        manifest["format"] = fmt
        manifest.setdefault("created", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))  # a copy keeps its own
        missing = [name for name in required if not (tmp / name).is_file()]
        if missing:
            raise BundleError(f"bundle build wrote no {', '.join(missing)}")
        for path in tmp.iterdir():
            os.chmod(path, new_file_mode())  # some writers (safetensors) create files 0600
        manifest["files"] = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.name != MANIFEST}
        if fmt == MODEL_FORMAT:  # what makes two builds the same model (identity.py)
            manifest["content_sha256"] = content_sha256(manifest)
        manifest["manifest_sha256"] = _manifest_checksum(manifest)
        with open(tmp / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        fsync_dir(tmp)
        if out_dir.exists() and exchange(tmp, out_dir):
            shutil.rmtree(tmp, ignore_errors=True)  # the previous bundle, now at the temporary path
        elif out_dir.exists():  # no atomic swap here: move the old one aside, then the new one in
            old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
            os.replace(out_dir, old)
            try:
                os.replace(tmp, out_dir)
            except BaseException:
                os.replace(old, out_dir)  # put the previous bundle back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
        fsync_dir(out_dir.parent)
        return manifest
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_manifest(folder: Path, fmt: str = FORMAT, required: tuple[str, ...] = REQUIRED_FILES,
                  kind: str = "model") -> dict:
    """The verified manifest of a bundle: every listed file present with its recorded sha256, and
    every value it holds of the type and in the range strseq uses (``bundle_schema``).

    ``fmt``, ``required`` and ``kind`` (for messages) select the bundle type: model bundles by
    default, language-model bundles from ``lm_bundle``.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise BundleError(f"{folder} is not a {kind} folder (no such directory)")
    if not path.is_file():
        raise BundleError(f"{folder} is not a {kind} folder: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != fmt:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise BundleError(f"{path}: not a {fmt} manifest" + (f" (it is {found})" if found else ""))
    if manifest.get("manifest_sha256") != _manifest_checksum(manifest):
        raise BundleError(f"{path} was modified after the bundle was written (checksum mismatch)")
    files = manifest.get("files")
    if fmt == MODEL_FORMAT:  # a runtime copy holds the graphs of the precision it serves only
        required = tuple(name for name in required if name not in left_out(manifest))
    if not isinstance(files, dict) or any(name not in files for name in required):
        raise BundleError(f"{path} does not list the hashes of {', '.join(required)}")
    for name, expected in files.items():
        file = folder / name
        if Path(name).name != name:
            raise BundleError(f"{path} lists a file outside the bundle: {name!r}")
        if file.is_symlink():  # strseq writes bundles as plain files; a link can point anywhere
            raise BundleError(f"{file} is a symbolic link (to {os.readlink(file)}): a bundle holds its own files")
        if not file.is_file():
            raise BundleError(f"{folder} is incomplete: {name} is missing")
        if sha256_file(file) != expected:
            raise BundleError(f"{file} does not match its sha256 in {MANIFEST}: the bundle was altered")
    check_manifest(folder, manifest, fmt)
    return manifest
