"""A nightly retrain leaves its pairs' validation in the GX project folder: a stored result and a
Data Docs page per night, so two nights are a history a GX user browses (issue 23)."""

from __future__ import annotations

import json

from fixtures.data import TINY_SIZES, lowercase_pairs, write_pairs  # tests/ is on sys.path

from strseq_tasks.flows.retrain import retrain
from strseq_tasks.jobs.retrain import RetrainParams


def test_two_nightly_retrains_leave_two_validation_results_and_their_data_docs(tmp_path, monkeypatch):
    monkeypatch.setenv("STRSEQ_GX_DIR", str(tmp_path / "gx"))  # what the deployment sets ($STRSEQ_HOME/gx)
    pairs = write_pairs(tmp_path / "pairs.csv", lowercase_pairs())
    params = RetrainParams(pairs=str(pairs), registry=str(tmp_path / "models"), name="lower", max_epochs=1,
                           model_sizes=TINY_SIZES, gates={"min_exact_match": 0.0, "max_harm": 1.0}, precision="fp32")
    first, second = retrain(params), retrain(params)  # the second night: same pairs, nothing new to publish
    assert first["published"] and not second["published"]
    stored = sorted((tmp_path / "gx" / "uncommitted" / "validations" / "string_pairs" / "lower").rglob("*.json"))
    assert len(stored) == 2 and all(json.loads(p.read_text())["success"] for p in stored)
    site = tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site"
    index = (site / "index.html").read_text()
    pages = sorted((site / "validations" / "string_pairs" / "lower").rglob("*.html"))
    assert len(pages) == 2 and all(str(p.relative_to(site)) in index for p in pages)
