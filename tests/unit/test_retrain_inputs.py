"""A retrain's fingerprint (``jobs/retrain_inputs.py``) moves with everything that decides the
model it would train, and with nothing else: an unchanged retrain publishes nothing, a changed
one trains as before."""

from __future__ import annotations

import shutil

import pytest

from strseq_tasks.core.known import KnownValues
from strseq_tasks.jobs import retrain_inputs as ri
from strseq_tasks.jobs.retrain import RetrainParams

PAIRS = [("SMITH, John", "John Smith"), ("mary o'neil", "Mary O'Neil"), ("Ann Lee", "Ann Lee"),
         ("JONES,  BOB", "Bob Jones")]
BASE = {"start": "strseq-pretrained/1", "manifest_sha256": "a" * 64}


def params(**extra) -> RetrainParams:
    return RetrainParams(**{"pairs": "pairs.csv", "name": "names", **extra})


def fingerprint(p: RetrainParams | None = None, pairs=PAIRS, known=None, base=BASE) -> str:
    return ri.training_inputs(p or params(), pairs, known, base)["sha256"]


def test_what_decides_nothing_about_the_model_leaves_the_fingerprint_alone():
    same = fingerprint()
    elsewhere = params(pairs="postgresql+psycopg://etl@db/crm", pairs_table="fixes", input_column="dirty",
                       target_column="clean", registry="s3://models", name="other", min_pairs=4, promote=False,
                       force=True, gates={"min_exact_match": 0.9, "max_harm": 0.0, "max_regression": 0.0})
    assert fingerprint(elsewhere) == same
    assert fingerprint(pairs=list(reversed(PAIRS))) == same  # the same pairs read in another order


@pytest.mark.parametrize("change", [
    {"pairs": [*PAIRS, ("lee, ann", "Ann Lee")]},  # one pair added
    {"pairs": [*PAIRS[:-1], ("JONES,  BOB", "Robert Jones")]},  # one target corrected
    {"p": {"seed": 1}}, {"p": {"max_epochs": 39}}, {"p": {"max_minutes": 5.0}}, {"p": {"threads": 2}},
    {"p": {"precision": "fp32"}}, {"p": {"max_len": 64}}, {"p": {"model_sizes": {"emb_dim": 32}}},
    {"p": {"heldout_fraction": 0.2}},
    {"known": KnownValues(["John Smith", "Ann Lee"])},
    {"base": {**BASE, "manifest_sha256": "b" * 64}},  # another pretrained model
    {"base": {"start": "none"}},  # from random weights
])
def test_whatever_decides_the_model_changes_the_fingerprint(change):
    given = {**change, "p": params(**change.get("p", {}))}
    assert fingerprint(**given) != fingerprint()


def test_another_strseq_version_changes_the_fingerprint(monkeypatch):
    before = fingerprint()
    monkeypatch.setattr(ri, "__version__", "999.0")
    assert fingerprint() != before


def test_the_base_model_is_known_by_its_content_not_its_path(tmp_path):
    from strseq_tasks.learn.lm_bundle import default_lm_path
    from strseq_tasks.learn.transfer import default_pretrained_path

    shipped = ri.base_model("default")
    assert shipped["start"] == "strseq-pretrained/1" and len(shipped["manifest_sha256"]) == 64
    copy = shutil.copytree(default_pretrained_path(), tmp_path / "pretrained")
    assert ri.base_model(str(copy)) == shipped
    assert ri.base_model(None) == {"start": "none"}
    lm = ri.base_model(str(default_lm_path()))
    assert lm["start"] == "strseq-lm/1" and lm != shipped
    adapted = ri.adapted_base(params(adapt_on="column.csv"), ["a", "b"])
    assert adapted["adapted_from"] == lm  # --adapt-on adapts the shipped LM
    assert ri.adapted_base(params(adapt_on="column.csv"), ["a", "c"]) != adapted
    assert ri.adapted_base(params(adapt_on="column.csv", adapt_minutes=1.0), ["a", "b"]) != adapted
