"""The review queue asks the question whose answer teaches most first (jobs/review_queue.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from strseq_tasks.jobs.review_queue import spread, teaching_order


def row(i: int, value: str, confidence: float | None, column: str = "name_clean") -> dict:
    return {"id": i, "table_name": "people", "column_name": column, "value": value, "confidence": confidence}


def test_the_commonest_shape_first_and_each_group_asked_in_proportion_to_its_rows():
    rows = [row(1, "SMITH John", 0.6), row(2, "bob", 0.2), row(3, "JONES Mary", 0.4), row(4, "LEE Ann", 0.5),
            row(5, "Ann Lee", 0.8), row(6, "Lee Ann", 0.7), row(7, "x", None), row(8, "SMITH John", 0.1, "other")]
    ordered = teaching_order(rows)
    # groups: the shape AA Aa (rows 1, 3, 4), the shape Aa Aa (5, 6), the words "ann" and "lee"
    # (4, 5, 6 each), single shapes; "john" is in two columns, so in no group. AA Aa wins the tie at
    # 3 rows (a shape before a word) and asks its middle confidence, row 4, which is also a question
    # for "ann" and "lee" (now 1.5 rows per question each); Aa Aa (2) asks row 6 ("ann", "lee": 1
    # each); AA Aa (1.5) row 3; at 1 row per question the larger groups first, the shape before the
    # words: AA Aa row 1, then "ann" the row it has left, 5; then the single rows
    assert [r["id"] for r in ordered] == [4, 6, 3, 1, 5, 7, 2, 8]
    assert [(r["group"], r["stands_for"]) for r in ordered] == [
        ("AA Aa", 3), ("Aa Aa", 2), ("AA Aa", 3), ("AA Aa", 3), ('"ann"', 3), ("a", 1), ("aa", 1), ("AA Aa", 1)]
    assert ordered[4]["shape"] == "Aa Aa"  # the row's own layout, whatever group asked it


def test_a_word_many_layouts_share_gets_questions_its_layouts_alone_would_not():
    # a surname particle in four layouts of one row each, beside a layout of five plain names:
    # by shape alone the particle waits behind the five; as a word of four rows it is asked second
    plain = [row(i, f"Name{'x' * i} Surname{'y' * i}", 0.5) for i in range(5)]
    particle = [row(10, "Ann Ó Brien", 0.3), row(11, "Ó Brien, Ann", 0.4), row(12, "ANN Ó BRIEN", 0.5),
                row(13, "ann ó brien jr", 0.6)]
    ordered = teaching_order(plain + particle)
    assert ordered[0]["group"] == "Aa Aa" and ordered[0]["stands_for"] == 5
    assert ordered[1]["id"] in {10, 11, 12, 13} and ordered[1]["stands_for"] == 4
    # the words "ó", "brien" and "ann" are all the particle rows' (4 rows): one of them asks it, and
    # its row counts for all three, so the particle rows are not asked four times in a row
    assert ordered[1]["group"] in {'"ann"', '"brien"', '"ó"'}
    assert [r["id"] >= 10 for r in ordered[:4]].count(True) == 2


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
