"""The learning-loop benchmark's pure parts (benchmarks/learning_loop.py): the column is cut into a
pool and an evaluation half that never meet, the queue is the cleaning job's, the orders are the
product's and a seeded shuffle, answered rows leave the queue, and the targets are judged as the
issue states them. No training: ``scored`` is replaced where a round needs a model."""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import learning_loop as loop  # noqa: E402
from strseq_tasks.core.words import WordTreatment  # noqa: E402
from strseq_tasks.jobs.clean_plan import REVIEWED, outcome  # noqa: E402
from strseq_tasks.jobs.review_queue import teaching_order  # noqa: E402
from strseq_tasks.serve.runtime import Prediction  # noqa: E402


def column(n: int) -> list[tuple[str, str]]:
    return [(f"value {i:03d} ", f"Value {i % (n // 2):03d}") for i in range(n)]  # each target twice


def test_the_pool_and_the_evaluation_half_are_stable_disjoint_and_about_even():
    test = column(400)
    tags = [{"row": i} for i in range(len(test))]
    pool, evaluation, kept_tags = loop.split_column(test, tags)
    assert (pool, evaluation, kept_tags) == loop.split_column(list(test), list(tags))
    assert not {t for _, t in pool} & {t for _, t in evaluation}  # a value answered is never scored
    assert sorted(pool + evaluation) == sorted(test)
    assert [test[t["row"]] for t in kept_tags] == evaluation  # the tags follow their rows
    assert 0.35 < len(pool) / len(test) < 0.65


def predictions_of_every_kind() -> tuple[list[tuple[str, str]], dict[int, Prediction]]:
    decomposed = unicodedata.normalize("NFD", "José")
    pool = [("smith, john", "John Smith"), ("jones, mary", "Mary Jones"), ("Ann Lee", "Ann Lee"),
            ("x" * 200, "X"), ("   ", ""), (decomposed, "José"), ("lee, bo", "Bo Lee"), ("kim, al", "Al Kim")]
    predictions = {0: Prediction("John Smith", 0.95, "ok"),  # confident change: applied
                   1: Prediction("Mary Jones", 0.5, "ok"),  # unsure change: review
                   2: Prediction("Ann Lee", 0.3, "ok"),  # unchanged, however unsure
                   3: Prediction("x" * 200, 0.0, "too_long"),  # review, no suggestion
                   4: Prediction("   ", 1.0, "empty"),  # skipped
                   5: Prediction("José", 0.2, "ok"),  # only NFC: unchanged
                   6: Prediction("Bo Lee", 0.9, "ok"),  # at the threshold: applied
                   7: Prediction("Kim Al", 0.899, "ok")}  # just below: review
    return pool, predictions


def test_the_queue_is_what_the_cleaning_job_sends_to_review():
    pool, predictions = predictions_of_every_kind()
    queue = loop.review_queue(pool, predictions, 0.9, table="people")
    assert [q["id"] for q in queue] == [1, 3, 7]
    assert [q["id"] for q in queue] == [i for i, p in predictions.items() if outcome(pool[i][0], p, 0.9) in REVIEWED]
    assert queue[0] == {"id": 1, "table_name": "people", "column_name": "value", "value": "jones, mary",
                        "suggestion": "Mary Jones", "confidence": 0.5, "new_words": None}
    assert queue[1]["suggestion"] is None  # too long: nothing to approve
    assert [q["id"] for q in loop.review_queue(pool, predictions, 0.99)] == [0, 1, 3, 6, 7]


def test_a_queued_row_holds_the_words_its_models_pairs_never_showed_as_the_cleaning_job_records_them():
    pool, predictions = predictions_of_every_kind()
    words = WordTreatment.of([("smith, john", "John Smith"), ("lee, kim", "Kim Lee")])
    queue = loop.review_queue(pool, predictions, 0.9, words=words)
    assert {q["value"]: q["new_words"] for q in queue} == {"jones, mary": "jones mary", "x" * 200: "x" * 200,
                                                           "kim, al": "al"}


def test_answered_rows_leave_the_queue_whatever_the_model_says():
    pool, predictions = predictions_of_every_kind()
    assert [q["id"] for q in loop.review_queue(pool, predictions, 0.9, answered={1, 7})] == [3]


def queue_of(n: int) -> list[dict]:
    shapes = ["smith, john", "SMITH John", "john smith", "J. Smith"]
    return [{"id": i, "table_name": "t", "column_name": "value", "value": shapes[i % 4] + "x" * (i % 3),
             "suggestion": "John Smith", "confidence": (i * 37 % 100) / 100} for i in range(n)]


