"""SIGKILL the real `strseq train` and `strseq retrain` commands at seeded points: a training step,
a file operation while the bundle is written (each rename, each fsync, each copy), a file operation
while the registry is written (publishing the version, moving each alias). Whatever the point:
no half bundle, no half registry version, no alias moved to a version that is not whole, no
Prefect server left running, and the next run tidies what the killed one left.

The command kills itself at the chosen point (the n-th of its kind), which is what an outside
SIGKILL landing there would do, but lands exactly where the seed says. Only file operations under
the test's folders count, so the points do not depend on what else the process writes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from campaign import pick  # tests/ is on sys.path
from fixtures.data import lowercase_pairs, write_pairs

from integration.cli_harness import ONE_THREAD, hidden_entries, snapshot
from strseq_tasks.jobs.retrain import WORK_PREFIX, work_folder
from strseq_tasks.serve.bundle import read_manifest
from strseq_tasks.serve.refs import CANDIDATE, PRODUCTION
from strseq_tasks.serve.registry import Registry

# the command, with its file operations and training steps counted; SIGKILL at the chosen one
JOB = textwrap.dedent("""
    import json, os, shutil, signal, sys
    import torch

    kind, at, counts_file, roots = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split(os.pathsep)
    counts = {"train": 0, "bundle": 0, "registry": 0}

    def where(path):
        path = os.path.abspath(os.fsdecode(path))
        for name, root in zip(("bundle", "registry"), roots):
            if path.startswith(root + os.sep):
                return name
        return None

    def hit(place):
        if place is None:
            return
        counts[place] += 1
        with open(counts_file, "w") as f:
            json.dump(counts, f)
        if place == kind and counts[place] == at:
            os.kill(os.getpid(), signal.SIGKILL)

    real_replace, real_rename, real_fsync, real_copy = os.replace, os.rename, os.fsync, shutil.copy2
    def replace(a, b, **kw):
        hit(where(b)); real_replace(a, b, **kw); hit(where(b))
    def rename(a, b, **kw):
        hit(where(b)); real_rename(a, b, **kw); hit(where(b))
    def fsync(fd):
        hit(where(os.readlink(f"/proc/self/fd/{fd}"))); real_fsync(fd)
    def copy2(a, b, **kw):
        hit(where(b)); return real_copy(a, b, **kw)
    os.replace, os.rename, os.fsync, shutil.copy2 = replace, rename, fsync, copy2
    import strseq_tasks.serve.bundle as bundle
    real_exchange = bundle.exchange
    def exchange(a, b):  # the atomic swap of a rebuilt bundle
        hit(where(b)); swapped = real_exchange(a, b); hit(where(b)); return swapped
    bundle.exchange = exchange

    real_clip = torch.nn.utils.clip_grad_norm_
    def clip(*args, **kwargs):
        hit("train")  # one training step, before its update
        return real_clip(*args, **kwargs)
    torch.nn.utils.clip_grad_norm_ = clip

    sys.argv = ["strseq", *sys.argv[5:]]
    from strseq_tasks.cli import main
    main()
""")


def _run(tmp: Path, kind: str, at: int, roots: tuple[Path, Path], *args: object) -> tuple[subprocess.CompletedProcess,
                                                                                           dict]:
    counts = tmp / f"counts-{kind}-{at}-{time.monotonic_ns()}.json"
    env = {**os.environ, **ONE_THREAD, "PYTHONIOENCODING": "utf-8", "TMPDIR": str(tmp / "system-tmp")}
    (tmp / "system-tmp").mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", JOB, kind, str(at), str(counts),
                           os.pathsep.join(str(r.resolve()) for r in roots), *map(str, args)],
                          capture_output=True, text=True, encoding="utf-8", env=env, timeout=600)
    return proc, json.loads(counts.read_text()) if counts.exists() else {}


def _servers_started_by(pid: int, tmp: Path) -> list[int]:
    """Prefect temporary servers that the (killed) process started and that still run (found by
    the TMPDIR it ran with, which they inherit), and its watchdog if that still runs."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            env = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        server = b"prefect.server.api.server:create_app" in cmd and f"TMPDIR={tmp}".encode() in env
        if server or (b"strseq_tasks.runner.server_guard" in cmd and str(pid).encode() in cmd):
            found.append(int(proc.name))
    return found


def _wait_gone(pid: int, tmp: Path, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := _servers_started_by(pid, tmp)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("crash_pairs") / "pairs.csv", lowercase_pairs()[:60])


TRAIN = ["--max-epochs", "2", "--precision", "fp32", "--seed", "0"]


