"""The int8 gate and the choice of graphs, without any model."""

from __future__ import annotations

import pytest

from strseq_tasks.learn.int8 import judge_int8
from strseq_tasks.serve.bundle import BundleError
from strseq_tasks.serve.runtime import resolve_precision

TARGETS = [f"value {i}" for i in range(1000)]


def test_int8_that_changes_nothing_is_accepted():
    verdict = judge_int8(TARGETS, TARGETS, TARGETS)
    assert verdict.accepted and verdict.reason is None
    assert (verdict.rows, verdict.changed, verdict.exact_fp32, verdict.exact_int8) == (1000, 0, 1.0, 1.0)


def test_int8_is_refused_when_it_changes_more_than_the_allowed_share():
    int8 = list(TARGETS)
    for i in range(4):  # 0.4%: allowed at 0.5%
        int8[i] = "other"
    fp32 = [t if i >= 2 else "wrong" for i, t in enumerate(TARGETS)]  # int8 and fp32 both wrong on 2 rows
    assert judge_int8(TARGETS, fp32, int8, max_changed=0.005, max_exact_drop=0.01).accepted
    int8[4:7] = ["other"] * 3  # 7 changed of 1000
    verdict = judge_int8(TARGETS, fp32, int8, max_changed=0.005, max_exact_drop=0.01)
    assert not verdict.accepted
    assert "changed 7 of 1000 outputs (0.70%)" in verdict.reason and "0.50%" in verdict.reason
    assert verdict.to_dict()["accepted"] is False and verdict.to_dict()["changed_share"] == 0.007


def test_int8_is_refused_when_it_loses_exact_match():
    int8 = ["wrong"] * 3 + TARGETS[3:]  # 3 changed (0.3%, allowed) but all three were right in fp32
    verdict = judge_int8(TARGETS, TARGETS, int8, max_changed=0.005, max_exact_drop=0.002)
    assert not verdict.accepted and "0.30 points below" in verdict.reason
    # the same changes where fp32 was wrong too cost nothing
    assert judge_int8(TARGETS, ["x"] * 3 + TARGETS[3:], int8, 0.005, 0.002).accepted


def test_no_rows_is_a_refusal_not_a_pass():
    verdict = judge_int8([], [], [])
    assert not verdict.accepted and "no rows" in verdict.reason


def test_outputs_of_other_lengths_are_an_error():
    with pytest.raises(ValueError, match="same length"):
        judge_int8(TARGETS, TARGETS, TARGETS[:-1])


def test_precision_auto_follows_the_bundle():
    with_int8 = {"precision": {"default": "int8", "int8": {"files": []}}}
    refused = {"precision": {"default": "fp32", "int8": None, "int8_refused": {"reason": "int8 changed 9 of 10"}}}
    assert resolve_precision(with_int8, "auto") == "int8" and resolve_precision(with_int8, None) == "int8"
    assert resolve_precision(with_int8, "fp32") == "fp32"
    assert resolve_precision(refused, "auto") == "fp32"
    assert resolve_precision({}, "auto") == "fp32"  # a bundle from before int8 existed
    with pytest.raises(BundleError, match="refused at training \\(int8 changed 9 of 10\\)"):
        resolve_precision(refused, "int8")
    with pytest.raises(BundleError, match="no int8 graphs"):
        resolve_precision({}, "int8")
    with pytest.raises(ValueError, match="auto, fp32 or int8"):
        resolve_precision(with_int8, "fp16")