def test_the_strseq_order_is_teaching_order_and_the_random_order_is_seeded():
    queue = queue_of(30)
    assert loop.ordered(queue, "strseq", "k") == teaching_order(queue)
    first, again, other = (loop.ordered(queue, "random", key) for key in ("dates:0:1", "dates:0:1", "dates:0:2"))
    assert [q["id"] for q in first] == [q["id"] for q in again]
    assert [q["id"] for q in first] != [q["id"] for q in other]
    assert sorted(q["id"] for q in first) == list(range(30))
    assert [q["id"] for q in queue] == list(range(30))  # the queue itself is not shuffled
    with pytest.raises(ValueError, match="unknown order"):
        loop.ordered(queue, "alphabetical", "k")


def test_the_reviewer_answers_with_the_truth_as_a_person_would_act():
    question = {"id": 4, "value": "smith, john", "suggestion": "John Smith", "confidence": 0.5}
    assert loop.answer(question, "John Smith")["action"] == "approve"
    assert loop.answer(question, "smith, john")["action"] == "reject"
    edit = loop.answer(question, "Jon Smith")
    assert (edit["action"], edit["input"], edit["target"]) == ("edit", "smith, john", "Jon Smith")
    assert loop.answer({**question, "suggestion": None}, "John Smith")["action"] == "edit"


def test_answers_join_the_pairs_once_in_pool_order_whichever_order_asked_them():
    pairs = [("a", "A"), ("b", "B")]
    decisions = [{"id": 9, "input": "z", "target": "Z"}, {"id": 2, "input": "b", "target": "B"},
                 {"id": 5, "input": "m", "target": "M"}]
    joined = loop.with_answers(pairs, decisions)
    assert joined == [("a", "A"), ("b", "B"), ("m", "M"), ("z", "Z")]
    assert loop.with_answers(pairs, reversed(decisions)) == joined


def fake_scored(calls: list):
    """A model that upper-cases every open input at confidence 0.5 (so every row not already upper
    case is queued), and scores exact match as the pairs' count / 1000."""
    def scored(pairs, column, open_inputs, settings):
        calls.append((list(pairs), list(open_inputs)))
        figures = {"pairs": len(pairs), "exact_match": len(pairs) / 1000, "coverage_at_99": 0.0, "harm": 0.0}
        return figures, loop.Served([Prediction(text.upper(), 0.5, "ok") for text in open_inputs])
    return scored


def test_a_round_asks_the_first_k_trains_on_the_answers_and_asks_them_never_again(monkeypatch):
    calls = []
    monkeypatch.setattr(loop, "scored", fake_scored(calls))
    pool = [(f"v{i}", f"V{i}") for i in range(12)] + [("DONE", "DONE")]
    col = loop.Column("names", 0, [("a", "A")], pool, [], [])
    first, predictions = loop.scored(col.start, col, [a for a, _ in pool], None)
    settings = loop.LoopSettings(rounds=4, per_round=5)
    rows = loop.run_order("random", col, first, predictions, settings)
    assert [r["decisions"] for r in rows] == [0, 5, 10, 12, 12]
    assert [r["queue"] for r in rows] == [12, 7, 2, 0, 0]
    assert [r["retrained"] for r in rows] == [True, True, True, True, False]  # an empty queue: no retrain
    asked = [a["input"] for r in rows for a in r["asked"]]
    assert sorted(asked) == sorted(f"v{i}" for i in range(12))  # each question once
    # each retrain learns from the start pairs and every answer so far, and predicts the open rows
    assert [len(pairs) for pairs, _ in calls[1:]] == [6, 11, 13]
    assert all(not set(open_inputs) & set(asked[: len(pairs) - 1]) for pairs, open_inputs in calls[1:])
    assert {a["action"] for r in rows for a in r["asked"]} == {"approve"}  # the suggestions were right
    strseq_rows = loop.run_order("strseq", col, first, predictions, settings)
    queue = loop.review_queue(pool, dict(enumerate(predictions.predictions)), 0.9, table="names")
    ranked = loop.ordered(queue, "strseq", "")
    assert [a["input"] for a in strseq_rows[1]["asked"]] == [q["value"] for q in ranked[:5]]


def row(family, order, seed, round_, em, decisions):
    return {"family": family, "order": order, "seed": seed, "round": round_, "exact_match": em,
            "decisions": decisions}


