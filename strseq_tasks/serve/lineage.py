"""Where a version came from: its ``lineage``, written into ``publication.json`` when it is published.

    "lineage": {"data": {"fingerprint": "...", "pairs": 1000, "source": "postgresql+psycopg://etl:***@db/crm ..."},
                "base_model": {"name": "...", "kind": "transducer", "manifest_sha256": "..."},
                "flow_run": {"id": "...", "name": "...", "flow": "strseq-retrain", "url": "http://.../runs/flow-run/..."},
                "user": "etl", "host": "worker-1", "strseq_version": "0.1.0",
                "code_version": "git:4979511...", "published": "2025-...Z"}

The data and the base model are read from the bundle's manifest (what training recorded) and
the retrain's record (where it read the pairs); the flow run from ``prefect.runtime`` when the
publish runs inside one (its UI address from ``PREFECT_UI_URL``, which Prefect derives from
``PREFECT_API_URL`` when only that is set); the code version is the git commit of the checkout
strseq runs from (``-dirty`` with uncommitted changes), else the installed package's version.
Every URL is masked: lineage never holds a password. Versions published before lineage was
recorded have none; everything that reads it allows for that.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
from pathlib import Path

from strseq_tasks import __version__
from strseq_tasks.data.urls import mask_url

CHECKOUT = Path(__file__).resolve().parents[2]  # the folder holding strseq_tasks/: a checkout has .git here


def lineage(manifest: dict, publication: dict | None, published: str) -> dict:
    data = manifest.get("data") or {}
    source = ((publication or {}).get("data") or {}).get("source") or data.get("source")
    return {"data": {"fingerprint": data.get("fingerprint"), "pairs": data.get("pairs"),
                     "source": mask_url(str(source)) if source else None},
            "base_model": base_model(manifest), "flow_run": flow_run(), "user": user(),
            "host": socket.gethostname(), "strseq_version": __version__, "code_version": code_version(),
            "published": published}


def base_model(manifest: dict) -> dict | None:
    """What training started from (None: random weights), by name and checksum, not by its path
    (an adapted LM's folder is a retrain's scratch folder, gone after the run)."""
    start = manifest.get("pretrained")
    if not isinstance(start, dict):
        return None
    return {"name": start.get("name"), "kind": start.get("kind", "language model"),
            "manifest_sha256": start.get("manifest_sha256"), "created": start.get("created")}


def flow_run() -> dict | None:
    """The Prefect flow run this publish runs in (from a task of it too), or None."""
    try:
        from prefect.runtime import flow_run as current
        from prefect.utilities.urls import url_for
    except ImportError:  # a CPU server with the runtime alone publishes outside Prefect
        return None
    run_id = current.id
    if not run_id:
        return None
    try:
        name, flow = current.name, current.flow_name
    except Exception:  # noqa: BLE001 - outside the run's context these ask the API: the id is what counts
        name, flow = None, None
    # the address Prefect itself logs ("View at ..."); None when no UI address is known
    return {"id": str(run_id), "name": name, "flow": flow, "url": url_for("flow-run", obj_id=run_id) or None}


def user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid without a name
        return f"uid {os.getuid()}"


def code_version() -> str:
    """``git:COMMIT`` (``-dirty``: with uncommitted changes) when strseq runs from a checkout, else
    ``strseq==VERSION`` (an installed package: its version names its code)."""
    if (CHECKOUT / ".git").exists():
        try:
            git = ["git", "-C", str(CHECKOUT)]
            commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
            changed = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                     text=True, timeout=10)
            if commit.returncode == 0 and changed.returncode == 0:
                return f"git:{commit.stdout.strip()}" + ("-dirty" if changed.stdout.strip() else "")
        except (OSError, subprocess.SubprocessError):  # no git on this machine, or it hung
            pass
    return f"strseq=={__version__}"
