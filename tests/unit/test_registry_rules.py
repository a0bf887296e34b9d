"""The registry's pure rules on a few rows: what a prune keeps, the gates a version records, what a
label may be."""

from __future__ import annotations

import pytest

from strseq_tasks.jobs.retrain import Gates
from strseq_tasks.serve.aliases import Alias
from strseq_tasks.serve.gates import decide, failed_gates, recorded_gates
from strseq_tasks.serve.labels import LabelError, Labels, check_tags, labels_bytes, parse_labels, parse_tag
from strseq_tasks.serve.refs import RegistryError
from strseq_tasks.serve.retention import prune_plan


def _alias(version: int, *history: int) -> Alias:
    return Alias(version, history, "", "")


def test_prune_keeps_the_newest_what_aliases_point_to_and_what_they_would_roll_back_to():
    plan = prune_plan([1, 2, 3, 4, 5, 6], {"production": _alias(3, 1, 2), "candidate": _alias(6)}, keep=2)
    assert {v.version: v.why for v in plan if v.keep} == {
        6: ("one of the newest 2", "candidate points to it"), 5: ("one of the newest 2",),
        3: ("production points to it",), 2: ("production would roll back to it",)}
    assert [v.version for v in plan if not v.keep] == [4, 1]  # 1: a second rollback's target, not kept
    assert [v.version for v in plan] == [6, 5, 4, 3, 2, 1]  # newest first


def test_prune_ignores_an_alias_at_a_version_the_registry_lacks_and_keeps_all_when_keep_is_large():
    assert all(v.keep for v in prune_plan([1, 2], {}, keep=5))
    plan = prune_plan([4, 5, 6], {"production": _alias(9, 2)}, keep=1)
    assert [v.version for v in plan if v.keep] == [6]


@pytest.mark.parametrize("keep", [0, -1])
def test_prune_keeps_at_least_one_version(keep):
    with pytest.raises(RegistryError, match="keep at least 1"):
        prune_plan([1, 2], {}, keep)


def test_the_decision_records_each_gate_and_promote_reads_it_back():
    decision = decide({"exact_match": 0.9, "harm": 0.04, "clean_rows": 50}, {"exact_match": 0.95},
                      Gates(min_exact_match=0.5, max_harm=0.02, max_regression=0.01))
    record = {"decision": decision.record()}
    gates = {g.name: g for g in recorded_gates(record)}
    assert set(gates) == {"min_exact_match", "max_harm", "max_regression"} and not decision.promote
    assert gates["max_harm"].measured == 0.04 and gates["max_harm"].threshold == 0.02 and not gates["max_harm"].passed
    assert gates["max_regression"].threshold == pytest.approx(0.94) and not gates["max_regression"].passed
    assert gates["min_exact_match"].passed
    assert [g.name for g in failed_gates(record)] == ["max_harm", "max_regression"]
    assert "2 of 50 clean held-out values changed" in gates["max_harm"].detail
    assert decision.reasons[1] == "FAIL: " + gates["max_harm"].detail  # the sentences the report shows


def test_gates_of_an_older_record_are_read_from_its_sentences():
    old = {"decision": {"promote": False, "reasons": ["pass: exact match 0.950 >= minimum 0.500",
                                                     "FAIL: harm 0.040 > maximum 0.020",
                                                     "pass: no model in production yet"]}}
    assert [(g.name, g.passed) for g in recorded_gates(old)] == [
        ("min_exact_match", True), ("max_harm", False), ("max_regression", True)]
    assert [g.detail for g in failed_gates(old)] == ["harm 0.040 > maximum 0.020"]
    assert recorded_gates({}) == [] and recorded_gates({"decision": "odd"}) == []
    # a gate whose "passed" is not exactly true counts as failed: a damaged record never lets a version through
    assert failed_gates({"decision": {"gates": [{"name": "max_harm", "passed": "yes"}]}})


@pytest.mark.parametrize("text, message", [
    ("owner", "not KEY=VALUE"), ("1st=x", "invalid tag key"), ("a b=x", "invalid tag key"),
    ("k" * 65 + "=x", "invalid tag key"), ("owner=", "has no value"), ("owner=  ", "has no value"),
    ("owner=" + "x" * 257, "at most 256"), ("owner=a\tb", r"U\+0009"), ("owner=a\u200bb", "ZERO WIDTH SPACE"),
])
def test_bad_tags_are_refused_with_what_is_wrong(text, message):
    with pytest.raises(LabelError, match=message):
        parse_tag(text)


def test_labels_edit_round_trip_and_mask_passwords():
    labels = Labels().edited({"owner": "data", "db": "postgresql://etl:SECRET@db/crm"}, description="first\ncut")
    assert labels.tags["db"] == "postgresql://etl:***@db/crm" and labels.description == "first\ncut"
    edited = labels.edited({"owner": "ml"}, remove=["db"], updated="now")
    assert edited == Labels("first\ncut", {"owner": "ml"}, "now")
    assert parse_labels(labels_bytes(edited)) == edited
    assert labels.edited(description="").description == ""  # "" removes it
    with pytest.raises(LabelError, match="no tag 'ticket' to remove"):
        edited.edited(remove=["ticket"])
    with pytest.raises(LabelError, match="at most 50"):
        check_tags({f"k{i}": "v" for i in range(51)})
    for damaged in (b"", b"[1]", b'{"tags": {"1x": "y"}}', b'{"tags": [], "description": ""}'):
        with pytest.raises(ValueError):
            parse_labels(damaged)
