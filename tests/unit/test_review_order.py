"""The review queue asks the question whose answer teaches most first (jobs/review_queue.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from strseq_tasks.jobs.review_queue import like_it, spread, teaching_order


def row(i: int, value: str, confidence: float | None, column: str = "name_clean", new_words: str | None = None) -> dict:
    return {"id": i, "table_name": "people", "column_name": column, "value": value, "confidence": confidence,
            "new_words": new_words}


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


def test_a_new_word_several_rows_share_is_a_group_across_their_layouts():
    # four layouts of 3 rows each; "óg", a word no pair showed, in one row of each layout
    rows = [row(10 * s + i, value, 0.5 + i / 10, new_words="óg" if i == 0 else "")
            for s, layout in enumerate(["{} Ann", "{}, Ann", "{} ann", "ANN {}"])
            for i, value in enumerate(layout.format(n) for n in ("Óg", "Lee", "Moss"))]
    ordered = teaching_order(rows)
    # "óg" (4 rows: 4 per question) first; its row's question counts for its layout too (3 rows:
    # 1.5), so the other three layouts (3) come next, then "óg" again (2), before any layout's second
    assert [r["group"] for r in ordered[:5]] == ['"óg"', "Aa Aa", "Aa aa", "AA Aa", '"óg"']
    assert ordered[0]["value"] == "Óg, Ann" and ordered[0]["stands_for"] == 4 and ordered[0]["shape"] == "Aa, Aa"
    assert like_it(ordered[0]) == '3 more with the new word "óg"'
    assert sorted(r["id"] for r in ordered) == sorted(r["id"] for r in rows)  # each row once


def test_a_new_word_of_one_row_or_not_known_is_no_group():
    rows = [row(1, "Ann Lee", 0.5, new_words="lee"), row(2, "Bob Lee", 0.6, new_words=None),
            row(3, "Cy Moss", 0.7, new_words="")]  # "lee" new for one row only; NULL: a bundle that does not say
    ordered = teaching_order(rows)
    assert {r["group"] for r in ordered} == {"Aa Aa"} and [r["id"] for r in ordered] == [2, 1, 3]
    assert like_it(ordered[0]) == "2 more like it (Aa Aa)" and like_it({"stands_for": 1}) == ""


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
