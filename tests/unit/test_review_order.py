"""The review queue asks the question whose answer teaches most first (jobs/review_queue.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from strseq_tasks.jobs.review_queue import spread, teaching_order


def row(i: int, value: str, confidence: float | None, column: str = "name_clean") -> dict:
    return {"id": i, "table_name": "people", "column_name": column, "value": value, "confidence": confidence}


def test_the_commonest_shape_first_and_each_shape_asked_in_proportion_to_its_rows():
    rows = [row(1, "SMITH John", 0.6), row(2, "bob", 0.2), row(3, "JONES Mary", 0.4), row(4, "LEE Ann", 0.5),
            row(5, "Ann Lee", 0.8), row(6, "Lee Ann", 0.7), row(7, "x", None), row(8, "SMITH John", 0.1, "other")]
    ordered = teaching_order(rows)
    # AA Aa (3 rows): 3, then 1.5 per question; Aa Aa (2 rows): 2, then 1; the single rows: 1 each,
    # after the larger shapes on a tie; within a shape its middle confidence first, then the
    # middles of what is left; among the single rows the least confident (no confidence: first)
    assert [r["id"] for r in ordered] == [4, 6, 3, 1, 5, 7, 8, 2]
    assert {r["id"]: r["stands_for"] for r in ordered} == {1: 3, 3: 3, 4: 3, 5: 2, 6: 2, 7: 1, 8: 1, 2: 1}
    assert ordered[0]["shape"] == "AA Aa"


def test_a_shape_of_six_rows_gets_three_questions_for_each_of_a_shape_of_two():
    rows = [row(i, f"SMITH{'X' * i} John", 0.5 + i / 100) for i in range(6)]
    rows += [row(10 + i, f"Ann Lee{'x' * i}", 0.1 + i / 100) for i in range(2)]
    ordered = teaching_order(rows)
    assert "".join("A" if r["id"] < 10 else "B" for r in ordered) == "AAABAAAB"
    # by confidence the shape's rows are 0..5: the middle, then the middles of each stretch left
    assert [r["id"] for r in ordered if r["id"] < 10] == [2, 0, 4, 1, 3, 5]


def test_every_row_once_and_none_for_none():
    assert teaching_order([]) == []
    rows = [row(i, f"name {i}", i / 10) for i in range(10)]
    assert sorted(r["id"] for r in teaching_order(rows)) == list(range(10))


def test_spread_asks_the_middle_then_the_middles_of_the_halves():
    assert spread(7) == [3, 1, 5, 0, 2, 4, 6]
    assert spread(1) == [0] and spread(0) == []


@given(st.integers(min_value=0, max_value=300))
def test_spread_is_a_permutation_whose_first_questions_cover_the_range(n):
    order = spread(n)
    assert sorted(order) == list(range(n))
    if n:
        assert order[0] == (n - 1) // 2  # the typical row first
    if n >= 3:  # then one on each side of it, never two from one end
        assert order[1] < order[0] < order[2]
