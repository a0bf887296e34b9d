"""Metrics on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strseq_tasks.core.metrics import (
    accuracy_at_coverage,
    accuracy_at_threshold,
    character_error_rate,
    coverage_at_precision,
    exact_match,
    expected_calibration_error,
    harm,
    reliability_table,
    summarize,
)


def test_exact_match():
    assert exact_match(["a", "b", "c", "d"], ["a", "x", "c", "D"]) == 0.5
    assert exact_match(["é"], ["e\u0301"]) == 0.0  # metrics compare strings as given
    assert math.isnan(exact_match([], []))
    with pytest.raises(ValueError):
        exact_match(["a"], ["a", "b"])


def test_character_error_rate_is_total_edits_over_total_target_length():
    # "abc" vs "abd": 1 substitution; "ab" vs "abcd": 2 insertions; "" vs "xy": 2 insertions
    cer = character_error_rate(["abd", "ab", ""], ["abc", "abcd", "xy"])
    assert cer == pytest.approx(5 / 9)
    assert character_error_rate(["John Smith"], ["John Smith"]) == 0.0
    # not a mean of per-row rates: a long correct row outweighs a short wrong one
    assert character_error_rate(["x", "abcdefghi"], ["y", "abcdefghi"]) == pytest.approx(1 / 10)
    assert math.isnan(character_error_rate([""], [""]))


def test_harm_counts_changed_clean_rows_only():
    inputs = ["John", "smith", "Mary", "Ann"]
    targets = ["John", "Smith", "Mary", "Ann"]
    predictions = ["Jon", "smith", "Mary", "Ann"]  # row 1 is wrong but was not clean
    assert harm(inputs, predictions, targets) == pytest.approx(1 / 3)
    assert math.isnan(harm(["a"], ["a"], ["b"]))  # no clean rows


CORRECT = [True, False, True, False]
CONFIDENCE = [0.9, 0.8, 0.7, 0.1]  # ranked: T F T F


def test_accuracy_at_coverage():
    assert accuracy_at_coverage(CORRECT, CONFIDENCE, 0.25) == 1.0
    assert accuracy_at_coverage(CORRECT, CONFIDENCE, 0.5) == 0.5
    assert accuracy_at_coverage(CORRECT, CONFIDENCE, 0.75) == pytest.approx(2 / 3)
    assert accuracy_at_coverage(CORRECT, CONFIDENCE, 1.0) == 0.5
    assert accuracy_at_coverage(CORRECT, CONFIDENCE, 0.0) == 1.0  # at least one row
    # ranked by confidence, not by position
    assert accuracy_at_coverage([False, True], [0.2, 0.9], 0.5) == 1.0
    assert math.isnan(accuracy_at_coverage([], [], 0.5))


def test_coverage_at_precision():
    correct = [True, False, True, True, False]
    confidence = [0.5, 0.1, 0.9, 0.8, 0.3]  # ranked: T T T F F
    assert coverage_at_precision(correct, confidence, 1.0) == 0.6
    assert coverage_at_precision(correct, confidence, 0.75) == 0.8  # 3 of 4
    assert coverage_at_precision(correct, confidence, 0.6) == 1.0  # 3 of 5
    assert math.isnan(coverage_at_precision([], [], 0.9))


def test_coverage_at_precision_is_zero_when_the_most_confident_row_is_wrong():
    assert coverage_at_precision([False, True, True], [0.99, 0.5, 0.4], 0.99) == 0.0
    assert coverage_at_precision([False, True, True], [0.99, 0.5, 0.4], 0.6) == 1.0


def test_accuracy_at_threshold():
    coverage, accuracy = accuracy_at_threshold(CORRECT, CONFIDENCE, 0.75)
    assert (coverage, accuracy) == (0.5, 0.5)
    assert accuracy_at_threshold(CORRECT, CONFIDENCE, 0.7) == (0.75, pytest.approx(2 / 3))  # inclusive
    coverage, accuracy = accuracy_at_threshold(CORRECT, CONFIDENCE, 0.95)
    assert coverage == 0.0 and math.isnan(accuracy)
    assert all(math.isnan(v) for v in accuracy_at_threshold([], [], 0.5))


def test_reliability_table_bins_rows_by_confidence():
    correct = [True, False, True, True, False]
    confidence = [0.05, 0.08, 0.95, 1.0, 0.55]
    table = reliability_table(correct, confidence, bins=10)
    assert [row["bin"] for row in table] == ["0.0-0.1", "0.5-0.6", "0.9-1.0"]  # empty bins left out
    assert [row["rows"] for row in table] == [2, 1, 2]
    assert table[0]["confidence"] == pytest.approx(0.065)
    assert table[0]["accuracy"] == 0.5
    assert table[2]["confidence"] == pytest.approx(0.975)
    assert table[2]["accuracy"] == 1.0
    assert sum(row["rows"] for row in table) == len(correct)


def test_reliability_table_edges_and_bin_count():
    table = reliability_table([True, True], [0.0, 1.0], bins=4)
    assert [row["bin"] for row in table] == ["0.0-0.2", "0.8-1.0"]


def test_expected_calibration_error():
    assert expected_calibration_error([True, False], [0.5, 0.5]) == pytest.approx(0.0)
    assert expected_calibration_error([True, True], [0.95, 0.95]) == pytest.approx(0.05)
    # weighted by rows: 3 rows off by 0.3 in one bin, 1 row off by 0.9 in another
    assert expected_calibration_error([True, True, True, False], [0.7, 0.7, 0.7, 0.9]) == pytest.approx(
        (3 * 0.3 + 1 * 0.9) / 4
    )
    assert math.isnan(expected_calibration_error([], []))


SUMMARY_KEYS = {
    "rows", "exact_match", "cer", "harm", "harm_at_threshold", "clean_rows", "accuracy_at_50", "accuracy_at_80",
    "coverage_at_99", "threshold", "coverage_at_threshold", "accuracy_at_threshold", "ece",
}


def test_summarize_reports_every_metric():
    inputs = ["jon", "Mary", "SMITH", "Ann"]
    targets = ["John", "Mary", "Smith", "Ann"]
    predictions = ["John", "Mary", "Smyth", "An"]
    confidence = [0.95, 0.99, 0.4, 0.92]
    out = summarize(inputs, targets, predictions, confidence, threshold=0.9)
    assert set(out) == SUMMARY_KEYS
    assert out["rows"] == 4
    assert out["exact_match"] == 0.5
    assert out["cer"] == pytest.approx(2 / 16)
    assert out["clean_rows"] == 2
    assert out["harm"] == 0.5
    assert out["harm_at_threshold"] == 0.5  # "Ann" -> "An" at 0.92: a cleaning job at 0.9 writes it
    assert summarize(inputs, targets, predictions, confidence, threshold=0.95)["harm_at_threshold"] == 0.0
    assert out["accuracy_at_50"] == 1.0
    assert out["coverage_at_99"] == 0.5
    assert out["threshold"] == 0.9
    assert out["coverage_at_threshold"] == 0.75
    assert out["accuracy_at_threshold"] == pytest.approx(2 / 3)
    assert all(isinstance(v, (int, float)) for v in out.values())
    assert np.isfinite(out["ece"])


def test_summarize_marks_undefined_metrics_nan():
    out = summarize(["a"], ["b"], ["b"], [0.5], threshold=0.9)
    assert math.isnan(out["harm"]) and out["clean_rows"] == 0
    assert math.isnan(out["harm_at_threshold"])
    assert math.isnan(out["accuracy_at_threshold"]) and out["coverage_at_threshold"] == 0.0
