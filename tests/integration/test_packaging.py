"""The checkout and an installed wheel are the same package: every import path works from both.

A Prefect worker started in the repository root imports the deployments' entrypoints
(``strseq_tasks.flows.retrain:retrain``) from the checkout, which shadows any installed copy; a
server with the wheel alone imports them from site-packages. Both must find the flows, the GX
suites and the shipped LM.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json
import strseq_tasks.flows.clean, strseq_tasks.flows.retrain
from strseq_tasks.data.validation import suites_dir
from strseq_tasks.learn.lm_bundle import default_lm_path
from strseq_tasks.learn.transfer import default_pretrained_path
print(json.dumps({"flows": strseq_tasks.flows.retrain.__file__,
                  "suites": sorted(p.name for p in suites_dir().iterdir()),
                  "lm": sorted(p.name for p in default_lm_path().iterdir()),
                  "pretrained": sorted(p.name for p in default_pretrained_path().iterdir())}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The project built as a wheel and installed (not editable) into a folder of its own."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # a copy of the checkout: building writes build/ and *.egg-info beside the sources
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, check=True).stdout
    for name in filter(None, files.decode("utf-8").split("\0")):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        origin = ROOT / name
        if origin.is_symlink():
            target.symlink_to(os.readlink(origin))
        elif origin.is_file():  # a file deleted in the working tree but not yet in git is left out
            shutil.copy2(origin, target)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    wheel = next((tmp / "dist").glob("strseq-*.whl"))
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                              str(tmp / "site"), str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    return wheel


def _probe(cwd: Path, site: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_wheel_holds_every_module_the_flows_the_suites_and_the_lm(installed):
    names = set(zipfile.ZipFile(installed).namelist())
    expected = {f"strseq_tasks/{p.relative_to(ROOT / 'strseq_tasks')}" for p in (ROOT / "strseq_tasks").rglob("*.py")}
    expected |= {f"strseq_tasks/flows/{p.name}" for p in (ROOT / "flows").glob("*.py")}
    expected |= {f"strseq_tasks/expectations/{p.name}" for p in (ROOT / "expectations").glob("*.json")}
    expected |= {f"strseq_tasks/gx/{p}" for p in ["great_expectations.yml", ".gitignore", "expectations/records.json",
                                                  "checkpoints/records.json", "validation_definitions/records.json"]}
    expected |= {f"strseq_tasks/{p.relative_to(ROOT / 'strseq_tasks')}"
                 for p in (ROOT / "strseq_tasks" / "pretrained").rglob("*") if p.is_file()}
    assert expected - names == set()


def test_an_installed_wheel_imports_the_flows_from_anywhere(installed, tmp_path):
    site = installed.parents[1] / "site"
    found = _probe(tmp_path, site)
    assert found["flows"] == str(site / "strseq_tasks" / "flows" / "retrain.py")
    assert found["suites"] == sorted(p.name for p in (ROOT / "expectations").glob("*.json"))
    assert "lm.safetensors" in found["lm"] and "weights.safetensors" in found["pretrained"]


def test_from_the_repository_root_the_checkout_shadows_the_install_and_still_imports_the_flows(installed):
    """`import strseq_tasks.flows.retrain` from the repository root (where the checkout's
    strseq_tasks/ comes first on sys.path) is the checkout's flows/retrain.py."""
    found = _probe(ROOT, installed.parents[1] / "site")
    assert Path(found["flows"]).resolve() == ROOT / "flows" / "retrain.py"
    assert found["suites"] == sorted(p.name for p in (ROOT / "expectations").glob("*.json"))
