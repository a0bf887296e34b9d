"""Run the real ``strseq`` command in a fresh interpreter, and read/write the files it uses."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

# torch's OpenMP pool spins; on a 2-core machine shared with anything else a 2-thread pool
# makes a tiny CLI training ~10x slower (48 s instead of 4 s), so the subprocesses use one.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

BUNDLE_FILES = {"manifest.json", "vocab.json", "encoder.onnx", "decoder_step.onnx", "weights.safetensors",
                "MODEL_CARD.md"}


def run_strseq(*args: object, timeout: float = 300, cwd: Path | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``strseq ARGS`` as a user runs it (``python -m strseq_tasks.cli`` works in any venv), with
    ``env`` added to the environment (tests/flows' ``harness_api``: the flows report to the test
    harness's Prefect API instead of starting a temporary server of their own, ~10 s each)."""
    env = {**os.environ, **ONE_THREAD, "PYTHONIOENCODING": "utf-8", **(env or {})}
    return subprocess.run([sys.executable, "-m", "strseq_tasks.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, encoding="utf-8", env=env, timeout=timeout)


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]], bom: bool = False) -> Path:
    rows = [list(r) for r in rows]
    # a well-formed file quotes a value with a bare CR (csv quotes only the terminator's characters)
    quoting = csv.QUOTE_ALL if any("\r" in str(v) for r in rows for v in r) else csv.QUOTE_MINIMAL
    with open(path, "w", newline="", encoding="utf-8-sig" if bom else "utf-8") as f:
        writer = csv.writer(f, lineterminator="\n", quoting=quoting)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv_raw(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows exactly as written: every value a string, nothing inferred."""
    csv.field_size_limit(2**31 - 1)  # values of a megabyte and more are legal
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def hidden_entries(folder: Path) -> list[str]:
    """Leftovers of an atomic write (temporary and old folders start with '.')."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file's content and mtime: equal snapshots mean the folder was left alone."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}
