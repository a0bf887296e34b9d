"""The cleaning job's decision on three rows, with no database (jobs/clean_plan.py)."""

from __future__ import annotations

import datetime as dt

from strseq_tasks.core.shapes import Familiar, shapes_of
from strseq_tasks.data.batches import NOT_TEXT
from strseq_tasks.data.db import key_text, value_hash
from strseq_tasks.jobs.clean_plan import (
    CHANGED,
    REVIEW_LOW,
    REVIEW_WIDE,
    UNCHANGED,
    Target,
    plan_batch,
    repeated_keys,
    select_rows,
    signals,
)
from strseq_tasks.serve.runtime import Prediction

NOW = dt.datetime(2026, 12, 4, tzinfo=dt.UTC)


def target(**changes) -> Target:
    values = {"run_id": "run-1", "table": "customers", "column": "name_clean", "in_place": False, "max_chars": None,
              "model_name": "names", "model_version": 3, "model_sha": "abc", "threshold": 0.9, **changes}
    return Target(**values)


ROWS = [(1, "SMITH, John", None), (2, "ann lee", None), (3, "Mary Jones", None)]
PREDICTIONS = [Prediction("John Smith", 0.97, "ok"), Prediction("Ann Lee", 0.5, "ok"),
               Prediction("Mary Jones", 0.99, "ok")]


def test_three_rows_one_change_one_review_one_unchanged():
    plan = plan_batch(ROWS, PREDICTIONS, target(), NOW, sample_room=20)
    assert plan.updates == [(1, "SMITH, John", None, "John Smith")]
    assert [(a["key"], a["old_value"], a["new_value"], a["model_version"]) for a in plan.audit] == [
        ("1", None, "John Smith", 3)]
    assert [(r["key"], r["suggestion"], r["reason"]) for r in plan.review] == [("2", "Ann Lee", REVIEW_LOW)]
    assert [(m["key"], m["outcome"]) for m in plan.markers] == [("1", CHANGED), ("2", REVIEW_LOW), ("3", UNCHANGED)]
    # a marker holds the hash of what its run left in the input column
    assert [m["value_hash"] for m in plan.markers] == [value_hash(r[1]) for r in ROWS]
    assert (plan.unchanged, plan.reviewed) == (1, 1) and [s["key"] for s in plan.sample] == [1]


def test_in_place_the_old_value_is_the_input_and_the_marker_holds_the_new_one():
    plan = plan_batch(ROWS[:1], PREDICTIONS[:1], target(in_place=True, column="name"), NOW, sample_room=0)
    assert plan.updates == [(1, "SMITH, John", "SMITH, John", "John Smith")]
    assert plan.markers[0]["value_hash"] == value_hash("John Smith") and plan.sample == []


def test_a_suggestion_longer_than_the_output_column_goes_to_review():
    plan = plan_batch(ROWS[:1], PREDICTIONS[:1], target(max_chars=5), NOW, sample_room=20)
    assert plan.updates == [] and [r["reason"] for r in plan.review] == [REVIEW_WIDE]


def test_rows_done_by_this_model_empty_or_not_text_are_not_predicted():
    rows = [(1, "SMITH, John", None), (2, "  ", None), (3, NOT_TEXT, None), (4, "ann lee", "Ann Lee"),
            (5, "bob", None)]
    done = {key_text(1): (value_hash("SMITH, John"), UNCHANGED),  # the same value: done
            key_text(4): (value_hash("ann lee"), CHANGED),  # done, and its output is still there
            key_text(5): (value_hash("BOB"), CHANGED)}  # the value changed since: again
    selection = select_rows(rows, done, in_place=False)
    assert [r[0] for r in selection.todo] == [5]
    assert (selection.already_done, selection.skipped, selection.not_text) == (2, 2, [key_text(3)])
    emptied = select_rows([(4, "ann lee", None)], done, in_place=False)  # output column reset since
    assert [r[0] for r in emptied.todo] == [4]


def test_a_key_on_two_rows_is_named():
    assert repeated_keys(["1", "2", "1", "3", "3"]) == ["1", "3"] and repeated_keys(["1", "2"]) == []


def test_a_persons_value_is_one_strseq_did_not_write():
    from strseq_tasks.jobs.clean_plan import RowHistory

    history = RowHistory(written={"1": ("bob", "BOB", False), "2": ("al", "AL", True)}, reviewing={"3": "cy?"})
    # an output column: any value strseq did not write there last (a reverted change is not its own)
    assert history.person_value("1", "bob", "BOB", in_place=False) is None
    assert history.person_value("1", "bob", "Bob", in_place=False) == "bob"
    assert history.person_value("2", "al", "AL", in_place=False) == "al"
    assert history.person_value("4", "dee", None, in_place=False) is None
    assert history.person_value("4", "dee", "Dee", in_place=False) == "dee"  # there before strseq: kept
    # in place: changed after strseq changed it, or after strseq asked about it
    assert history.person_value("1", "Bob", "Bob", in_place=True) == "bob"
    assert history.person_value("1", "BOB", "BOB", in_place=True) is None
    assert history.person_value("3", "Cy", "Cy", in_place=True) == "cy?"
    assert history.person_value("3", "cy?", "cy?", in_place=True) is None
    assert history.person_value("5", "eve", "eve", in_place=True) is None  # never handled: new data


