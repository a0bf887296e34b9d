"""The review queue asks the question whose answer teaches most first (jobs/review_queue.py)."""

from __future__ import annotations

from strseq_tasks.jobs.review_queue import teaching_order


def row(i: int, value: str, confidence: float | None, column: str = "name_clean") -> dict:
    return {"id": i, "table_name": "people", "column_name": column, "value": value, "confidence": confidence}


def test_the_commonest_shape_first_one_question_per_shape_before_any_second():
    rows = [row(1, "SMITH John", 0.6), row(2, "bob", 0.2), row(3, "JONES Mary", 0.4), row(4, "LEE Ann", 0.5),
            row(5, "Ann Lee", 0.8), row(6, "Lee Ann", 0.7), row(7, "x", None), row(8, "SMITH John", 0.1, "other")]
    ordered = teaching_order(rows)
    assert [r["id"] for r in ordered] == [3, 6, 7, 8, 2, 4, 5, 1]
    assert {r["id"]: r["stands_for"] for r in ordered} == {1: 3, 3: 3, 4: 3, 5: 2, 6: 2, 7: 1, 8: 1, 2: 1}
    assert ordered[0]["shape"] == "AA Aa"


def test_every_row_once_and_none_for_none():
    assert teaching_order([]) == []
    rows = [row(i, f"name {i}", i / 10) for i in range(10)]
    assert sorted(r["id"] for r in teaching_order(rows)) == list(range(10))