def test_the_targets_are_judged_on_the_mean_over_seeds_within_the_budget():
    rows = []
    for seed in (0, 1, 2):
        rows.append(row("dates", "reference", seed, None, 0.90, 0))
        rows.append(row("names", "reference", seed, None, 0.90, 0))
        for n, (a, b) in enumerate([(0.5, 0.5), (0.7, 0.6), (0.8, 0.7), (0.91, 0.8), (0.92, 0.9)]):
            rows.append(row("dates", "strseq", seed, n, a, 25 * n))
            rows.append(row("dates", "random", seed, n, b, 25 * n))
        for n, (a, b) in enumerate([(0.5, 0.5), (0.7, 0.6), (0.6 + (seed == 0) * 0.05, 0.7)]):
            rows.append(row("names", "strseq", seed, n, a, 60 * n))  # 120 decisions at round 2
            rows.append(row("names", "random", seed, n, b, 60 * n))
    v = loop.verdicts(rows)
    assert v["dates"]["reaches"] and v["dates"]["beats_every_round"]
    assert v["dates"]["best_round"] == 4 and v["dates"]["best"] == pytest.approx(0.92)
    assert (v["dates"]["wins"], v["dates"]["ties"], v["dates"]["losses"]) == (12, 0, 0)
    assert v["names"]["best_round"] == 1 and not v["names"]["reaches"]  # round 2 is over the budget
    assert v["names"]["beats_every_round"] is False
    assert (v["names"]["wins"], v["names"]["losses"]) == (3, 3)
    tied = [r | {"exact_match": 0.5} for r in rows if r["family"] == "dates"]
    assert loop.verdicts(tied)["dates"]["beats_every_round"] is False  # a tie does not beat


def test_the_targets_are_judged_on_the_mean_of_the_families_too():
    rows = []
    for seed in (0, 1, 2):
        for family, (ref, ahead) in {"dates": (0.90, 0.04), "names": (0.96, -0.01)}.items():
            rows.append(row(family, "reference", seed, None, ref, 0))
            for n in range(4):
                rows.append(row(family, "random", seed, n, 0.8 + n / 20, 25 * n))
                rows.append(row(family, "strseq", seed, n, 0.8 + n / 20 + (n > 0) * ahead, 25 * n))
    rows.append(row("names", "random", 0, 4, 0.99, 100))  # a round only one family has: not in the mean
    v = loop.verdicts(rows)
    assert v["names"]["beats_every_round"] is False and v["dates"]["beats_every_round"]
    mean = v["mean of 2"]
    assert mean["beats_every_round"] and mean["rounds_compared"] == 3
    assert (mean["wins"], mean["ties"], mean["losses"]) == (9, 0, 0)
    assert mean["reference"] == pytest.approx(0.93) and mean["best"] == pytest.approx(0.965)
    assert mean["best_round"] == 3 and mean["reaches"]
    assert "| mean of 2 | 93.0 | 96.5 (round 3) | **yes** | **yes** (3 rounds) | 9 / 0 / 0 |" in \
        loop.verdict_table(rows, 200)
    assert "mean of" not in str(loop.verdicts([r for r in rows if r["family"] == "dates"]))  # one family: no mean


def test_the_orders_gap_is_reported_over_every_family_and_seed():
    rows = [row(f, o, s, n, 0.8 + n / 20 + (o == "strseq") * (0.02 if f == "dates" else -0.01) * (n > 0), 25 * n)
            for f in ("dates", "names") for s in (0, 1) for n in range(3) for o in ("strseq", "random")]
    gaps = loop.order_gaps(rows + [row("names", "strseq", 2, 1, 0.1, 25)])  # no random cell beside it: left out
    assert [g["round"] for g in gaps] == [1, 2] and gaps[0]["cells"] == 4
    assert gaps[0]["gap"] == pytest.approx(0.005) and gaps[0]["random"] == pytest.approx(0.85)
    assert gaps[0]["gap_sd"] == pytest.approx(0.017320508, rel=1e-6)
    assert "| 25 | 4 | 85.5 | 85.0 | +0.5 | 1.7 |" in loop.gap_table(rows, 25)


def test_the_start_pairs_are_the_first_pairs_of_the_reference_draw():
    pytest.importorskip("faker")
    from benchmarks.columns import FAMILIES, draw

    assert draw(FAMILIES["dates"](), 200, 50, 100).train[:50] == draw(FAMILIES["dates"](), 50, 50, 100).train


def test_two_orders_are_compared_round_by_round_against_the_same_random_order():
    first, second = [], []
    for seed in (100, 101):
        for n in range(3):
            for rows, em in ((first, 0.60 + n / 10), (second, 0.70 + n / 10 - (seed == 101) * 0.3)):
                rows.append(row("names", "strseq", seed, n, em, 25 * n))
                rows.append(row("names", "random", seed, n, 0.65 + n / 10, 25 * n))
    out, differ = loop.compare_orders(first, second)
    assert differ == []
    assert [r["round"] for r in out] == [1, 2]  # round 0 is one model for every order
    assert out[0]["first"] == pytest.approx(0.7) and out[0]["random"] == pytest.approx(0.75)
    assert out[0]["first_score"] == (0, 0, 2) and out[0]["second_score"] == (1, 0, 1)
    assert "| **all** | | | 80.0 | 75.0 | 0 / 0 / 4 |" in loop.compare_table(out, "a", "b")
    moved = [r | {"exact_match": 0.1} if r["order"] == "random" and r["round"] == 2 else r for r in second]
    kept, differ = loop.compare_orders(first, moved)  # not comparable there: left out and named
    assert [r["round"] for r in kept] == [1] and differ == ["names round 2"]