@pytest.mark.long  # ~30 s; also in scripts/reliability_report.py
def test_strseq_train_killed_at_any_point_leaves_the_old_bundle_or_a_whole_new_one(tmp_path, pairs_file, ledger):
    out = tmp_path / "probe" / "model"
    out.parent.mkdir()
    done, total = _run(tmp_path, "none", 0, (out.parent, tmp_path / "none"), "train", "--pairs", pairs_file,
                       "--out", out, *TRAIN)
    assert done.returncode == 0, done.stderr[-3000:]
    old = snapshot(out)
    points = [("train", at) for at in pick(total["train"], 1, "train:train")]
    points += [("bundle", at) for at in pick(total["bundle"], 2, "train:bundle")]
    leftovers = []
    for kind, at in points:
        folder = tmp_path / f"{kind}-{at}"
        folder.mkdir()
        target = folder / "model"
        subprocess.run(["cp", "-a", str(out), str(target)], check=True)  # the bundle in production
        killed, _ = _run(tmp_path, kind, at, (folder, tmp_path / "none"), "train", "--pairs", pairs_file,
                         "--out", target, *TRAIN, "--force")
        assert killed.returncode == -signal.SIGKILL, (kind, at, killed.returncode, killed.stderr[-2000:])
        read_manifest(target)  # whole and verified: the old bundle, or the new one
        kept = snapshot(target) == old
        left = hidden_entries(folder)
        leftovers.append((folder, left))
        tidy = f" ({len(left)} hidden temporary folder(s) left beside it, for the next run to tidy)" if left else ""
        ledger("crash", f"`strseq train --force` SIGKILLed at {kind} point {at} of {total[kind]}: the model "
               f"folder is {'the old bundle, untouched' if kept else 'the new bundle, whole'}{tidy}", "model folder")
        if kind == "train":
            assert kept, "a kill while training must leave the old bundle untouched"
    # the next run over a folder a kill left untidy (else the last one) works and tidies it
    folder, _ = next(((f, left) for f, left in leftovers if left), leftovers[-1])
    again, _ = _run(tmp_path, "none", 0, (folder, tmp_path / "none"), "train", "--pairs", pairs_file,
                    "--out", folder / "model", *TRAIN, "--force")
    assert again.returncode == 0, again.stderr[-3000:]
    read_manifest(folder / "model")
    assert hidden_entries(folder) == []


RETRAIN = ["--name", "lower", "--max-epochs", "2", "--precision", "fp32", "--min-exact-match", "0", "--max-harm", "1",
           "--max-regression", "1"]


def _registry_state(root: Path) -> dict:
    registry = Registry(root)
    versions = registry.versions("lower")
    for version in versions:
        registry.fetch("lower", version)  # each one whole and verified
    aliases = {a: registry.resolve("lower", a) for a in (PRODUCTION, CANDIDATE)}
    return {"versions": versions, **aliases}


@pytest.mark.long  # ~40 s; also in scripts/reliability_report.py
def test_strseq_retrain_killed_at_any_point_leaves_whole_versions_and_aliases_and_no_server(tmp_path, pairs_file,
                                                                                            ledger):
    root = tmp_path / "registry"
    work = tmp_path / "system-tmp"
    done, total = _run(tmp_path, "none", 0, (work, root), "retrain", "--pairs", pairs_file, "--registry", root,
                       *RETRAIN)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _registry_state(root) == {"versions": [1], PRODUCTION: 1, CANDIDATE: 1}
    assert total["bundle"] and total["registry"], total
    # while the registry is written (publishing the version, moving the aliases), the temporary
    # server and the scratch folder are in use too; kills while training and while the bundle is
    # written are the train test's (the same code)
    points = [("registry", at) for at in pick(total["registry"], 1, "retrain:registry")]
    for kind, at in points:
        before = _registry_state(root)
        proc = subprocess.Popen(
            [sys.executable, "-c", JOB, kind, str(at), str(tmp_path / "counts-killed.json"),
             os.pathsep.join(str(r.resolve()) for r in (work, root)), "retrain", "--pairs", str(pairs_file),
             "--registry", str(root), *RETRAIN, "--force"],  # the same pairs: without --force, nothing to publish
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **ONE_THREAD, "PYTHONIOENCODING": "utf-8", "TMPDIR": str(work)})
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == -signal.SIGKILL, (kind, at, proc.returncode, err[-2000:])
        servers = _wait_gone(proc.pid, work)
        after = _registry_state(root)
        new = max(after["versions"])
        moved = {a: (before[a], after[a]) for a in (PRODUCTION, CANDIDATE) if before[a] != after[a]}
        ledger("crash", f"`strseq retrain` SIGKILLed at {kind} point {at} of {total[kind]}: versions "
               f"{after['versions']} whole; production {after[PRODUCTION]}, candidate {after[CANDIDATE]}; "
               f"Prefect's temporary server {'still running' if servers else 'stopped with it'}", "registry (folder)",
               error="" if not servers else f"server processes {servers} outlived the killed run")
        assert servers == [], f"the temporary server outlived the killed run: {servers}"
        assert after["versions"] in (before["versions"], [*before["versions"], new]), (before, after)
        for alias, (_, now) in moved.items():  # an alias moves only to the new, whole version
            assert now == new and new not in before["versions"], (alias, before, after)
    # what the next retrain does first tidies what the kills left: the publisher's staging (the
    # next version number follows), the scratch folder with the bundle being built
    last = _registry_state(root)
    registry = Registry(root)
    assert registry.publish("lower", registry.fetch("lower", 1)) == max(last["versions"]) + 1
    assert sorted(p.name for p in (root / "lower" / ".staging").iterdir()) == []
    # (a kill while publishing leaves the scratch folder; one while moving the aliases, after the
    # bundle was published and its scratch folder removed, leaves none)
    with work_folder(work):
        pass
    assert sorted(p.name for p in work.iterdir() if p.name.startswith("strseq-retrain-")) == []


def test_a_retrain_removes_the_scratch_folders_of_killed_retrains_only(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{WORK_PREFIX}{int(ended.stdout)}-abc"  # its process has ended
    alive = tmp_path / f"{WORK_PREFIX}{os.getpid()}-def"  # a retraining still running
    for folder in (dead, alive):
        (folder / "model").mkdir(parents=True)
    with work_folder(tmp_path) as mine:
        assert mine.is_dir() and mine.name.startswith(f"{WORK_PREFIX}{os.getpid()}-")
        assert not dead.exists() and alive.is_dir()
    assert not mine.exists() and alive.is_dir()
