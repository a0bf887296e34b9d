"""The rules every set of curated pairs follows (core.pairs), and the GX suite stating the same."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from strseq_tasks.core.pairs import INVISIBLE, PairsError, check_pairs

SUITE = Path(__file__).resolve().parents[2] / "expectations" / "string_pairs.json"


def _rows(pairs):
    return [(i, a, b) for i, (a, b) in enumerate(pairs, start=1)]


def test_pairs_come_back_nfc_in_order_each_once():
    checked = check_pairs(_rows([("Jose\u0301", "José"), ("b", "B"), ("José", "José"), ("b", "B")]), max_len=10)
    assert checked.pairs == [("José", "José"), ("b", "B")] and checked.duplicates == 2


@pytest.mark.parametrize("pairs, row, column, words", [
    ([("a", "A"), ("  ", "B")], 2, "input", "empty value"),
    ([("a", "A"), ("b", "")], 2, "target", "empty value"),
    ([("a" * 11, "A")], 1, "input", "limit is 10"),
    ([("a", "A"), ("a", "B")], 2, "target", "in row 1"),
    ([("a", "A\u200b")], 1, "target", "U+200B"),
    ([("a", "tab\there")], 1, "target", "U+0009"),
    ([("a", "soft\u00adhy")], 1, "target", "U+00AD"),
    ([("a", "\u202eevil")], 1, "target", "U+202E"),
])
def test_each_rule_names_the_first_row_that_breaks_it(pairs, row, column, words):
    with pytest.raises(PairsError) as caught:
        check_pairs(_rows(pairs), max_len=10)
    assert (caught.value.row, caught.value.column) == (row, column) and words in str(caught.value)


def test_inputs_may_hold_what_targets_may_not_and_joiners_are_text():
    pairs = [("tab\there", "tab here"), ("zero\u200bwidth", "zero width"), ("\ufeffbom", "bom"),
             ("family", "👨\u200d👩\u200d👧"), ("mi", "می\u200cخواهم")]
    assert len(check_pairs(_rows(pairs), max_len=20).pairs) == 5


def test_the_suite_states_the_same_rule_for_targets_and_warns_on_inputs():
    expectations = json.loads(SUITE.read_text(encoding="utf-8"))["expectations"]
    hidden = {e["kwargs"]["column"]: e for e in expectations
              if e["type"] == "expect_column_values_to_not_match_regex"}
    assert hidden["target"]["kwargs"]["regex"] == INVISIBLE and "severity" not in hidden["target"]
    assert hidden["input"]["kwargs"]["regex"] == INVISIBLE and hidden["input"]["severity"] == "warning"
    assert re.compile(INVISIBLE).search("a\u2066b") and not re.compile(INVISIBLE).search("a b é 李")
