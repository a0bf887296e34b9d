"""The deployments file (flows/prefect.yaml, shipped in the package; deploy/prefect.yaml links to
it): it parses, every entrypoint imports, every parameter set validates against its flow's
parameter model, no database URL is written in it, and each key reaches Prefect's own objects."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

from strseq_tasks.data.urls import UrlReferenceError, is_reference, resolve_url
from strseq_tasks.runner.deployments import (
    PREFECT_FILE,
    DeploymentFileError,
    DeploymentSpec,
    check_parameters,
    demo_environment,
    load_deployments,
    placeholders,
)

ROOT = Path(__file__).resolve().parents[2]
DEMO_ENV = demo_environment(Path("/srv/strseq-demo"))


@pytest.fixture
def demo_env(monkeypatch):
    for name, value in DEMO_ENV.items():
        monkeypatch.setenv(name, value)  # {{ $VAR }} is filled from the environment, as prefect deploy fills it


def test_the_checkouts_deploy_file_is_the_packaged_one():
    assert PREFECT_FILE.is_relative_to(ROOT / "strseq_tasks") or PREFECT_FILE.is_relative_to(ROOT / "flows")
    assert (ROOT / "deploy" / "prefect.yaml").resolve() == PREFECT_FILE.resolve()
    assert "flows/prefect.yaml" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")  # package data


def test_a_nightly_retrain_and_a_cleaning_job_triggered_by_a_promotion():
    from strseq_tasks.runner.events import PROMOTED

    document = yaml.safe_load(PREFECT_FILE.read_text(encoding="utf-8"))
    by_entry = {d["entrypoint"]: d for d in document["deployments"]}
    retrain = by_entry["strseq_tasks.flows.retrain:retrain"]
    clean = by_entry["strseq_tasks.flows.clean:clean"]
    assert retrain["schedules"][0]["cron"] == "0 2 * * *"
    [trigger] = clean["triggers"]
    model = retrain["parameters"]["params"]["name"]
    assert trigger["expect"] == [PROMOTED] and trigger["match"]["prefect.resource.id"] == f"strseq.model.{model}"
    assert clean["parameters"]["params"]["model"].endswith(f"/{model}@production")
    assert clean["concurrency_limit"]["limit"] == 1 and retrain["concurrency_limit"] == 1
    for deployment in (retrain, clean):
        assert deployment["work_pool"]["name"] == "strseq-cpu"
        assert deployment["schedules"][0]["timezone"]
        assert "strseq" in deployment["tags"]
    assert set(placeholders(PREFECT_FILE)) <= set(DEMO_ENV)


def test_database_urls_are_references_never_written_in_the_file(demo_env):
    for spec in load_deployments(PREFECT_FILE):
        params = spec.parameters["params"]
        for key in ("db", "pairs"):
            if key in params:
                assert is_reference(params[key]), f"{spec.name}: {key} must be env:NAME or prefect-secret:NAME"
    assert "://" not in PREFECT_FILE.read_text(encoding="utf-8").split("deployments:", 1)[1].replace(
        "s3://bucket", "")


@pytest.mark.parametrize("name", ["nightly-retrain-names", "clean-customers-name"])
def test_every_entrypoint_imports_and_its_parameters_validate(name, demo_env):
    [spec] = [s for s in load_deployments(PREFECT_FILE) if s.name == name]
    validated = check_parameters(spec)
    assert type(validated["params"]).__name__ in ("RetrainParams", "CleanParams")
    assert spec.schedules() and all(s.timezone for s in spec.schedules())


def test_interval_schedules_inactive_schedules_triggers_and_limits_reach_prefects_objects(tmp_path):
    """What `strseq serve` once dropped in silence: each key becomes Prefect's own object."""
    (tmp_path / "prefect.yaml").write_text(yaml.safe_dump({"deployments": [{
        "name": "every-ten-minutes", "entrypoint": "strseq_tasks.flows.clean:clean", "work_pool": {"name": "x"},
        "schedules": [{"interval": 600, "timezone": "Europe/Berlin"}, {"cron": "0 1 * * *", "active": False}],
        "concurrency_limit": {"limit": 2, "collision_strategy": "CANCEL_NEW"},
        "triggers": [{"type": "event", "expect": ["strseq.model.promoted"], "match": {"prefect.resource.id": "x"}}],
    }]}), encoding="utf-8")
    [spec] = load_deployments(tmp_path / "prefect.yaml")
    every, nightly = spec.schedules()
    assert every.interval == datetime.timedelta(minutes=10) and every.active and every.timezone == "Europe/Berlin"
    assert nightly.cron == "0 1 * * *" and nightly.active is False
    limit = spec.concurrency_limit()
    assert limit.limit == 2 and limit.collision_strategy.value == "CANCEL_NEW"
    assert spec.triggers()[0].expect == {"strseq.model.promoted"}
    assert spec.when() == ("every 0:10:00 (Europe/Berlin); 0 1 * * * (UTC) inactive; on strseq.model.promoted; "
                           "at most 2 run(s) at a time")


