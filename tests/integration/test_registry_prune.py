"""`strseq models prune` on a real registry folder (and fsspec's memory filesystem): what it keeps
and why, what it frees, a prune killed at any point, and a prune beside publishes and promotions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid

from campaign import pick  # tests/ is on sys.path

from integration.cli_harness import ONE_THREAD, run_strseq, snapshot
from strseq_tasks.serve.bundle import read_manifest
from strseq_tasks.serve.refs import CANDIDATE, PRODUCTION
from strseq_tasks.serve.registry import Registry


def _registry(root, bundle, versions: int) -> Registry:
    registry = Registry(root)
    for _ in range(versions):
        registry.publish("names", bundle)
    return registry


def _whole(registry: Registry) -> list[int]:
    """The versions listed, each verified; and nothing in versions/ but whole versions."""
    versions = registry.versions("names")
    for version in versions:
        registry.fetch("names", version)
    folder = registry.root + "/names/versions"
    assert sorted(int(p.rsplit("/", 1)[1]) for p in registry.fs.ls(folder, detail=False)) == versions
    return versions


def test_prune_keeps_the_newest_what_aliases_need_and_says_what_it_freed(tmp_path, tiny_bundle):
    registry = _registry(tmp_path / "registry", tiny_bundle, 7)
    registry.set_alias("names", PRODUCTION, 2, "night 2")
    registry.set_alias("names", PRODUCTION, 3, "night 3")  # rolls back to 2
    registry.set_alias("names", CANDIDATE, 5, "published")
    model = f"{registry.url}/names"
    before = snapshot(tmp_path / "registry")
    dry = run_strseq("models", "prune", model, "--keep", "2", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert snapshot(tmp_path / "registry") == before  # a dry run removes nothing
    plan = json.loads(dry.stdout)
    assert {k["version"]: k["why"] for k in plan["kept"]} == {
        7: ["one of the newest 2"], 6: ["one of the newest 2"], 5: ["candidate points to it"],
        3: ["production points to it"], 2: ["production would roll back to it"]}
    folder = tmp_path / "registry" / "names" / "versions"
    sizes = {v: sum(p.stat().st_size for p in (folder / str(v)).iterdir()) for v in (1, 4)}
    assert plan["removed"] == [{"version": 4, "bytes": sizes[4]}, {"version": 1, "bytes": sizes[1]}]
    assert plan["freed_bytes"] == sum(sizes.values()) and plan["dry_run"]
    done = run_strseq("models", "prune", model, "--keep", "2")
    assert done.returncode == 0, done.stderr
    assert f"removed 2 (freed {sum(sizes.values()) / 1e6:.1f} MB)" in done.stdout.splitlines()[0]
    assert "kept          version    2  production would roll back to it" in done.stdout
    assert _whole(registry) == [2, 3, 5, 6, 7]
    assert list((tmp_path / "registry" / "names" / ".trash").iterdir()) == []
    rolled = run_strseq("models", "rollback", "--registry", registry.url, "--name", "names")
    assert rolled.returncode == 0 and registry.resolve("names", PRODUCTION) == 2, rolled.stderr
    assert registry.publish("names", tiny_bundle) == 8  # numbering goes on after the newest
    # after the rollback, 3 is neither production nor what it would roll back to: it goes now
    again = json.loads(run_strseq("models", "prune", model, "--keep", "2", "--json").stdout)
    assert [r["version"] for r in again["removed"]] == [6, 3] and _whole(registry) == [2, 5, 7, 8]


def test_prune_on_an_object_store_removes_each_version_whole(tiny_bundle):
    url = f"memory://reg-{uuid.uuid4().hex}"
    registry = _registry(url, tiny_bundle, 4)
    try:
        registry.set_alias("names", PRODUCTION, 1, "first")
        pruned = registry.prune("names", keep=1)
        assert [v.version for v in pruned.removed] == [3, 2] and pruned.freed > 0
        assert _whole(registry) == [1, 4]
        assert not registry.fs.exists(f"{registry.root}/names/versions/2")
        assert registry.publish("names", tiny_bundle) == 5
    finally:
        registry.fs.rm(registry.root, recursive=True)


PRUNE_JOB = textwrap.dedent("""
    import json, os, signal, sys
    from strseq_tasks.serve.registry import Registry

    root, at = sys.argv[1], int(sys.argv[2])
    seen = {"n": 0}

    def hit():
        seen["n"] += 1
        if seen["n"] == at:
            os.kill(os.getpid(), signal.SIGKILL)

    real_rename, real_unlink, real_rmdir = os.rename, os.unlink, os.rmdir
    def rename(*a, **k):
        hit(); real_rename(*a, **k); hit()
    def unlink(*a, **k):
        hit(); real_unlink(*a, **k)
    def rmdir(*a, **k):
        hit(); real_rmdir(*a, **k)
    os.rename, os.unlink, os.rmdir = rename, unlink, rmdir
    Registry(root).prune("names", 1)
    print(json.dumps(seen))
