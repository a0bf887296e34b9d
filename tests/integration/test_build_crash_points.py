"""SIGKILL a bundle build (what `strseq train` and `retrain` end with) at seeded points: while
writing files, at each fsync, around each rename and the atomic swap. Whatever the point, the
model folder is either absent (a first build), the previous bundle or the new one, complete and
verified; the next build tidies what the killed one left, or puts the previous bundle back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from campaign import pick  # tests/ is on sys.path

from strseq_tasks.serve.bundle import exchange, read_manifest, recover_leftovers

POINTS = 10  # per mode: a first build, and a rebuild over an existing bundle (--force)
REQUIRED = ("vocab.json",)
FORMAT = "strseq-crash-test/1"  # files of no real bundle type: checked for integrity, not for sense

JOB = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path
    import strseq_tasks.serve.bundle as bundle

    out, at, overwrite, tag = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
    seen = {"n": 0}

    def hit():
        seen["n"] += 1
        if seen["n"] == at:
            os.kill(os.getpid(), signal.SIGKILL)

    real_replace, real_fsync = os.replace, os.fsync
    def replace(a, b):
        hit(); real_replace(a, b); hit()
    def fsync(fd):
        hit(); real_fsync(fd)
    os.replace, os.fsync = replace, fsync
    real_exchange = bundle.exchange
    def exchange(a, b):
        hit(); swapped = real_exchange(a, b); hit(); return swapped
    bundle.exchange = exchange

    def build(folder):
        for name in ("vocab.json", "encoder.onnx", "decoder_step.onnx", "weights.safetensors"):
            hit()
            (folder / name).write_text(tag + ":" + name)
        hit()
        return {"tag": tag}

    bundle.write_bundle(out, build, overwrite=overwrite, fmt="strseq-crash-test/1", required=("vocab.json",))
    print(json.dumps(seen))
""")


def _build(out, at, overwrite, tag):
    return subprocess.run([sys.executable, "-c", JOB, str(out), str(at), "1" if overwrite else "0", tag],
                          capture_output=True, text=True, timeout=60)


def _tag(out):
    return read_manifest(out, fmt=FORMAT, required=REQUIRED)["tag"]


@pytest.mark.parametrize("overwrite", [False, True], ids=["first build", "rebuild"])
def test_a_build_killed_at_any_point_leaves_a_whole_bundle_or_none(tmp_path, overwrite, ledger):
    probe = tmp_path / "probe" / "model"
    probe.parent.mkdir()
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    swaps = exchange(tmp_path / "a", tmp_path / "b")  # this file system swaps folders atomically
    if overwrite:
        assert _build(probe, 0, False, "old").returncode == 0
    done = _build(probe, 0, overwrite, "new")
    assert done.returncode == 0, done.stderr
    total = json.loads(done.stdout)["n"]
    points = pick(total, POINTS, overwrite)
    for at in points:
        folder = tmp_path / f"at-{at}"
        folder.mkdir()
        out = folder / "model"
        if overwrite:
            assert _build(out, 0, False, "old").returncode == 0
        killed = _build(out, at, overwrite, "new")
        assert killed.returncode == -signal.SIGKILL, (at, killed.returncode, killed.stderr[-2000:])
        # what a reader sees right after the kill: no folder (a first build), or a whole, verified
        # bundle; a rebuild swaps them atomically, so a reader always finds one (where it can)
        state = _tag(out) if out.exists() else None
        assert state in ((None, "new") if not overwrite else ("old", "new") if swaps else (None, "old", "new")), \
            (at, state)
        tidied = recover_leftovers(out)  # what the next build does first
        after = _tag(out) if out.exists() else None
        leftovers = sorted(p.name for p in folder.iterdir() if p.name != "model")
        lost = int(overwrite and after is None)  # the previous bundle gone with no new one
        ledger("crash", f"bundle {'rebuild (--force)' if overwrite else 'first build'} SIGKILLed at point {at} "
               f"of {total}: right after it a reader finds {f'the {state} bundle' if state else 'no folder'}; "
               "then the next build's tidy-up", "model folder", rows_lost=lost,
               error="; ".join(tidied))
        assert lost == 0 and leftovers == [], (at, after, leftovers)
        assert after == state or (state is None and after == "old")  # put back, never half
    assert os.listdir(probe.parent) == ["model"]
