"""deploy/prefect.yaml: it parses, every entrypoint imports, every parameter set validates against
its flow's parameter model, and no database URL is written in it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from strseq_tasks.data.urls import UrlReferenceError, is_reference, resolve_url
from strseq_tasks.runner.deployments import (
    DeploymentFileError,
    check_parameters,
    demo_environment,
    load_deployments,
    placeholders,
)

ROOT = Path(__file__).resolve().parents[2]
PREFECT_FILE = ROOT / "deploy" / "prefect.yaml"
DEMO_ENV = demo_environment(Path("/srv/strseq-demo"))


def test_the_file_declares_a_nightly_retrain_and_a_cleaning_job_on_a_process_pool():
    document = yaml.safe_load(PREFECT_FILE.read_text(encoding="utf-8"))
    by_entry = {d["entrypoint"]: d for d in document["deployments"]}
    retrain = by_entry["strseq_tasks.flows.retrain:retrain"]
    clean = by_entry["strseq_tasks.flows.clean:clean"]
    assert retrain["schedules"][0]["cron"] == "0 2 * * *"
    assert clean["schedules"][0]["cron"] and clean["schedules"][0]["cron"] != retrain["schedules"][0]["cron"]
    for deployment in (retrain, clean):
        assert deployment["work_pool"]["name"] == "strseq-cpu"
        assert deployment["schedules"][0]["timezone"]
        assert "strseq" in deployment["tags"]
    assert set(placeholders(PREFECT_FILE)) <= set(DEMO_ENV)


def test_database_urls_are_references_never_written_in_the_file():
    for spec in load_deployments(PREFECT_FILE, DEMO_ENV):
        params = spec.parameters["params"]
        for key in ("db", "pairs"):
            if key in params:
                assert is_reference(params[key]), f"{spec.name}: {key} must be env:NAME or prefect-secret:NAME"
    assert "://" not in PREFECT_FILE.read_text(encoding="utf-8").split("deployments:", 1)[1].replace(
        "s3://bucket", "")


@pytest.mark.parametrize("spec", load_deployments(PREFECT_FILE, DEMO_ENV), ids=lambda s: s.name)
def test_every_entrypoint_imports_and_its_parameters_validate(spec):
    validated = check_parameters(spec)
    params = validated["params"]
    assert type(params).__name__ in ("RetrainParams", "CleanParams")
    assert spec.crons and all(tz for _, tz in spec.crons)


def test_an_unset_variable_is_named():
    env = {k: v for k, v in DEMO_ENV.items() if k != "STRSEQ_REGISTRY"}
    with pytest.raises(DeploymentFileError, match="STRSEQ_REGISTRY"):
        load_deployments(PREFECT_FILE, env)


def test_invalid_parameters_are_refused_with_the_deployment_named(tmp_path):
    broken = PREFECT_FILE.read_text(encoding="utf-8").replace("threshold: 0.9", "threshold: 1.7")
    (tmp_path / "prefect.yaml").write_text(broken, encoding="utf-8")
    clean = [s for s in load_deployments(tmp_path / "prefect.yaml", DEMO_ENV) if "clean" in s.entrypoint][0]
    with pytest.raises(DeploymentFileError, match=rf"{clean.name}: invalid parameters(.|\n)*threshold"):
        check_parameters(clean)


def test_a_file_without_deployments_or_with_bad_yaml_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("name: x\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("deployments: [\n", encoding="utf-8")
    for name in ("a.yaml", "b.yaml"):
        with pytest.raises(DeploymentFileError):
            load_deployments(tmp_path / name, DEMO_ENV)


def test_env_references_resolve_on_the_machine_that_runs_the_job(monkeypatch):
    monkeypatch.setenv("STRSEQ_TEST_URL", " sqlite:///x.db ")
    assert resolve_url("env:STRSEQ_TEST_URL") == "sqlite:///x.db"
    assert resolve_url("sqlite:///y.db") == "sqlite:///y.db"
    monkeypatch.delenv("STRSEQ_TEST_URL")
    with pytest.raises(UrlReferenceError, match="STRSEQ_TEST_URL is not set"):
        resolve_url("env:STRSEQ_TEST_URL")


def test_refused_parameters_never_show_a_password(capfd, ledger):
    """pydantic and Prefect quote the values they refuse: a URL filled in from the environment too."""
    from strseq_tasks.runner.deployments import DeploymentFileError, DeploymentSpec, check_parameters

    spec = DeploymentSpec("nightly-clean", "flows/clean.py:clean",
                          {"params": {"db": "postgresql+psycopg://etl:S3cret-pw@db/crm", "table": 3}}, [], [], None)
    with pytest.raises(DeploymentFileError, match="invalid parameters") as caught:
        check_parameters(spec)
    printed = capfd.readouterr()
    ledger("hostile input", "a deployment whose parameters are refused, with a password in its database URL",
           "deploy/prefect.yaml", error=caught.value)
    assert "S3cret-pw" not in str(caught.value) + printed.out + printed.err
