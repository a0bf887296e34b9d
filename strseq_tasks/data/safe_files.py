"""Writing files so that nothing is half-written or hidden: the one set of helpers every writer uses.

- ``write_atomically``: a temporary file beside the target, flushed to disk, then renamed over
  it; a reader sees the old file or the whole new one, and a failure leaves no partial file.
  The file gets the permissions any new file gets here (0666 less the umask): ``mkstemp``
  creates 0600, which kept other accounts on a shared registry folder from reading an alias.
- ``new_file_mode``/``new_folder_mode``: 0666/0777 less the process's umask.
- ``fsync_file``/``fsync_dir``: what makes a rename survive a power cut.
- ``pid_alive``: whether the process that named a temporary file or folder after itself still
  runs (its leftovers are tidied only when it does not).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def umask() -> int:
    """The process's umask, read without changing it where Linux says it (``os.umask`` can only
    read it by setting it, for a moment, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    return 0o666 & ~umask()


def new_folder_mode() -> int:
    return 0o777 & ~umask()


def write_atomically(path: Path | str, write: Callable[[str], object]) -> None:
    """``write(tmp)`` a temporary file beside ``path``, flush it to disk and rename it over
    ``path``. Missing folders on the way are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, new_file_mode())
        write(tmp)
        fsync_file(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_bytes_atomically(path: Path | str, data: bytes) -> None:
    write_atomically(path, lambda tmp: Path(tmp).write_bytes(data))


def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Is the process that named a temporary file or folder after itself still running (on this host)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True
