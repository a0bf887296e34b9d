"""The model registry on a local folder and on fsspec's memory filesystem."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import threading
import uuid
from pathlib import Path

import pytest

from strseq_tasks.serve.bundle import MANIFEST, BundleError
from strseq_tasks.serve.refs import PRODUCTION, ModelRef, RegistryError, parse_model_ref
from strseq_tasks.serve.registry import Registry
from strseq_tasks.serve.runtime import Normalizer


@pytest.fixture(params=["local", "memory"])
def registry(request, tmp_path):
    if request.param == "local":
        yield Registry(tmp_path / "registry")
        return
    url = f"memory://reg-{uuid.uuid4().hex}"
    yield Registry(url, cache_dir=tmp_path / "cache")
    registry = Registry(url)
    if registry.fs.exists(registry.root):
        registry.fs.rm(registry.root, recursive=True)


def _listing(registry: Registry) -> dict:
    """Everything in the registry: path -> bytes (what 'exactly as before' compares)."""
    if not registry.fs.exists(registry.root):
        return {}
    return {p: registry.fs.cat_file(p) for p in registry.fs.find(registry.root)}


def test_publish_numbers_versions_and_fetch_gives_a_working_bundle(registry, tiny_bundle):
    assert registry.names() == [] and registry.versions("names") == []
    assert registry.publish("names", tiny_bundle, {"run": "a"}) == 1
    assert registry.publish("names", tiny_bundle) == 2
    assert registry.names() == ["names"] and registry.versions("names") == [1, 2]
    assert registry.publication("names", 1)["run"] == "a"
    folder = registry.fetch("names", 2)
    assert Normalizer(folder).normalize(["SMITH, John"])[0].status == "ok"
    assert registry.manifest("names", 1)["name"] == "tiny"


def test_aliases_move_and_roll_back(registry, tiny_bundle):
    for _ in range(3):
        registry.publish("names", tiny_bundle)
    registry.set_alias("names", PRODUCTION, 1, "first")
    registry.set_alias("names", PRODUCTION, 3, "better")
    assert registry.resolve("names", PRODUCTION) == 3
    assert registry.alias("names", PRODUCTION).history == (1,)
    state = registry.rollback("names")
    assert state.version == 1 and state.history == () and "from version 3" in state.reason
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback("names")
    assert registry.resolve("names", "latest") == 3 and registry.resolve("names", "2") == 2
    assert list(registry.aliases("names")) == [PRODUCTION]


@pytest.mark.parametrize("name, selector, message", [
    ("nope", "production", "no model 'nope'"),
    ("names", "7", "no version 7"),
    ("names", "staging", "no alias 'staging'"),
])
def test_unknown_models_versions_and_aliases_are_named(registry, tiny_bundle, name, selector, message):
    registry.publish("names", tiny_bundle)
    with pytest.raises(RegistryError, match=message):
        registry.resolve(name, selector)


@pytest.mark.parametrize("name", ["../up", "a/b", ".hidden", "", "x" * 101, "semi;colon"])
def test_names_that_could_escape_the_registry_are_refused(registry, tiny_bundle, name, ledger):
    with pytest.raises(RegistryError, match="invalid model name") as caught:
        registry.publish(name, tiny_bundle)
    ledger("tampering", f"publish under the model name {name[:20]!r}{'...' if len(name) > 20 else ''}",
           f"registry ({'folder' if registry.local else 'memory://'})", error=caught.value)


def test_a_failure_during_publish_leaves_the_registry_exactly_as_before(registry, tiny_bundle, monkeypatch, ledger):
    registry.publish("names", tiny_bundle)
    registry.set_alias("names", PRODUCTION, 1, "first")
    before = _listing(registry)
    calls = {"n": 0}

    def disk_full(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    if registry.local:
        real = shutil.copy2
        monkeypatch.setattr(shutil, "copy2", disk_full)
    else:
        real = registry.fs.pipe_file
        monkeypatch.setattr(registry.fs, "pipe_file", disk_full)
    with pytest.raises(OSError, match="No space") as caught:
        registry.publish("names", tiny_bundle)
    monkeypatch.undo()
    after = {p: b for p, b in _listing(registry).items()}
    ledger("database fault", "disk full (OSError 28) on the third file written while publishing",
           f"registry ({'folder' if registry.local else 'memory://'})", error=caught.value)
    assert after == before
    assert registry.versions("names") == [1] and registry.resolve("names", PRODUCTION) == 1
    assert registry.publish("names", tiny_bundle) == 2  # and the registry still works


def test_a_retried_publish_with_the_same_id_returns_the_committed_version(registry, tiny_bundle, monkeypatch):
    """The first attempt committed, then failed (say, fsync of the folder): the retry must not
    publish a second copy of the same model."""
    import strseq_tasks.serve.publish as publish_module

    registry.publish("names", tiny_bundle)
    if registry.local:
        def lost_answer(path):
            raise OSError(5, "Input/output error")

        monkeypatch.setattr(publish_module, "fsync_dir", lost_answer)
        with pytest.raises(OSError, match="Input/output"):
            registry.publish("names", tiny_bundle, publish_id="run-7")
        monkeypatch.undo()
    else:
        registry.publish("names", tiny_bundle, publish_id="run-7")
    assert registry.versions("names") == [1, 2]
    assert registry.publish("names", tiny_bundle, publish_id="run-7") == 2
    assert registry.publish("names", tiny_bundle, publish_id="run-8") == 3
    assert registry.publication("names", 3)["publish_id"] == "run-8"


def test_a_version_without_manifest_is_not_a_version(registry, tiny_bundle, ledger):
    """What a publisher killed mid-upload leaves on an object store: ignored, its number skipped."""
    registry.publish("names", tiny_bundle)
    registry.fs.makedirs(f"{registry.root}/names/versions/2", exist_ok=True)
    registry.fs.pipe_file(f"{registry.root}/names/versions/2/.claim", b"dead publisher")
    registry.fs.pipe_file(f"{registry.root}/names/versions/2/vocab.json", b"{}")
    ledger("crash", "publisher killed mid-upload: a version folder without its manifest",
           f"registry ({'folder' if registry.local else 'memory://'})")
    assert registry.versions("names") == [1] and registry.resolve("names", "latest") == 1
    assert registry.publish("names", tiny_bundle) == 3


def test_an_altered_bundle_in_the_registry_is_refused(registry, tiny_bundle, ledger):
    registry.publish("names", tiny_bundle)
    path = f"{registry.root}/names/versions/1/vocab.json"
    registry.fs.pipe_file(path, registry.fs.cat_file(path).replace(b'"a"', b'"q"', 1) + b" ")
    with pytest.raises(BundleError, match="altered") as caught:
        registry.fetch("names", 1)
    ledger("tampering", "a published version's vocab.json edited in the registry",
           f"registry ({'folder' if registry.local else 'memory://'})", error=caught.value)


def test_a_version_linked_to_a_folder_outside_the_registry_is_refused(tmp_path, tiny_bundle, ledger):
    registry = Registry(tmp_path / "registry")
    registry.publish("names", tiny_bundle)
    outside = tmp_path / "elsewhere"
    shutil.copytree(tiny_bundle, outside)  # a valid, self-consistent bundle: only where it lives is wrong
    (tmp_path / "registry" / "names" / "versions" / "2").symlink_to(outside, target_is_directory=True)
    assert registry.versions("names") == [1, 2]
    with pytest.raises(RegistryError, match="leads outside the registry") as caught:
        registry.load("names@2")
    ledger("tampering", "a registry version that is a symbolic link to a bundle outside the registry",
           "registry (folder)", error=caught.value)
    assert registry.fetch("names", 1)  # the real version still loads


def test_remote_fetch_uses_a_verified_cache(tmp_path, tiny_bundle):
    url = f"memory://reg-{uuid.uuid4().hex}"
    registry = Registry(url, cache_dir=tmp_path / "cache")
    registry.publish("names", tiny_bundle)
    first = registry.fetch("names", 1)
    assert first.is_relative_to(tmp_path / "cache")
    (first / "vocab.json").write_text("{}", encoding="utf-8")  # a damaged cache entry
    again = registry.fetch("names", 1)
    assert again == first and json.loads((again / "vocab.json").read_text()) != {}
    assert not list(first.parent.glob(".*tmp*"))


def _publish_in_process(args):
    root, bundle = args
    return Registry(root).publish("names", bundle)


def test_concurrent_publishers_never_share_a_version_number(tmp_path, tiny_bundle, ledger):
    root = tmp_path / "registry"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        numbers = pool.map(_publish_in_process, [(root, tiny_bundle)] * 8)
    ledger("concurrency", "8 publishes from 4 processes racing for version numbers", "registry (folder)",
           rows_double_applied=len(numbers) - len(set(numbers)))
    assert sorted(numbers) == list(range(1, 9))
    registry = Registry(root)
    assert registry.versions("names") == list(range(1, 9))
    assert not list((root / "names" / ".staging").iterdir())
    for version in registry.versions("names"):
        registry.fetch("names", version)  # each one complete and verified


def test_pin_model_replaces_an_alias_by_the_version_it_resolved_to():
    from strseq_tasks.serve.loading import pin_model

    assert pin_model("s3://bucket/models/names@production", 4) == "s3://bucket/models/names@4"
    assert pin_model("models/names@latest", 7) == "models/names@7"
    assert pin_model("/srv/bundles/names", None) == "/srv/bundles/names"  # a folder stays a folder


@pytest.mark.parametrize("text, expected", [
    ("models/names@production", ModelRef("models", "names", "production")),
    ("s3://bucket/reg/names@3", ModelRef("s3://bucket/reg", "names", "3")),
    ("/abs/reg/names@latest", ModelRef("/abs/reg", "names", "latest")),
    ("models/names", None),
    ("names@production", None),
    ("models/na me@production", None),
])
def test_parse_model_ref(text, expected):
    assert parse_model_ref(text) == expected


def test_manifest_is_the_commit_point_on_remote_registries(tmp_path, tiny_bundle):
    registry = Registry(f"memory://reg-{uuid.uuid4().hex}")
    registry.publish("names", tiny_bundle)
    order = []
    real = registry.fs.pipe_file
    registry.fs.pipe_file = lambda path, data, **kw: (order.append(path.rsplit("/", 1)[1]), real(path, data, **kw))
    registry.publish("names", tiny_bundle)
    assert order[-1] == MANIFEST


# --- aliases moved at once (a lock around each read-modify-write) ---------------------------


def _moves_at_once(registry: Registry, moves) -> None:
    barrier = threading.Barrier(len(moves))

    def run(move):
        barrier.wait()  # every thread reads the alias at the same moment
        move(Registry(registry.url, cache_dir=registry.cache_dir))

    threads = [threading.Thread(target=run, args=(m,)) for m in moves]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave inside a move (memory:// does no I/O to wait on)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)


def test_concurrent_alias_moves_all_land_with_full_history(registry, tiny_bundle, ledger):
    for _ in range(7):
        registry.publish("names", tiny_bundle)
    lost, rounds = 0, 10
    for _ in range(rounds):
        registry.set_alias("names", PRODUCTION, 1, "start")
        start = registry.alias("names", PRODUCTION).history
        _moves_at_once(registry, [lambda r, v=v: r.set_alias("names", PRODUCTION, v, f"to {v}") for v in range(2, 8)])
        state = registry.alias("names", PRODUCTION)
        moved = state.history[len(start):]
        lost += len(set(range(1, 8)) - {*moved, state.version})
        assert sorted([*moved, state.version]) == list(range(1, 8)), state  # each move once, none lost
        assert state.history[:len(start)] == start
    ledger("concurrency", f"6 threads moving one alias at once, {rounds} rounds",
           f"registry ({'folder' if registry.local else 'memory://'})", rows_lost=lost)


def test_concurrent_rollbacks_each_step_back_once(registry, tiny_bundle, ledger):
    for _ in range(7):
        registry.publish("names", tiny_bundle)
    for version in range(1, 8):
        registry.set_alias("names", PRODUCTION, version, f"to {version}")
    _moves_at_once(registry, [lambda r: r.rollback("names")] * 6)
    state = registry.alias("names", PRODUCTION)
    ledger("concurrency", "6 rollbacks of one alias at once",
           f"registry ({'folder' if registry.local else 'memory://'})", rows_lost=state.version - 1)
    assert state.version == 1 and state.history == ()


def test_a_move_waits_for_the_lock_and_names_it_when_held_too_long(tmp_path, tiny_bundle, monkeypatch, ledger):
    import strseq_tasks.serve.aliases as aliases

    registry = Registry(tmp_path / "registry")
    registry.publish("names", tiny_bundle)
    registry.publish("names", tiny_bundle)
    registry.set_alias("names", PRODUCTION, 1, "first")
    monkeypatch.setattr(aliases, "LOCK_TIMEOUT_S", 0.3)
    lock = tmp_path / "registry" / "names" / "aliases" / ".production.lock"
    with aliases.file_lock(lock):  # a process stuck in the middle of a move
        with pytest.raises(RegistryError, match="stayed locked") as caught:
            registry.set_alias("names", PRODUCTION, 2, "second")
    ledger("concurrency", "an alias move while another process holds the alias's lock (stuck)",
           "registry (folder)", error=caught.value)
    assert str(lock) in str(caught.value) and registry.resolve("names", PRODUCTION) == 1
    assert registry.set_alias("names", PRODUCTION, 2, "second").history == (1,)  # released: it moves


def test_alias_files_and_versions_are_readable_by_other_accounts_as_the_umask_allows(tmp_path, tiny_bundle):
    """A registry folder shared by several accounts: an alias file written 0600 (mkstemp's mode)
    left every other account unable to resolve names@production."""
    previous = os.umask(0o022)
    try:
        registry = Registry(tmp_path / "registry")
        version = registry.publish("names", tiny_bundle)
        registry.set_alias("names", PRODUCTION, version, "readable")
        alias = tmp_path / "registry" / "names" / "aliases" / f"{PRODUCTION}.json"
        assert alias.stat().st_mode & 0o777 == 0o644
        folder = Path(registry.fetch("names", version))
        assert folder.stat().st_mode & 0o777 == 0o755
        assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o644}
    finally:
        os.umask(previous)
