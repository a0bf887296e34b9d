"""`strseq retrain` and `strseq models` as a user runs them (each retrain starts Prefect's
temporary local server in its own process, as it would on a laptop)."""

from __future__ import annotations

import json

import pytest
from fixtures.data import lowercase_pairs, write_pairs
from integration.cli_harness import read_csv_raw, run_strseq, write_csv  # tests/ is on sys.path

from strseq_tasks.serve.refs import PRODUCTION
from strseq_tasks.serve.registry import Registry

TINY = ["--epochs", "3", "--min-exact-match", "0", "--max-harm", "1"]


@pytest.fixture(scope="module")
def cli_registry(tmp_path_factory):
    """Two CLI retrains: version 1 (promoted) and version 2 (promoted: lenient gates)."""
    folder = tmp_path_factory.mktemp("cli_retrain")
    pairs = write_pairs(folder / "pairs.csv", lowercase_pairs())
    registry = folder / "registry"
    runs = [run_strseq("retrain", "--pairs", pairs, "--registry", registry, "--name", "lower", *TINY,
                       "--max-regression", "1", timeout=600) for _ in range(2)]
    for proc in runs:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return folder, registry, runs


def test_retrain_prints_what_it_published(cli_registry):
    _, registry, runs = cli_registry
    assert "published lower version 1" in runs[0].stdout and "PROMOTED to production" in runs[0].stdout
    assert "pass: no model in production yet" in runs[0].stdout
    assert "production's" in runs[1].stdout  # the second run was compared with version 1
    assert Registry(registry).resolve("lower", PRODUCTION) == 2


def test_models_list_show_promote_rollback(cli_registry):
    _, registry, _ = cli_registry
    listing = run_strseq("models", "list", "--registry", registry)
    assert listing.returncode == 0 and "lower: 2 version(s); candidate=2, production=2" in listing.stdout
    versions = run_strseq("models", "list", "--registry", registry, "--name", "lower")
    assert versions.stdout.splitlines()[1].split()[0] == "1" and "production" in versions.stdout.splitlines()[2]
    shown = run_strseq("models", "show", "--registry", registry, "--name", "lower", "--json")
    assert json.loads(shown.stdout)["version"] == 2
    back = run_strseq("models", "rollback", "--registry", registry, "--name", "lower")
    assert back.returncode == 0 and "back to version 1" in back.stdout
    assert Registry(registry).resolve("lower", PRODUCTION) == 1
    again = run_strseq("models", "promote", "--registry", registry, "--name", "lower", "--version", "2")
    assert again.returncode == 0 and Registry(registry).resolve("lower", PRODUCTION) == 2
    report = run_strseq("models", "show", "--registry", registry, "--name", "lower", "--version", "1")
    assert "Retraining `lower`" in report.stdout and "Promotion gates" in report.stdout
    assert "serves: int8 graphs" in report.stdout or "serves: fp32 graphs (int8 refused: " in report.stdout


def test_predict_from_the_registry_alias(cli_registry, tmp_path):
    _, registry, _ = cli_registry
    inputs = write_csv(tmp_path / "in.csv", ["input"], [["ANN LEE"], ["bob"]])
    proc = run_strseq("predict", "--model", f"{registry}/lower@production", "--input", inputs,
                      "--output", tmp_path / "out.csv")
    assert proc.returncode == 0, proc.stderr
    assert "is version" in proc.stderr
    assert len(read_csv_raw(tmp_path / "out.csv")[1]) == 2
    missing = run_strseq("predict", "--model", f"{registry}/lower@staging", "--input", inputs,
                         "--output", tmp_path / "x.csv")
    assert missing.returncode == 2 and "no alias 'staging'" in missing.stderr


def test_retrain_on_invalid_pairs_fails_and_publishes_nothing(cli_registry, tmp_path):
    _, registry, _ = cli_registry
    before = sorted(p.name for p in (registry / "lower" / "versions").iterdir())
    pairs = lowercase_pairs()
    bad = write_pairs(tmp_path / "bad.csv", pairs + [(pairs[3][0], "other")])
    proc = run_strseq("retrain", "--pairs", bad, "--registry", registry, "--name", "lower", *TINY, timeout=600)
    assert proc.returncode == 1
    assert "nothing was published" in proc.stderr and f"row {len(pairs) + 1}" in proc.stderr
    assert "Traceback" not in proc.stderr, "a user's mistake inside the flow printed Prefect's traceback"
    assert sorted(p.name for p in (registry / "lower" / "versions").iterdir()) == before


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--max-epochs: Input should be greater than or equal to 1"),
    (["--pairs-table", "t"], "only makes sense with a database URL"),
    (["--name", "../escape"], "invalid model name"),
])
def test_retrain_option_errors(tmp_path, args, message):
    pairs = write_pairs(tmp_path / "p.csv", lowercase_pairs()[:30])
    base = {"--pairs": str(pairs), "--registry": str(tmp_path / "r"), "--name": "lower"}
    for key, value in zip(args[::2], args[1::2]):
        base[key] = value
    proc = run_strseq("retrain", *[x for kv in base.items() for x in kv])
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "r").exists()

