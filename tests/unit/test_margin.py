"""Choosing the identity margin on validation (``decoding_choices.pick_margin``)."""

from __future__ import annotations

import pytest

from strseq_tasks.learn.decoding_choices import pick_margin
from strseq_tasks.learn.training import TrainConfig


def test_one_harmed_row_does_not_force_the_largest_margin():
    # names, 200 pairs: margins 0-8 changed 1 of 31 clean rows and got 9 of 134 rows wrong; 16
    # changed none but got 20 wrong, and 84.5% test exact match against 97.4%
    trials = [(0.0, 9, 1), (1.0, 9, 1), (2.0, 9, 1), (4.0, 9, 1), (8.0, 14, 1), (16.0, 20, 0)]
    assert pick_margin(trials, TrainConfig().harm_cost) == 4.0  # ties: the more conservative


def test_harm_outweighs_fixes_at_its_cost():
    # the small margin fixes 4 more rows but changes 1 more clean row: at a cost of 5 a tie, which
    # goes to the larger margin; fixing 6 more is worth it
    assert pick_margin([(0.0, 10, 3), (4.0, 14, 2)], 5.0) == 4.0
    assert pick_margin([(0.0, 10, 3), (4.0, 16, 2)], 5.0) == 0.0
    assert pick_margin([(0.0, 10, 3), (4.0, 16, 2)], 10.0) == 4.0  # a team that fears harm more


def test_no_trials_is_an_error():
    with pytest.raises(ValueError):
        pick_margin([], 5.0)
