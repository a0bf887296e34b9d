"""The Great Expectations pairs suite (expectations/string_pairs.json) on small frames."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from strseq_tasks.data.validation import SUITE_FILE, PairsValidationError, suites_dir, validate_pairs


def _frame(pairs):
    return pd.DataFrame({"row": range(1, len(pairs) + 1), "input": [a for a, _ in pairs],
                         "target": [b for _, b in pairs]})


GOOD = [("SMITH, John", "John Smith"), ("mary o'neil", "Mary O'Neil"), ("Dr. Ann Lee", "Ann Lee"),
        ("José  García", "José García"), ("John Smith", "John Smith")]


def test_good_pairs_pass_every_expectation():
    report = validate_pairs(_frame(GOOD), max_len=128)
    assert report.success and not report.warnings
    assert len(report.checks) == len(json.loads((suites_dir() / SUITE_FILE).read_text())["expectations"])
    assert "passed" in report.summary()


@pytest.mark.parametrize("bad, why, rows", [
    ([("a", "A"), ("a", "B")], "the same input maps to two different targets", [6, 7]),
    ([(None, "A")], "missing values", [6]),
    ([("b", "   ")], "blank or whitespace-only values", [6]),
    ([("x" * 40, "x")], "longer than the model accepts", [6]),
    ([("x", "tab\there")], "control characters", [6]),
    ([("x", "zero\u200bwidth")], "control characters", [6]),
    ([("x", "soft\u00adhyphen")], "control characters", [6]),
])
def test_each_problem_fails_and_names_its_rows(bad, why, rows):
    report = validate_pairs(_frame(GOOD + bad), max_len=32)
    assert not report.success
    failed = [c for c in report.failures if c.why.startswith(why)]
    assert failed, report.summary()
    assert [r["row"] for r in failed[0].rows] == rows
    message = str(PairsValidationError(report))
    assert why in message and f"row {rows[0]}" in message
    assert "**failed**" in report.markdown()


def test_invisible_characters_in_inputs_are_a_warning_not_a_refusal():
    """A tab or a zero-width space in a dirty input is what a normalizer learns to remove."""
    report = validate_pairs(_frame(GOOD + [("tab\there", "tab here"), ("zero\u200bwidth", "zerowidth")]), max_len=128)
    assert report.success
    assert [c.why.split(" (")[0] for c in report.warnings] == ["invisible characters in inputs"]
    assert [r["row"] for r in report.warnings[0].rows] == [6, 7]


def test_duplicates_are_a_warning_and_the_row_count_a_parameter():
    report = validate_pairs(_frame(GOOD + [GOOD[0]]), max_len=128)
    assert report.success and [c.why for c in report.warnings] == ["duplicate pairs (kept once)"]
    assert [r["row"] for r in report.warnings[0].rows] == [1, 6]
    small = validate_pairs(_frame(GOOD), max_len=128, min_pairs=10)
    assert not small.success and small.failures[0].expectation == "expect_table_row_count_to_be_between"
    assert small.failures[0].observed == 5
    assert json.loads(json.dumps(small.to_dict()))["success"] is False


def test_validations_in_threads_each_see_their_own_parameters():
    # The retrain flow validates several tasks at once in threads. GX's $PARAMETER parser is
    # module-global; unguarded, this crashed in pyparsing or mixed up max_len between threads.
    from concurrent.futures import ThreadPoolExecutor

    frame = _frame(GOOD + [("x" * 20, "x")])

    def check(max_len):
        report = validate_pairs(frame, max_len=max_len)
        return max_len, report.success

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(check, [16, 128] * 8))
    assert results == [(16, False), (128, True)] * 8
