"""What a Prefect user sees of strseq's runs, read back through Prefect's API as the UI reads it:
the retrain's steps as task runs, its artifacts (report, metrics table, link to the registry
version, training plot), strseq's own log lines in the run's logs, the cleaning artifacts keyed
per column, and a promotion that triggers the cleaning deployment (the harness's server runs
Prefect's event triggers and actions)."""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa
from fixtures.data import TINY_SIZES, lowercase_pairs, write_pairs  # tests/ is on sys.path
from prefect import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.client.schemas.sorting import LogSort
from typer.testing import CliRunner

from strseq_tasks.cli import app
from strseq_tasks.flows.clean import clean
from strseq_tasks.flows.retrain import retrain
from strseq_tasks.jobs.clean_params import CleanParams
from strseq_tasks.jobs.retrain import RetrainParams
from strseq_tasks.runner.deployments import demo_environment, load_deployments, runner_deployments

LENIENT = {"min_exact_match": 0.0, "max_harm": 1.0}


def task_runs(flow_run_id) -> list:
    from prefect.client.schemas.filters import FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


def artifacts_of(flow_run_id) -> dict:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    return {a.key: a for a in found}


def logs_of(flow_run_id, timeout: float = 30) -> list:
    """The run's logs once they have reached the API (they are sent in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])),
                                    sort=LogSort.TIMESTAMP_ASC)
        if any("Finished in state" in log.message for log in logs if log.task_run_id is None) or \
                time.monotonic() > deadline:
            return logs
        time.sleep(1)


@pytest.fixture(scope="module")
def promoted(tmp_path_factory):
    """A retrain of `names` that publishes and promotes version 1: (its final state, registry)."""
    folder = tmp_path_factory.mktemp("ui")
    pairs = write_pairs(folder / "pairs.csv", lowercase_pairs())
    params = RetrainParams(pairs=str(pairs), registry=str(folder / "models"), name="names", max_epochs=3,
                           model_sizes=TINY_SIZES, gates=LENIENT, precision="fp32")
    state = retrain(params, return_state=True)
    assert state.is_completed() and state.result()["promoted"]
    return state, folder / "models"


def test_the_retrains_split_gates_and_promotion_are_task_runs(promoted):
    runs = task_runs(promoted[0].state_details.flow_run_id)
    names = {re.sub(r"-[0-9a-f]{3}$", "", r.name) for r in runs}  # Prefect adds a short suffix per run
    assert {"load-pairs", "validate-pairs", "split-heldout", "train", "evaluate-new-model", "gates", "publish",
            "promote"} <= names
    assert all(r.state.is_completed() for r in runs)


def test_a_retrain_leaves_a_table_a_link_and_its_training_plot(promoted):
    state, registry = promoted
    found = artifacts_of(state.state_details.flow_run_id)
    assert {k: a.type for k, a in found.items()} == {
        "names-validation": "markdown", "names-retrain": "markdown", "names-metrics": "table",
        "names-version": "markdown", "names-training-plot": "image"}  # Prefect stores a link artifact as markdown
    assert "exact match" in found["names-metrics"].data and "new model" in found["names-metrics"].data
    link = found["names-version"].data
    assert link == f"[names version 1 (promoted to production)](file://{registry}/names/versions/1)"
    assert found["names-training-plot"].data.startswith("data:image/png;base64,iVBORw0KGgo")  # a PNG


def test_strseqs_own_log_lines_reach_the_runs_logs(promoted):
    logs = logs_of(promoted[0].state_details.flow_run_id)
    parity = [log for log in logs if log.name == "strseq" and "ONNX parity with PyTorch" in log.message]
    assert parity and parity[0].task_run_id is not None  # under its task, the train step
    assert len([log for log in logs if "ONNX parity" in log.message]) == 1  # once, not once per handler


def test_a_cleaning_run_keys_its_artifacts_by_column_and_its_warnings_reach_the_run(tmp_path, lower_bundle):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = sa.create_engine(url)
    people = sa.Table("People", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                      sa.Column("Full Name", sa.Text))
    people.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(people.insert(), [{"id": i, "Full Name": n} for i, n in enumerate(["ANN LEE", "BOB RAY"], 1)])
    engine.dispose()
    params = CleanParams(db=url, table="People", key="id", column="Full Name", model=str(lower_bundle),
                         create_output_column=True, threshold=1.0, ask_in_ui=1, ask_timeout=1)
    state = clean(params, return_state=True)  # threshold 1.0: every change is a question; nobody answers
    run_id = state.state_details.flow_run_id
    found = artifacts_of(run_id)
    assert set(found) == {"clean-people-full-name-validation", "clean-people-full-name",
                          "clean-people-full-name-review", "clean-people-full-name-progress"}
    progress = found["clean-people-full-name-progress"]
    assert progress.type == "progress" and float(progress.data) == 100.0  # 2 of the 2 rows validated
    assert found["clean-people-full-name-review"].type == "table" and "ANN LEE" in found[
        "clean-people-full-name-review"].data
    nobody = [log for log in logs_of(run_id) if log.name == "strseq.review" and "nobody answered" in log.message]
    assert nobody and nobody[0].level == 30  # a WARNING of strseq's, in the flow run's logs


def test_a_promotion_triggers_the_cleaning_deployment(tmp_path, monkeypatch):
    """The packaged file's cleaning deployment, registered as `strseq serve` registers it: the
    promote task's event makes Prefect's automation schedule a run of it."""
    for name, value in demo_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    [spec] = [s for s in load_deployments() if s.name == "clean-customers-name"]
    [deployment] = runner_deployments([spec])
    deployment_id = deployment.apply()
    with get_client(sync_client=True) as client:
        stored = client.read_deployment(deployment_id)
        assert stored.global_concurrency_limit.limit == 1
        assert stored.concurrency_options.collision_strategy.value == "ENQUEUE"
        automations = client.read_resource_related_automations(f"prefect.deployment.{deployment_id}")
    assert [a.trigger.expect for a in automations] == [{"strseq.model.promoted"}]
    time.sleep(2)  # the triggers service loads new automations on its own schedule
    pairs = write_pairs(tmp_path / "pairs.csv", lowercase_pairs())
    retrain(RetrainParams(pairs=str(pairs), registry=str(tmp_path / "models"), name="names", max_epochs=1,
                          model_sizes=TINY_SIZES, gates=LENIENT))
    deadline = time.monotonic() + 60
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(
                any_=[deployment_id])))
        if runs or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert len(runs) == 1, "the promotion did not trigger the cleaning deployment"
    assert runs[0].parameters["params"]["model"].endswith("/names@production")
    # a person's promotion is news too: `strseq models promote` tells the server the environment names
    done = CliRunner().invoke(app, ["models", "promote", "--registry", str(tmp_path / "models"), "--name", "names",
                                    "--model-version", "1", "--note", "checked by hand"])
    assert done.exit_code == 0, done.output
    deadline = time.monotonic() + 60
    while len(runs) < 2 and time.monotonic() < deadline:
        time.sleep(1)
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(
                any_=[deployment_id])))
    assert len(runs) == 2, "strseq models promote did not trigger the cleaning deployment"
