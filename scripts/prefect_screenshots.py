"""Screenshots of Prefect's UI for docs/deployment.md: a retrain's flow run, its artifacts, its
metrics table and its training plot.

    .venv/bin/python scripts/prefect_screenshots.py            # writes docs/prefect-*.png

Starts `prefect server start` (with its UI) on a free port, in a temporary PREFECT_HOME; runs two
short retrains of `names` against it (120 of examples/names_pairs.csv, then all 200, compared with
the first in production); and photographs the second run with headless Chromium
(Debian's /usr/bin/chromium driven by Playwright's API: no browser download). It stops
everything it started, by PID.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
           "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"}  # where the UI's pages ask (default: port 4200)
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=open(home / "server.log", "w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(1)
        if server.poll() is not None:
            break
    stop(server)
    sys.exit(f"error: the Prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def retrain_twice(work: Path) -> str:
    """Version 1 of `names` from 120 of the example pairs, then version 2 from all 200 (compared
    with version 1 in production); the id of the second's flow run."""
    import csv

    from strseq_tasks.flows.retrain import retrain
    from strseq_tasks.jobs.retrain import RetrainParams

    with open(ROOT / "examples" / "names_pairs.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    first = work / "first_pairs.csv"
    with open(first, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows[:121])  # the header and 120 pairs
    params = RetrainParams(pairs=str(first), registry=str(work / "models"), name="names", max_epochs=4,
                           max_minutes=1.5)
    retrain(params)
    state = retrain(params.model_copy(update={"pairs": str(ROOT / "examples" / "names_pairs.csv")}),
                    return_state=True)
    return str(state.state_details.flow_run_id)


def photograph(ui: str, run_id: str, out: Path) -> list[Path]:
    """The run's page (its task runs and artifacts), then its metrics table and training plot."""
    from playwright.sync_api import sync_playwright
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = {a.key: a.id for a in client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))}
    shots = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def shot(name: str) -> None:
            page.wait_for_timeout(3000)  # the UI draws its graph and cards after the data arrives
            page.screenshot(path=out / name)
            shots.append(out / name)

        page.goto(f"{ui}/runs/flow-run/{run_id}")
        page.get_by_text("promote", exact=False).first.wait_for(timeout=60_000)
        page.get_by_text("Artifacts", exact=True).last.click()
        page.get_by_text("names-metrics").first.wait_for(timeout=60_000)
        shot("prefect-retrain-run.png")
        for key, name in (("names-metrics", "prefect-metrics-artifact.png"),
                          ("names-training-plot", "prefect-training-plot.png")):
            page.goto(f"{ui}/artifacts/artifact/{artifacts[key]}")
            page.get_by_text(key).first.wait_for(timeout=60_000)
            shot(name)
        browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go (default: docs/)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"error: no {CHROMIUM} (apt-get install chromium)")
    work = Path(tempfile.mkdtemp(prefix="strseq-screenshots-"))
    port = free_port()
    server = start_server(work, port)
    try:
        # before Prefect is imported: this process's flow runs go to that server
        os.environ.update(PREFECT_API_URL=f"http://127.0.0.1:{port}/api", PREFECT_HOME=str(work),
                          PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
        run_id = retrain_twice(work)
        for path in photograph(f"http://127.0.0.1:{port}", run_id, args.out):
            print(f"wrote {path}")
    finally:
        stop(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
