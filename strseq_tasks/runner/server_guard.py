"""Prefect's temporary server, tied to the strseq process that started it.

With no ``PREFECT_API_URL``, the first flow run starts Prefect's temporary local server: a child
process that Prefect stops at exit (``atexit``). A strseq killed with SIGKILL (the OOM killer,
``kill -9``, a scheduler's hard timeout) runs no ``atexit``, and the server stayed behind, orphaned,
with its port and ~200 MB, one more each killed run.

strseq's commands start that server through this module instead of ``python -m uvicorn``: it runs
the same uvicorn command, and stops the server (SIGTERM, uvicorn's graceful shutdown; SIGKILL if
that takes longer than ``GRACE_S``) as soon as the process that started it is gone.
"""

from __future__ import annotations

import logging
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
import types

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often the server looks for its parent
GRACE_S = 10.0  # then SIGKILL, if the graceful shutdown hangs
_UVICORN = ["-m", "uvicorn"]


def guard_temporary_server() -> bool:
    """Start Prefect's temporary server (when a flow run starts one) so that it stops when this
    process dies. True if installed; False (with Prefect's own start kept) if this Prefect does
    not start it the way this module knows."""
    try:
        from prefect.server.api import server as prefect_server

        cls = prefect_server.SubprocessASGIServer
        original = cls._run_uvicorn_command
    except (ImportError, AttributeError) as exc:  # another Prefect: keep its own start
        log.debug("not guarding Prefect's temporary server: %s", exc)
        return False
    if getattr(original, "_strseq_guarded", False):
        return True
    parent = os.getpid

    def popen(args, *rest, **kwargs):
        args = list(args)
        if args[1:3] == _UVICORN:
            args = [args[0], "-m", __name__, str(parent()), *args[3:]]
        else:
            log.debug("Prefect's temporary server command is not `python -m uvicorn`: not guarded")
        return subprocess.Popen(args, *rest, **kwargs)

    # the subprocess module as the server code sees it, with this Popen (the real module is untouched)
    proxy = types.SimpleNamespace(**{**vars(subprocess), "Popen": popen})

    def run_uvicorn_command(self):
        real = prefect_server.subprocess
        prefect_server.subprocess = proxy
        try:
            return original(self)
        finally:
            prefect_server.subprocess = real

    run_uvicorn_command._strseq_guarded = True
    cls._run_uvicorn_command = run_uvicorn_command
    return True


def _stop_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn shuts down (the main thread handles it)
    time.sleep(GRACE_S)
    os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> None:
    """``python -m strseq_tasks.runner.server_guard PARENT_PID UVICORN_ARGS...``"""
    parent = int(argv[0])
    if os.getppid() != parent:  # the parent died before this started
        sys.exit(0)
    threading.Thread(target=_stop_when_orphaned, args=(parent,), name="strseq-orphan-guard", daemon=True).start()
    sys.argv = ["uvicorn", *argv[1:]]
    runpy.run_module("uvicorn", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
