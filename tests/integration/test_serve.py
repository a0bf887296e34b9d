"""`strseq serve`: the packaged deployments (flows/prefect.yaml) served from one process, on
Prefect's temporary local server, from any folder and any install; refused clearly when the
file's variables are missing."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from integration.cli_harness import ONE_THREAD, run_strseq
from strseq_tasks.demo.crm import FIELDS, build_demo_database

ROOT = Path(__file__).resolve().parents[2]
STRSEQ_VARS = ("STRSEQ_HOME", "STRSEQ_REGISTRY", "STRSEQ_PAIRS_DB", "STRSEQ_CRM_DB")


def _env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in STRSEQ_VARS and k != "PREFECT_API_URL"}
    return {**env, **ONE_THREAD, "PREFECT_HOME": str(tmp_path / "prefect-home"), "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def test_serve_without_its_variables_names_them(tmp_path, monkeypatch):
    for name in STRSEQ_VARS:
        monkeypatch.delenv(name, raising=False)
    done = run_strseq("serve")
    assert done.returncode == 2
    assert "STRSEQ_REGISTRY" in done.stderr and "--demo" in done.stderr
    assert "not a strseq demo folder" in run_strseq("serve", "--demo", tmp_path).stderr
    assert "no deployment named nope" in run_strseq("serve", "--demo", _demo(tmp_path), "--only", "nope").stderr


def test_the_deployments_ship_in_the_wheel_and_serve_needs_no_checkout(tmp_path):
    """The file is package data: in the wheel, and found by `strseq serve` run from elsewhere."""
    from strseq_tasks.runner.deployments import PREFECT_FILE

    source = tmp_path / "source"  # a copy: the build writes build/ and *.egg-info where it runs
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "strseq_tasks", "flows", "expectations"):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, source / name, **({"symlinks": True} if copy is shutil.copytree else {}))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp_path / "wheel"), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (tmp_path / "wheel").glob("strseq-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert archive.read("strseq_tasks/flows/prefect.yaml") == PREFECT_FILE.read_bytes()
    elsewhere = tmp_path / "elsewhere"  # no deploy/ folder here
    elsewhere.mkdir()
    done = run_strseq("serve", "--demo", _demo(tmp_path), "--only", "nope", cwd=elsewhere)
    assert done.returncode == 2 and "prefect.yaml has no deployment named nope" in done.stderr, done.stderr


def _demo(tmp_path):
    folder = tmp_path / "demo"
    if not folder.exists():
        folder.mkdir()
        build_demo_database(folder, rows=20, pairs=20, fields=FIELDS[:1])
    return folder


@pytest.mark.long  # ~45 s: scripts/test.sh --long
def test_serve_registers_the_deployments_and_stops_on_ctrl_c(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "strseq_tasks.cli", "serve", "--demo", str(_demo(tmp_path))],
                               env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    lines = []
    try:
        deadline = time.monotonic() + 180
        for line in process.stdout:
            lines.append(line)
            if "strseq-clean/clean-customers-name" in line or time.monotonic() > deadline:
                break
        output = "".join(lines)
        assert "being served" in output and "strseq-retrain/nightly-retrain-names" in output, output
        assert ("serving clean-customers-name: strseq_tasks.flows.clean:clean, 0 6 * * * (UTC); on "
                "strseq.model.promoted; at most 1 run(s) at a time") in output
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the process group, as in a terminal
        process.wait(60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode is not None
