"""Whitespace in an input carries nothing when no target has any but single spaces: then a
model reads every run of it (tabs, non-breaking spaces, doubled and trailing spaces) as one space."""

from __future__ import annotations

from strseq_tasks.core.vocab import SPACES_COLLAPSE, SPACES_KEEP, collapse_spaces, read_text, spaces_rule


def test_collapse_spaces_reads_every_kind_of_whitespace_as_one_space():
    assert collapse_spaces(" Ann\t\u00a0 Lee \u2009Jr\n") == "Ann Lee Jr"
    assert collapse_spaces("\t \u00a0") == ""


def test_the_rule_comes_from_the_pairs():
    assert spaces_rule([("SMITH,\tJohn", "John Smith"), ("ann  lee", "Ann Lee")]) == SPACES_COLLAPSE
    assert spaces_rule([("a b", "a  b")]) == SPACES_KEEP  # a target with a doubled space
    assert spaces_rule([("a b", "a\tb")]) == SPACES_KEEP  # a target with a tab
    assert spaces_rule([("x ", "x")]) == SPACES_COLLAPSE
    # two inputs that differ only by whitespace but have different targets: whitespace matters
    assert spaces_rule([("a  b", "A"), ("a b", "B")]) == SPACES_KEEP


def test_read_text_is_nfc_and_follows_the_rule():
    decomposed = "Jose\u0301\u00a0Lee"
    assert read_text(decomposed) == "Jos\u00e9\u00a0Lee"
    assert read_text(decomposed, SPACES_COLLAPSE) == "Jos\u00e9 Lee"
