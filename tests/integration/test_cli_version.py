"""`strseq --version` answers what a bug report or a lineage record needs first (issue 23)."""

from __future__ import annotations

from strseq_tasks import __version__

from .cli_harness import run_strseq


def test_version_prints_strseqs_version_and_runs_nothing():
    proc = run_strseq("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"strseq {__version__}"
    # it wins over a command, which does not run (eager, like --help)
    proc = run_strseq("--version", "models", "list", "--registry", "/nonexistent/registry")
    assert proc.returncode == 0 and proc.stdout.strip() == f"strseq {__version__}"