""")


def _prune_killed_at(root, at: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PRUNE_JOB, str(root), str(at)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **ONE_THREAD})


def test_a_prune_killed_at_any_point_leaves_whole_versions_and_the_next_one_finishes(tmp_path, tiny_bundle, ledger):
    def setup(root):
        registry = _registry(root, tiny_bundle, 5)
        registry.set_alias("names", PRODUCTION, 2, "night 2")
        registry.set_alias("names", PRODUCTION, 3, "night 3")
        return registry

    setup(tmp_path / "probe")
    done = _prune_killed_at(tmp_path / "probe", 0)
    assert done.returncode == 0, done.stderr
    total = json.loads(done.stdout)["n"]
    assert total > 10  # two renames and the files of two versions
    for at in pick(total, 10):
        root = tmp_path / f"at-{at}"
        registry = setup(root)
        killed = _prune_killed_at(root, at)
        assert killed.returncode == -signal.SIGKILL, (at, killed.returncode, killed.stderr[-2000:])
        versions = _whole(registry)
        assert {2, 3, 5} <= set(versions) <= {1, 2, 3, 4, 5}, (at, versions)
        assert registry.resolve("names", PRODUCTION) == 3
        ledger("crash", f"prune SIGKILLed at point {at} of {total} (renames into the trash, its deletions): "
               f"versions {versions} whole; production still 3", "registry (folder)")
        finished = run_strseq("models", "prune", f"{root}/names", "--keep", "1")
        assert finished.returncode == 0, finished.stderr
        assert _whole(registry) == [2, 3, 5] and list((root / "names" / ".trash").iterdir()) == []


CONCURRENT_JOB = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from strseq_tasks.serve.refs import RegistryError
    from strseq_tasks.serve.registry import Registry

    root, role, bundle = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    registry, out = Registry(root), []
    for round in range(4):
        if role == "publish":
            out.append(registry.publish("names", bundle))
        elif role == "prune":
            out.append([v.version for v in registry.prune("names", 2).removed])
        else:  # promote an old version: either it is still there and the alias keeps it, or it is gone
            try:
                out.append(registry.set_alias("names", "production", 1 + round, "by hand").version)
            except RegistryError as exc:
                assert "has no version" in str(exc), exc
                out.append(None)
    print(json.dumps(out))
""")


def test_prune_beside_publishes_and_promotions_loses_nothing_it_should_keep(tmp_path, tiny_bundle):
    registry = _registry(tmp_path / "registry", tiny_bundle, 6)
    registry.set_alias("names", PRODUCTION, 6, "start")
    roles = ["publish", "publish", "prune", "prune", "promote"]
    env = {**os.environ, **ONE_THREAD}
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT_JOB, registry.url, role, str(tiny_bundle)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for role in roles]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * len(roles), [err[-2000:] for _, err in outs]
    results = dict(zip(range(len(roles)), (json.loads(out) for out, _ in outs)))
    published = results[0] + results[1]
    assert len(set(published)) == 8 and min(published) == 7  # every publish got a number of its own
    removed = [v for r in results[2] + results[3] for v in r]
    assert len(removed) == len(set(removed))  # no version removed twice
    versions = _whole(registry)
    assert set(versions) == set(range(1, 15)) - set(removed)  # the rest whole, nothing half-removed
    assert max(published) in versions  # the newest is never removed
    state = registry.alias("names", PRODUCTION)
    assert state.version in versions  # the alias never names a version a prune removed
    read_manifest(registry.fetch("names", state.version))