@pytest.mark.parametrize("entry, message", [
    ({"schedule_cron": "0 1 * * *"}, "unknown key.*schedule_cron"),
    ({"schedules": [{"cron": "0 1 * * *", "every": 3}]}, "unknown schedule key.*every"),
    ({"schedules": [{"cron": "0 1 * * *", "interval": 60}]}, "bad schedule"),
    ({"triggers": [{"type": "event", "expect": "x", "posture": "Sideways"}]}, "bad trigger 1"),
], ids=["unknown key", "unknown schedule key", "two schedule kinds", "bad trigger"])
def test_what_serve_cannot_honour_is_refused_by_name(tmp_path, entry, message):
    (tmp_path / "prefect.yaml").write_text(yaml.safe_dump({"deployments": [
        {"name": "d", "entrypoint": "strseq_tasks.flows.clean:clean", **entry}]}), encoding="utf-8")
    with pytest.raises(DeploymentFileError, match=message):
        spec, = load_deployments(tmp_path / "prefect.yaml")
        spec.schedules(), spec.triggers()


def test_an_unset_variable_is_named(demo_env, monkeypatch):
    monkeypatch.delenv("STRSEQ_REGISTRY")
    with pytest.raises(DeploymentFileError, match="STRSEQ_REGISTRY"):
        load_deployments(PREFECT_FILE)


def test_invalid_parameters_are_refused_with_the_deployment_named(tmp_path, demo_env):
    broken = PREFECT_FILE.read_text(encoding="utf-8").replace("threshold: 0.9", "threshold: 1.7")
    (tmp_path / "prefect.yaml").write_text(broken, encoding="utf-8")
    clean = [s for s in load_deployments(tmp_path / "prefect.yaml") if "clean" in s.entrypoint][0]
    with pytest.raises(DeploymentFileError, match=rf"{clean.name}: invalid parameters(.|\n)*threshold"):
        check_parameters(clean)


def test_a_file_without_deployments_or_with_bad_yaml_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("name: x\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("deployments: [\n", encoding="utf-8")
    for name in ("a.yaml", "b.yaml"):
        with pytest.raises(DeploymentFileError):
            load_deployments(tmp_path / name)


def test_env_references_resolve_on_the_machine_that_runs_the_job(monkeypatch):
    monkeypatch.setenv("STRSEQ_TEST_URL", " sqlite:///x.db ")
    assert resolve_url("env:STRSEQ_TEST_URL") == "sqlite:///x.db"
    assert resolve_url("sqlite:///y.db") == "sqlite:///y.db"
    monkeypatch.delenv("STRSEQ_TEST_URL")
    with pytest.raises(UrlReferenceError, match="STRSEQ_TEST_URL is not set"):
        resolve_url("env:STRSEQ_TEST_URL")


def test_refused_parameters_never_show_a_password(capfd, ledger):
    """pydantic and Prefect quote the values they refuse: a URL filled in from the environment too."""
    spec = DeploymentSpec({"name": "nightly-clean", "entrypoint": "flows/clean.py:clean",
                           "parameters": {"params": {"db": "postgresql+psycopg://etl:S3cret-pw@db/crm", "table": 3}}})
    with pytest.raises(DeploymentFileError, match="invalid parameters") as caught:
        check_parameters(spec)
    printed = capfd.readouterr()
    ledger("hostile input", "a deployment whose parameters are refused, with a password in its database URL",
           "deploy/prefect.yaml", error=caught.value)
    assert "S3cret-pw" not in str(caught.value) + printed.out + printed.err
