"""What a refused command must leave: exit code 2, one `error:` line, no traceback, its input
files byte for byte as they were and nothing new beside its output."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .cli_harness import ONE_THREAD


def fingerprint(*paths: Path) -> dict[str, str]:
    """sha256 of each file, and of every file under each folder (missing paths: 'missing')."""
    out = {}
    for path in paths:
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file():
                    out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        elif path.exists():
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            out[str(path)] = "missing"
    return out


def listing(folder: Path) -> list[str]:
    """Every entry under ``folder`` (temporary files of an atomic write included)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def assert_refused(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2 with exactly one `error:` line, the last one, holding ``fragments``; returns it."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment.lower() in errors[0].lower(), (fragment, errors[0])
    return errors[0]


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The last line on stderr without its `error: ` prefix (for the ledger)."""
    lines = proc.stderr.strip().splitlines()
    return lines[-1].removeprefix("error: ") if lines else ""


def run_strseq_with(prefix: Sequence[str], *args: object, file_size_limit: int | None = None,
                    timeout: float = 300) -> subprocess.CompletedProcess:
    """``strseq ARGS`` as ``run_strseq`` runs it, behind a command ``prefix`` (e.g. setpriv) and
    with files it writes limited to ``file_size_limit`` bytes (a write past it fails with EFBIG,
    as on a full disk: Python ignores SIGXFSZ)."""
    def limit() -> None:
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    env = {**os.environ, **ONE_THREAD, "PYTHONIOENCODING": "utf-8", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([*prefix, sys.executable, "-m", "strseq_tasks.cli", *map(str, args)], capture_output=True,
                          text=True, encoding="utf-8", env=env, timeout=timeout, preexec_fn=limit)
