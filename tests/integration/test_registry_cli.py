"""`strseq models` and `strseq predict` on a registry moved at once by several processes, and on
a registry someone tampered with: every move lands; every damaged file is named, never a traceback."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid

import pytest
from campaign import sampled  # tests/ is on sys.path

from integration.cli_harness import ONE_THREAD, run_strseq, write_csv  # tests/ is on sys.path
from strseq_tasks.serve.refs import PRODUCTION, RegistryError
from strseq_tasks.serve.registry import Registry


def _registry(root, bundle, versions: int) -> Registry:
    registry = Registry(root)
    for _ in range(versions):
        registry.publish("names", bundle)
    return registry


def _strseq_at_once(argvs: list[list[str]]) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, **ONE_THREAD, "PYTHONIOENCODING": "utf-8"}
    procs = [subprocess.Popen([sys.executable, "-m", "strseq_tasks.cli", *map(str, argv)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for argv in argvs]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in procs]


@pytest.mark.long  # ~15 s; scripts/reliability_report.py runs it (threads moving aliases: test_registry.py)
def test_promotes_from_several_processes_at_once_all_land_with_full_history(tmp_path, tiny_bundle, ledger):
    from campaign import SCALE  # tests/ is on sys.path: the campaign runs more rounds

    registry = _registry(tmp_path / "registry", tiny_bundle, 9)
    lost, rounds = 0, SCALE
    for _ in range(rounds):
        registry.set_alias("names", PRODUCTION, 1, "start")
        start = registry.alias("names", PRODUCTION).history
        procs = _strseq_at_once([["models", "promote", "--registry", registry.url, "--name", "names",
                                  "--version", v, "--reason", f"to {v}"] for v in range(2, 10)])
        assert [p.returncode for p in procs] == [0] * 8, [p.stderr[-500:] for p in procs]
        state = registry.alias("names", PRODUCTION)
        moved = [*state.history[len(start):], state.version]
        lost += len(set(range(1, 10)) - set(moved))
        assert sorted(moved) == list(range(1, 10)), state
    ledger("concurrency", f"8 `strseq models promote` processes moving one alias at once, {rounds} rounds",
           "registry (folder)", rows_lost=lost)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-1000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


DAMAGED_ALIASES = {
    "truncated": b'{"version": 2, "hist',
    "empty": b"",
    "not UTF-8": b'{"version": 2, "reason": "\xff\xfe"}',
    "version a path": b'{"version": "../../etc", "history": [1], "updated": "", "reason": ""}',
    "version as text": b'{"version": "2", "history": [1], "updated": "", "reason": ""}',
    "version zero": b'{"version": 0, "history": [1], "updated": "", "reason": ""}',
    "version negative": b'{"version": -1, "history": [1], "updated": "", "reason": ""}',
    "version a float": b'{"version": 2.0, "history": [1], "updated": "", "reason": ""}',
    "version true": b'{"version": true, "history": [1], "updated": "", "reason": ""}',
    "history not a list": b'{"version": 2, "history": "1", "updated": "", "reason": ""}',
    "history with a path": b'{"version": 2, "history": [1, "../x"], "updated": "", "reason": ""}',
    "reason a number": b'{"version": 2, "history": [1], "updated": "", "reason": 42}',
    "moves not a list": b'{"version": 2, "history": [1], "updated": "", "reason": "", "moves": {}}',
    "a move without its reason": b'{"version": 2, "history": [1], "updated": "", "reason": "", '
                                 b'"moves": [{"version": 1, "updated": ""}]}',
    "a move to a path": b'{"version": 2, "history": [1], "updated": "", "reason": "", '
                        b'"moves": [{"version": "../x", "updated": "", "reason": ""}]}',
    "a list": b"[2, 1]",
    "nested too deeply": b"[" * 100_000,
}


# through the CLI, a few shapes (each runs 8 commands); the library test below takes every shape
CLI_DAMAGED = ["truncated", "version a path", "nested too deeply"]


@pytest.mark.parametrize("case", sampled(CLI_DAMAGED, "damaged-alias", share=3))
def test_a_damaged_alias_file_is_named_by_every_command_and_promote_repair_replaces_it(
        tmp_path, tiny_bundle, case, ledger):
    registry = _registry(tmp_path / "registry", tiny_bundle, 2)
    registry.set_alias("names", PRODUCTION, 1, "first")
    registry.set_alias("names", PRODUCTION, 2, "second")
    path = tmp_path / "registry" / "names" / "aliases" / "production.json"
    path.write_bytes(DAMAGED_ALIASES[case])
    inputs = write_csv(tmp_path / "in.csv", ["input"], [["ANN LEE"]])
    reg = ["--registry", registry.url, "--name", "names"]
    commands = [["models", "list", "--registry", registry.url], ["models", "list", *reg], ["models", "show", *reg],
                ["models", "promote", *reg, "--model-version", "1"], ["models", "rollback", *reg],
                ["predict", "--model", f"{registry.url}/names@production", "--input", inputs,
                 "--out", tmp_path / "out.csv"]]
    errors = [_one_error_line(p) for p in _strseq_at_once(commands)]
    ledger("tampering", f"an alias file {case}: strseq models list/show/promote/rollback, predict",
           "registry (folder)", error=errors[2].removeprefix("error: "))
    for error in errors:
        assert str(path) in error and "damaged alias file" in error, error
    assert path.read_bytes() == DAMAGED_ALIASES[case]  # refused, not overwritten
    assert not (tmp_path / "out.csv").exists()
    repaired = run_strseq("models", "promote", *reg, "--model-version", "1", "--repair")
    assert repaired.returncode == 0, repaired.stderr
    state = registry.alias("names", PRODUCTION)
    assert state.version == 1 and state.history == () and "damaged" in state.reason
    kept = [p for p in path.parent.iterdir() if p.name.startswith(".production.json.damaged")]
    assert [p.read_bytes() for p in kept] == [DAMAGED_ALIASES[case]]  # what was there is kept aside
    assert run_strseq("models", "list", *reg).returncode == 0


def test_an_alias_pointing_at_a_missing_version_is_named(tmp_path, tiny_bundle, ledger):
    registry = _registry(tmp_path / "registry", tiny_bundle, 2)
    path = tmp_path / "registry" / "names" / "aliases" / "production.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 9, "history": [1], "updated": "", "reason": ""}))
    shown, predicted = _strseq_at_once([
        ["models", "show", "--registry", registry.url, "--name", "names"],
        ["predict", "--model", f"{registry.url}/names@production", "--input",
         write_csv(tmp_path / "in.csv", ["input"], [["x"]]), "--out", tmp_path / "out.csv"]])
    for proc in (shown, predicted):
        error = _one_error_line(proc)
        assert str(path) in error and "version 9" in error and "versions: 1, 2" in error, error
    ledger("tampering", "an alias pointing at a version the registry does not have", "registry (folder)",
           error=error.removeprefix("error: "))
    rollback = run_strseq("models", "rollback", "--registry", registry.url, "--name", "names")
    assert rollback.returncode == 0 and registry.resolve("names", PRODUCTION) == 1


STRAY_ENTRIES = ["²", "٣", "1e3", "-1", "007", "0", "3 ", "9" * 30]


def test_stray_version_folders_are_ignored(tmp_path, tiny_bundle, ledger):
    registry = _registry(tmp_path / "registry", tiny_bundle, 2)
    registry.set_alias("names", PRODUCTION, 2, "second")
    for entry in STRAY_ENTRIES:  # each a whole bundle (a manifest and all) under a name that is no version
        shutil.copytree(tiny_bundle, tmp_path / "registry" / "names" / "versions" / entry)
    inputs = write_csv(tmp_path / "in.csv", ["input"], [["ANN LEE"]])
    reg = ["--registry", registry.url, "--name", "names"]
    procs = _strseq_at_once([["models", "list", "--registry", registry.url], ["models", "list", *reg],
                             ["models", "show", *reg, "--model-version", "latest"],
                             ["predict", "--model", f"{registry.url}/names@latest", "--input", inputs,
                              "--out", tmp_path / "out.csv"]])
    for entry in STRAY_ENTRIES:
        ledger("tampering", f"a stray folder {entry[:12]!r} among a model's versions", "registry (folder)",
               error="; ".join(p.stderr.strip().splitlines()[-1] for p in procs if p.returncode))
    assert [p.returncode for p in procs] == [0] * 4, [p.stderr[-1500:] for p in procs]
    assert "names: 2 version(s); production=2" in procs[0].stdout
    assert [line.split()[0] for line in procs[1].stdout.splitlines()[1:]] == ["1", "2"]
    assert procs[2].stdout.startswith("names version 2")
    assert registry.versions("names") == [1, 2]
    assert registry.publish("names", tiny_bundle) == 3


SELECTORS = ["../../etc", "-1", "²", "1e3", "0", "1 ", "PRODUCTION", "9" * 30]


def test_version_selectors_given_by_users_are_checked(tmp_path, tiny_bundle, ledger):
    registry = _registry(tmp_path / "registry", tiny_bundle, 2)
    registry.set_alias("names", PRODUCTION, 1, "first")
    inputs = write_csv(tmp_path / "in.csv", ["input"], [["ANN LEE"]])
    reg = ["--registry", registry.url, "--name", "names"]
    argvs = [["models", "promote", *reg, "--model-version", s] for s in SELECTORS[:3]]
    for selector in SELECTORS:
        argvs += [["models", "show", *reg, "--model-version", selector],
                  ["predict", "--model", f"{registry.url}/names@{selector}", "--input", inputs,
                   "--out", tmp_path / "out.csv"]]
    procs = _strseq_at_once(argvs)
    promotes, procs = procs[:3], procs[3:]
    for selector, show, predict in zip(SELECTORS, procs[::2], procs[1::2]):
        error = _one_error_line(show)
        ledger("tampering", f"the version selector {selector[:12]!r}", "registry (folder)",
               error=error.removeprefix("error: "))
        assert _one_error_line(predict)  # '../../etc' is not a model reference at all: a missing folder
        if selector != "9" * 30:
            assert repr(selector) in error
    assert [_one_error_line(p) for p in promotes] == [_one_error_line(p) for p in procs[:6:2]]
    assert registry.alias("names", PRODUCTION).version == 1 and not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("file", ["publication.json", "manifest.json"])
def test_an_unreadable_record_of_a_version_is_named(tmp_path, tiny_bundle, file, ledger):
    registry = _registry(tmp_path / "registry", tiny_bundle, 2)
    path = tmp_path / "registry" / "names" / "versions" / "2" / file
    path.write_bytes(path.read_bytes()[:25])
    reg = ["--registry", registry.url, "--name", "names"]
    procs = _strseq_at_once([["models", "show", *reg, "--model-version", "2"], ["models", "list", *reg]])
    error = _one_error_line(procs[0])
    ledger("tampering", f"a version's {file} truncated", "registry (folder)", error=error.removeprefix("error: "))
    assert str(path) in error
    assert str(path) in _one_error_line(procs[1])
    if file == "publication.json":  # a damaged record does not stop the next publish
        assert registry.publish("names", tiny_bundle, publish_id="next") == 3


@pytest.mark.parametrize("backend", ["folder", "memory://"])
@pytest.mark.parametrize("case", DAMAGED_ALIASES)
def test_every_read_and_move_of_a_damaged_alias_is_refused(tmp_path, tiny_bundle, case, backend, ledger):
    url = tmp_path / "registry" if backend == "folder" else f"memory://reg-{uuid.uuid4().hex}"
    registry = _registry(url, tiny_bundle, 1)
    path = f"{registry.root}/names/aliases/candidate.json"
    registry.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    registry.fs.pipe_file(path, DAMAGED_ALIASES[case])
    for read in (lambda: registry.alias("names", "candidate"), lambda: registry.aliases("names"),
                 lambda: registry.resolve("names", "candidate"), lambda: registry.rollback("names", "candidate"),
                 lambda: registry.set_alias("names", "candidate", 1, "move")):
        with pytest.raises(RegistryError, match="damaged alias file") as caught:
            read()
        assert path in str(caught.value)
    ledger("tampering", f"Registry reads an alias file {case}", f"registry ({backend})", error=caught.value)
    assert registry.fs.cat_file(path) == DAMAGED_ALIASES[case]
    assert registry.set_alias("names", "candidate", 1, "repaired", repair=True).history == ()
    assert registry.alias("names", "candidate").version == 1


def test_promoting_a_version_that_failed_its_gates_needs_force(tmp_path, tiny_bundle):
    # as the retrain records it: a version published with a failed harm gate (a candidate only)
    registry = Registry(tmp_path / "registry")
    passed = {"decision": {"promote": True, "reasons": ["pass: exact match 0.950 >= minimum 0.500"]}}
    failed = {"decision": {"promote": False, "reasons": ["pass: exact match 0.950 >= minimum 0.500",
                                                         "FAIL: harm 0.040 > maximum 0.020"]}}
    registry.publish("names", tiny_bundle, passed)
    registry.publish("names", tiny_bundle, failed)
    registry.set_alias("names", PRODUCTION, 1, "start")
    reg = ["--registry", registry.url, "--name", "names"]
    # without --version, `latest` (version 2) is what would move: refused, and it says why
    error = _one_error_line(run_strseq("models", "promote", *reg))
    assert "version 2 failed its promotion gates" in error and "harm 0.040 > maximum 0.020" in error
    assert "--force" in error
    assert registry.alias("names", PRODUCTION).version == 1  # nothing moved
    forced = run_strseq("models", "promote", *reg, "--force", "--note", "reviewed the harmed rows")
    assert forced.returncode == 0, forced.stderr
    state = registry.alias("names", PRODUCTION)
    assert state.version == 2 and "forced past: harm 0.040 > maximum 0.020" in state.reason
    assert "reviewed the harmed rows" in state.reason
    # a version that passed (or one published without a retrain's decision) moves as before
    assert run_strseq("models", "promote", *reg, "--model-version", "1").returncode == 0
    # `models list` says which versions failed, and what each figure was measured on (these records
    # hold no held-out metrics: the training's validation split)
    listed = run_strseq("models", "list", *reg).stdout.splitlines()
    assert "measured on" in listed[0] and "gates" in listed[0]
    one, two = (line.split() for line in listed[1:3])
    assert one[0] == "1" and "validation" in one and "passed" in one and "production" in one
    assert two[0] == "2" and "FAILED" in two


def test_the_alias_keeps_every_move_a_rollback_included(tmp_path, tiny_bundle):
    registry = _registry(tmp_path / "registry", tiny_bundle, 3)
    reg = ["--registry", registry.url, "--name", "names"]
    for version in (1, 2, 3):
        moved = run_strseq("models", "promote", *reg, "--model-version", version, "--note", f"night {version}")
        assert moved.returncode == 0, moved.stderr
    assert run_strseq("models", "rollback", *reg).returncode == 0
    state = registry.alias("names", PRODUCTION)
    # rollback pops its stack (a second rollback goes to 1), and the moves keep version 3, which it left
    assert state.version == 2 and state.history == (1,)
    assert [(m.version, m.reason) for m in state.moves] == [
        (1, "night 1"), (2, "night 2"), (3, "night 3"), (2, "rollback (from version 3)")]
    shown = run_strseq("models", "history", *reg)
    assert shown.returncode == 0, shown.stderr
    assert [re.search(r"version +(\d+)", line)[1] for line in shown.stdout.splitlines()] == ["1", "2", "3", "2"]
    as_json = json.loads(run_strseq("models", "history", *reg, "--json").stdout)
    assert as_json["version"] == 2 and [m["version"] for m in as_json["moves"]] == [1, 2, 3, 2]
    # an alias file from before moves were kept still reads, and says its moves were not recorded
    path = tmp_path / "registry" / "names" / "aliases" / "production.json"
    old = json.loads(path.read_text())
    del old["moves"]
    path.write_text(json.dumps(old))
    assert "not recorded" in run_strseq("models", "history", *reg).stdout
    assert "no alias 'candidate'" in _one_error_line(run_strseq("models", "history", *reg, "--alias", "candidate"))
