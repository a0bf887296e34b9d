"""The review queue asks the question whose answer teaches most first (jobs/review_queue.py)."""

from __future__ import annotations

from strseq_tasks.jobs.review_queue import teaching_order


def row(i: int, value: str, confidence: float | None, column: str = "name_clean") -> dict:
    return {"id": i, "table_name": "people", "column_name": column, "value": value, "confidence": confidence}


def test_the_commonest_shape_first_and_each_shape_asked_in_proportion_to_its_rows():
    rows = [row(1, "SMITH John", 0.6), row(2, "bob", 0.2), row(3, "JONES Mary", 0.4), row(4, "LEE Ann", 0.5),
            row(5, "Ann Lee", 0.8), row(6, "Lee Ann", 0.7), row(7, "x", None), row(8, "SMITH John", 0.1, "other")]
    ordered = teaching_order(rows)
    # AA Aa (3 rows): 3, then 1.5 per question; Aa Aa (2 rows): 2, then 1; the single rows: 1 each,
    # after the larger shapes on a tie, the least confident first (no confidence: first of all)
    assert [r["id"] for r in ordered] == [3, 6, 4, 1, 5, 7, 8, 2]
    assert {r["id"]: r["stands_for"] for r in ordered} == {1: 3, 3: 3, 4: 3, 5: 2, 6: 2, 7: 1, 8: 1, 2: 1}
    assert ordered[0]["shape"] == "AA Aa"


def test_a_shape_of_six_rows_gets_three_questions_for_each_of_a_shape_of_two():
    rows = [row(i, f"SMITH{'X' * i} John", 0.5 + i / 100) for i in range(6)]
    rows += [row(10 + i, f"Ann Lee{'x' * i}", 0.1 + i / 100) for i in range(2)]
    ordered = teaching_order(rows)
    assert "".join("A" if r["id"] < 10 else "B" for r in ordered) == "AAABAAAB"
    assert [r["id"] for r in ordered if r["id"] < 10] == list(range(6))  # least confident first


def test_every_row_once_and_none_for_none():
    assert teaching_order([]) == []
    rows = [row(i, f"name {i}", i / 10) for i in range(10)]
    assert sorted(r["id"] for r in teaching_order(rows)) == list(range(10))
