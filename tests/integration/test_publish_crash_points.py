"""SIGKILL a publisher at seeded points (each file copied, each fsync, the rename that commits
the version): the registry shows the versions it had, or one more, whole and verified; never a
half version, never a moved alias, and the next publish tidies what the killed one left."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

from campaign import pick  # tests/ is on sys.path

from strseq_tasks.serve.registry import Registry

POINTS = 10

JOB = textwrap.dedent("""
    import json, os, shutil, signal, sys
    from pathlib import Path
    import strseq_tasks.serve.registry as registry

    root, bundle, at = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    seen = {"n": 0}

    def hit():
        seen["n"] += 1
        if seen["n"] == at:
            os.kill(os.getpid(), signal.SIGKILL)

    real_copy, real_rename, real_fsync = shutil.copy2, os.rename, os.fsync
    def copy2(a, b):
        hit(); return real_copy(a, b)
    def rename(a, b):
        hit(); real_rename(a, b); hit()
    def fsync(fd):
        hit(); real_fsync(fd)
    shutil.copy2, os.rename, os.fsync = copy2, rename, fsync
    print(json.dumps({"version": registry.Registry(root).publish("names", bundle), **seen}))
""")


def _publish(root, bundle, at):
    return subprocess.run([sys.executable, "-c", JOB, str(root), str(bundle), str(at)], capture_output=True,
                          text=True, timeout=60)


def test_a_publisher_killed_at_any_point_leaves_whole_versions_only(tmp_path, tiny_bundle, ledger):
    probe = tmp_path / "probe"
    Registry(probe).publish("names", tiny_bundle)
    done = _publish(probe, tiny_bundle, 0)
    assert done.returncode == 0, done.stderr
    total = json.loads(done.stdout)["n"]
    for at in pick(total, POINTS):
        root = tmp_path / f"at-{at}"
        registry = Registry(root)
        registry.publish("names", tiny_bundle)
        registry.set_alias("names", "production", 1, "first")
        killed = _publish(root, tiny_bundle, at)
        assert killed.returncode == -signal.SIGKILL, (at, killed.returncode, killed.stderr[-2000:])
        versions = registry.versions("names")
        for version in versions:
            registry.fetch("names", version)  # each one whole and verified
        alias = registry.resolve("names", "production")
        after = registry.publish("names", tiny_bundle)  # the next publish works and tidies up
        staging = sorted(p.name for p in (root / "names" / ".staging").iterdir())
        ledger("crash", f"publisher SIGKILLed at point {at} of {total} (copies, fsyncs, the committing rename); "
               f"then the next publish: versions {versions} whole, production still {alias}", "registry (folder)")
        assert versions in ([1], [1, 2]) and alias == 1, (at, versions, alias)
        assert after == versions[-1] + 1 and staging == [], (at, after, staging)
