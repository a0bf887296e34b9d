"""What the retraining flow leaves in the registry besides the model: the version's tags and
description, its lineage (the flow run that published it), and each gate as a record."""

from __future__ import annotations

import uuid

from fixtures.data import TINY_SIZES, lowercase_pairs, write_pairs  # tests/ is on sys.path
from integration.cli_harness import run_strseq
from prefect.client.orchestration import get_client

from strseq_tasks.flows.retrain import retrain
from strseq_tasks.jobs.retrain import RetrainParams
from strseq_tasks.serve.gates import recorded_gates
from strseq_tasks.serve.registry import Registry

SECRET = "pw-not-for-records"


def test_a_retrain_publishes_its_labels_lineage_and_gates(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.csv", lowercase_pairs())
    params = RetrainParams(pairs=str(pairs), registry=str(tmp_path / "registry"), name="lower", max_epochs=4,
                           precision="fp32", model_sizes=TINY_SIZES, gates={"min_exact_match": 0.0, "max_harm": 1.0},
                           tags={"owner": "data-team", "source": f"postgresql://etl:{SECRET}@db/crm"},
                           description="nightly retrain of the lower-casing model")
    result = retrain(params)
    registry = Registry(tmp_path / "registry")
    labels = registry.labels("lower", result["version"])
    assert labels.tags == {"owner": "data-team", "source": "postgresql://etl:***@db/crm"}
    assert labels.description == "nightly retrain of the lower-casing model"
    record = registry.publication("lower", result["version"])
    lineage = record["lineage"]
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(uuid.UUID(lineage["flow_run"]["id"]))
    assert run.name == lineage["flow_run"]["name"] and lineage["flow_run"]["flow"] == "strseq-retrain"
    assert lineage["flow_run"]["url"].endswith(f"/runs/flow-run/{run.id}")  # where Prefect's UI shows it
    assert lineage["data"]["source"] == str(pairs) and lineage["data"]["fingerprint"]
    # the tiny sizes differ from the shipped pretrained model's: training started from random weights
    assert lineage["base_model"] is None and registry.manifest("lower", result["version"])["pretrained"] is None
    assert "strseq-retrain-" not in str(record)  # not the scratch folder the bundle was built in
    gates = {g.name: g for g in recorded_gates(record)}
    assert set(gates) == {"min_exact_match", "max_harm", "max_regression"}
    assert gates["min_exact_match"].measured == result["metrics"]["exact_match"]
    assert gates["min_exact_match"].threshold == 0.0 and all(g.passed for g in gates.values())
    assert [("pass: " if g.passed else "FAIL: ") + g.detail for g in gates.values()] == result["reasons"]
    files = "".join(p.read_text(errors="replace") for p in (tmp_path / "registry").rglob("*.json"))
    assert SECRET not in files


def test_retrain_refuses_a_bad_tag_before_any_work(tmp_path):
    pairs = write_pairs(tmp_path / "pairs.csv", lowercase_pairs())
    for tag, message in (("owner", "not KEY=VALUE"), ("1x=y", "invalid tag key")):
        refused = run_strseq("retrain", "--pairs", pairs, "--registry", tmp_path / "registry", "--name", "lower",
                             "--tag", tag)
        assert refused.returncode == 2 and refused.stderr.startswith("error: "), refused.stderr
        assert message in refused.stderr and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert not (tmp_path / "registry").exists()
