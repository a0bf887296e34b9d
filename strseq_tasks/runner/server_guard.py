"""Prefect's temporary server, tied to the strseq process that started it.

With no ``PREFECT_API_URL``, the first flow run starts Prefect's temporary local server: a child
process that Prefect stops at exit (``atexit``). A strseq killed with SIGKILL (the OOM killer,
``kill -9``, a scheduler's hard timeout) runs no ``atexit``, and the server stayed behind, orphaned,
with its port and ~200 MB, one more each killed run.

strseq's commands start a watchdog beside themselves instead of changing how Prefect starts its
server (an earlier version patched Prefect's private ``SubprocessASGIServer._run_uvicorn_command``):
``python -m strseq_tasks.runner.server_guard PID`` notes, every ``POLL_S``, the children of PID that
run Prefect's server (``prefect.server.api.server:create_app``), and once PID is gone stops those
still running (SIGTERM, uvicorn's graceful shutdown; SIGKILL if that takes longer than
``GRACE_S``), then exits. It reads Linux's ``/proc``; elsewhere there is no watchdog.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often the watchdog looks at its parent and the parent's children
GRACE_S = 10.0  # then SIGKILL, if the graceful shutdown hangs
SERVER = b"prefect.server.api.server:create_app"  # in the command line of Prefect's temporary server
PROC = Path("/proc")
_started: dict[int, subprocess.Popen] = {}  # the watchdog of each process (by PID: a fork has its own)


def guard_temporary_server() -> bool:
    """Start this process's watchdog (once), so that a temporary server it starts stops when it
    dies. True if a watchdog runs; False where there is no ``/proc`` to watch with."""
    if not (PROC / str(os.getpid()) / "stat").exists():
        log.debug("not guarding Prefect's temporary server: no /proc")
        return False
    if os.getpid() not in _started:
        _started[os.getpid()] = subprocess.Popen(
            [sys.executable, "-m", __name__, str(os.getpid())], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)  # Ctrl-C in a terminal reaches strseq, not it
    return True


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent PID, start time) of a process, or None if it is gone."""
    try:
        fields = (PROC / str(pid) / "stat").read_bytes().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[19])  # ppid, starttime (fields 4 and 22 of proc(5))


def _servers_of(parent: int) -> dict[int, int]:
    """Prefect servers among ``parent``'s children: PID -> start time."""
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is None or stat[0] != parent:
            continue
        try:
            if SERVER in (entry / "cmdline").read_bytes():
                found[int(entry.name)] = stat[1]
        except OSError:
            continue
    return found


def _stop(servers: dict[int, int]) -> None:
    """SIGTERM, then SIGKILL after ``GRACE_S``, each server still running (the same process: its start
    time is the one noted, not a new process that was given a freed PID)."""
    alive = lambda: [p for p, started in servers.items() if (s := _stat(p)) and s[1] == started]  # noqa: E731
    for sig, wait in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, 0)):
        for pid in alive():
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while alive() and time.monotonic() < deadline:
            time.sleep(0.2)


def main(argv: list[str]) -> None:
    """``python -m strseq_tasks.runner.server_guard PARENT_PID``: watch, then stop what is left."""
    parent = int(argv[0])
    servers: dict[int, int] = {}
    while os.getppid() == parent:
        servers = {p: t for p, t in servers.items() if (s := _stat(p)) and s[1] == t}  # forget stopped ones
        servers.update(_servers_of(parent))
        time.sleep(POLL_S)
    _stop(servers)  # after a normal exit Prefect has stopped them already: nothing to do


if __name__ == "__main__":
    main(sys.argv[1:])
