"""deploy/prefect.yaml for real: a local Prefect server on a free port, a `process` work pool,
`prefect deploy --all`, a worker, and a run of the retrain started through the API.

The retrain publishes and promotes version 1 of `names`; its promotion event triggers the
cleaning deployment (the file's trigger, an automation on the server), which writes
customers.name_clean with names@production. Everything started is stopped by PID.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from fixtures.data import TINY_SIZES

from strseq_tasks.demo.crm import FIELDS, build_demo_database, db_url, pairs_query
from strseq_tasks.serve.refs import PRODUCTION
from strseq_tasks.serve.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.slow, pytest.mark.long]  # ~70 s: scripts/test.sh --long


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def _test_file(tmp: Path) -> Path:
    """deploy/prefect.yaml with a tiny model and gates a tiny model passes (the schedules,
    entrypoints, pool and URL references stay as they are)."""
    document = yaml.safe_load((ROOT / "deploy" / "prefect.yaml").read_text(encoding="utf-8"))
    for deployment in document["deployments"]:
        params = deployment["parameters"]["params"]
        if deployment["entrypoint"].endswith(":retrain"):
            params.update(max_minutes=0.3, max_epochs=3, model_sizes=TINY_SIZES, min_pairs=10,
                          gates={"min_exact_match": 0.0, "max_harm": 1.0})
        else:
            params.update(threshold=0.0, partitions=1)
    path = tmp / "prefect.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def test_deploy_and_run_both_deployments_with_a_worker(tmp_path):
    demo = tmp_path / "demo"
    demo.mkdir()
    build_demo_database(demo, rows=40, pairs=40, fields=FIELDS[:1])
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_API_URL": api,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1", "PREFECT_WORKER_QUERY_SECONDS": "2",
           "STRSEQ_HOME": str(demo), "STRSEQ_REGISTRY": str(demo / "models"),
           "STRSEQ_PAIRS_DB": db_url(demo), "STRSEQ_CRM_DB": db_url(demo),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("PREFECT_API_KEY", None)
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, *args: str) -> subprocess.Popen:
        # in the repository root, as an operator would start them: the checkout's strseq_tasks/
        # comes first on the flow runs' sys.path, and the entrypoints must import from it
        return subprocess.Popen([str(BIN / "prefect"), *args], env=env, stdout=open(logs / f"{name}.log", "w"),
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)

    def prefect(*args: str) -> str:
        done = subprocess.run([str(BIN / "prefect"), "--no-prompt", *args], env=env, capture_output=True,
                              text=True, timeout=180)
        assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    server = start("server", "server", "start", "--host", "127.0.0.1", "--port", str(port))
    worker = None
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (logs / "server.log").read_text()
            time.sleep(1)
        prefect("work-pool", "create", "strseq-cpu", "--type", "process")
        out = prefect("deploy", "--prefect-file", str(_test_file(tmp_path)), "--all")
        assert "nightly-retrain-names" in out and "clean-customers-name" in out
        worker = start("worker", "worker", "start", "--pool", "strseq-cpu")
        state = _run_and_wait(env, "strseq-retrain/nightly-retrain-names", logs)
        assert state == "COMPLETED", f"the retrain ended {state}:\n{(logs / 'worker.log').read_text()[-4000:]}"
        state = _wait(env, "strseq-clean/clean-customers-name", logs)  # started by the promotion, not by us
        assert state == "COMPLETED", f"the cleaning ended {state}:\n{(logs / 'worker.log').read_text()[-4000:]}"
    finally:
        if worker is not None:
            _stop(worker)  # the worker before the server (the other order can leave it hanging)
        _stop(server)
    assert server.poll() is not None and (worker is None or worker.poll() is not None)
    assert Registry(str(demo / "models")).alias("names", PRODUCTION).version == 1  # published and promoted
    engine = sa.create_engine(db_url(demo))
    with engine.connect() as conn:
        handled = conn.execute(sa.text("SELECT count(*) FROM strseq_processed")).scalar()
        runs = conn.execute(sa.text("SELECT status FROM strseq_runs")).scalars().all()
        pairs = conn.execute(sa.text(pairs_query(FIELDS[0]))).fetchall()
    engine.dispose()
    assert runs == ["completed"]
    assert 36 <= handled < 40 and len(pairs) == 40  # every non-empty name handled once (1% are left empty)


def _run_and_wait(env: dict, deployment: str, logs: Path, timeout: float = 420) -> str:
    """Trigger ``deployment`` as the guide does (`prefect deployment run NAME`, through the API)
    and wait for its flow run's final state."""
    started = subprocess.run([str(BIN / "prefect"), "--no-prompt", "deployment", "run", deployment], env=env,
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    run_id = re.search(r"UUID: ([0-9a-f-]{36})", started.stdout)
    assert run_id, started.stdout
    return _wait(env, deployment, logs, timeout)


def _wait(env: dict, deployment: str, logs: Path, timeout: float = 420) -> str:
    """The final state of the deployment's earliest flow run (waiting for it to be created, too)."""
    script = f"""
import asyncio, time
from prefect import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
async def wait():
    async with get_client() as client:
        deployment = await client.read_deployment_by_name({deployment!r})
        deadline = time.monotonic() + {timeout}
        while time.monotonic() < deadline:
            runs = await client.read_flow_runs(deployment_filter=DeploymentFilter(
                id=DeploymentFilterId(any_=[deployment.id])))
            runs = sorted(runs, key=lambda run: run.expected_start_time)  # not tomorrow's scheduled ones
            state = runs[0].state if runs else None
            if state is not None and state.is_final():
                return state.type.value
            await asyncio.sleep(2)
        return "TIMED OUT"
print(asyncio.run(wait()))
"""
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=timeout + 60)
    (logs / f"{deployment.replace('/', '_')}.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]
