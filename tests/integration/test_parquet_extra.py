"""Parquet is an extra (``strseq[parquet]``: pyarrow is a third of the runtime install): without
it, a .parquet input or output is refused before any work, with the install line, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd

from integration.cli_harness import write_csv  # tests/ is on sys.path

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["pyarrow"] = None  # as if not installed: find_spec says so, every import fails
    import strseq_tasks.cli
    sys.argv = ["strseq", *sys.argv[1:]]
    strseq_tasks.cli.main()
    """
)


def _strseq_without_pyarrow(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_without_pyarrow_parquet_is_refused_before_any_work(tiny_bundle, tmp_path):
    inputs = write_csv(tmp_path / "in.csv", ["input"], [["SMITH, John"], ["jones, mary"]])
    out = _strseq_without_pyarrow("predict", "--model", tiny_bundle, "--input", inputs, "--out",
                                  tmp_path / "out.parquet", "--quiet")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: --out") and "pip install 'strseq[parquet]'" in out.stderr
    assert not (tmp_path / "out.parquet").exists()
    pd.DataFrame({"input": ["SMITH, John"]}).to_parquet(tmp_path / "in.parquet")  # this venv has pyarrow
    read = _strseq_without_pyarrow("predict", "--model", tiny_bundle, "--input", tmp_path / "in.parquet",
                                   "--out", tmp_path / "out.csv", "--quiet")
    assert read.returncode == 2 and "Traceback" not in read.stderr and "strseq[parquet]" in read.stderr
    assert read.stderr.startswith("error: ") and not (tmp_path / "out.csv").exists()
    # CSV needs nothing more
    fine = _strseq_without_pyarrow("predict", "--model", tiny_bundle, "--input", inputs, "--out",
                                   tmp_path / "out.csv", "--quiet")
    assert fine.returncode == 0, fine.stderr