def test_decided_rows_are_left_alone_and_rows_decided_for_another_input_are_suggested_only():
    from strseq_tasks.jobs.clean_plan import REVIEW_REDECIDE, RowHistory

    history = RowHistory(decided={key_text(1): value_hash("SMITH, John"), key_text(2): value_hash("old value")})
    selection = select_rows(ROWS, {}, in_place=False, history=history)
    assert selection.decided == 1 and [r[0] for r in selection.todo] == [2, 3]
    assert selection.redecide == {key_text(2)}
    plan = plan_batch(selection.todo, PREDICTIONS[1:], target(threshold=0.1), NOW, 20, selection.redecide)
    assert [(r["key"], r["reason"]) for r in plan.review] == [("2", REVIEW_REDECIDE)] and not plan.updates


def test_an_output_column_already_holding_the_answer_is_not_written_again():
    rows = [(1, "SMITH, John", "John Smith"), (2, "bob ray", "Bob R.")]
    predictions = [Prediction("John Smith", 0.97, "ok"), Prediction("Bob Ray", 0.97, "ok")]
    plan = plan_batch(rows, predictions, target(), NOW, sample_room=20)
    assert plan.updates == [(2, "bob ray", "Bob R.", "Bob Ray")] and [a["key"] for a in plan.audit] == ["2"]
    assert plan.unchanged == 1 and [m["outcome"] for m in plan.markers] == [CHANGED, CHANGED]


def test_signals_say_what_set_a_row_apart_from_the_pairs():
    pairs = [("SMITH, John", "John Smith"), ("lee, ann", "Ann Lee"), ("Pky Rd", "Parkway Road"),
             ("Pky Ln", "Parkway Lane"), ("abcdefghijklmnopqrstuvwxyz", "Abcdefghijklmnopqrstuvwxyz"),
             ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "Abcdefghijklmnopqrstuvwxyz")]
    familiar = Familiar.of(frozenset(shapes_of(a for a, _ in pairs)), pairs)
    # a layout and a letter no pair showed, and the suggestion drops the letter (and with it a word
    # no pair showed, which the pairs would have kept)
    assert signals("Loretto Ó Scanaill", "Loretto Scanaill", familiar) == (
        "a layout no pair showed (Aa A Aa); character no pair held: 'Ó'; "
        "the suggestion drops 'Ó', which no pair held; the suggestion treats a word unlike the pairs did")
    # a character that is not printable is named; one kept is not said to be dropped
    assert signals("JONES,\xa0Mary", "Mary Jones", familiar) == "character no pair held: no-break space"
    assert signals("Zoë", "Zoë", familiar) == "a layout no pair showed (Aa); character no pair held: 'ë'"
    assert signals("Pky Rd", "Pky Road", familiar) == "the suggestion treats a word unlike the pairs did"
    assert signals("BROWN, Ann", "Ann Brown", familiar) == ""  # a shape, characters and words seen
    assert signals("too long", None, familiar) == "a layout no pair showed (aa aa)"  # no suggestion to judge
    assert signals("Ann Lee", "Ann Lee", None) is None  # a bundle that does not say
    # a bundle with words only (no shapes or characters stored): what it can say
    assert signals("Pky Rd", "Pky Road", Familiar(None, None, familiar.words)) == (
        "the suggestion treats a word unlike the pairs did")
    # many new characters: the first few, and how many more
    assert signals("ÀÁÂÃÄÅÆÇ", "ÀÁÂÃÄÅÆÇ", familiar).endswith("'À', 'Á', 'Â', 'Ã', 'Ä' and 3 more")
    plan = plan_batch([(1, "Loretto Ó Scanaill", None)], [Prediction("Loretto Scanaill", 0.4, "ok")],
                      target(familiar=familiar), NOW, sample_room=0)
    assert "the suggestion drops 'Ó', which no pair held" in plan.review[0]["signals"]


def test_a_suggestion_ending_outside_the_targets_closed_class_of_last_words_says_so():
    pairs = [(f"{n} {name} {raw}", f"{n} {name} {clean}") for n, name in ((12, "Oak"), (7, "Mill"), (301, "Rocha"))
             for raw, clean in (("Street", "St"), ("Av", "Ave"), ("Pkwy", "Pkwy"), ("Trail", "Trl"))]
    familiar = Familiar(None, None, Familiar.of(None, pairs).words)
    assert signals("18067 Oak Pky", "18067 Oak Pky", familiar) == (
        "the suggestion ends in a word no pair's target ended in ('pky')")
    assert signals("18067 Oak Pkwy", "18067 Oak Pkwy", familiar) == ""
