"""People's decisions win: on real SQLite and PostgreSQL databases, a decision (approve, reject,
edit, or a value typed into the column by hand) survives every later run of every model version,
is audited, and is undone by ``strseq revert`` like any run; revert of a cleaning run closes its
open review rows; the CLI (``strseq review ...``) does what it says."""

from __future__ import annotations

import csv
import json

import pytest
import sqlalchemy as sa
from fixtures.tables import people

from integration.cli_harness import run_strseq
from strseq_tasks.data.db import AUDIT, DECISIONS, REVIEW, RUNS, reflect_table
from strseq_tasks.jobs.clean import clean_table
from strseq_tasks.jobs.clean_report import ModelIdentity
from strseq_tasks.jobs.decide import Decision, decide
from strseq_tasks.jobs.revert import RevertConflict, revert_run
from strseq_tasks.jobs.review_queue import QueueFilter, decision_pairs, queue
from strseq_tasks.serve.runtime import Prediction

ROWS = [(1, "john smith"), (2, "ann lee?"), (3, "bob ray?"), (4, "mary jones"), (5, "zoë brown?")]


def version(n: int) -> ModelIdentity:
    return ModelIdentity("names", n, f"sha-{n}")


class Shout:
    """A stand-in model whose every version disagrees with people: upper case, unsure (0.5) of
    values with '?', sure (0.99) of the rest; ``sure`` makes it sure of everything."""

    def __init__(self, sure: bool = False):
        self.sure = sure

    def __call__(self, texts):
        return [Prediction(t.upper(), 0.99 if self.sure or "?" not in t else 0.5, "ok") for t in texts]


@pytest.fixture
def engine(database_url):
    engine = sa.create_engine(database_url)
    people(engine, ROWS)
    yield engine
    engine.dispose()


def column(engine, name="name_clean") -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.text(f"SELECT id, {name} FROM people ORDER BY id")).all())


def table(engine, name: str, **where) -> list[dict]:
    t = sa.Table(name, sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(t).where(*(t.c[k] == v for k, v in where.items()))
                                              .order_by(*t.primary_key.columns)).mappings()]


def open_ids(engine) -> dict[str, int]:
    return {r["key"]: r["id"] for r in table(engine, REVIEW, status="open")}


def test_a_value_typed_into_the_output_column_survives_every_later_model(engine):
    """The issue's finding: set name_clean by hand, clean with a new version: it was overwritten."""
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    clean_table(engine, user, version(1), Shout())
    assert column(engine)[1] == "JOHN SMITH"
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE people SET name_clean = 'HUMAN FIX' WHERE id = 1"))
        conn.execute(sa.text("UPDATE people SET name_clean = 'Ann Lee' WHERE id = 2"))  # answers a review row
    report = clean_table(engine, user, version(2), Shout(sure=True))
    assert column(engine)[1] == "HUMAN FIX" and column(engine)[2] == "Ann Lee"
    assert report.decided == 2 and report.changed == 2  # rows 3 and 5 (4 holds the answer already): not 1 or 2
    found = {d["key"]: (d["action"], d["source_value"], d["value"]) for d in table(engine, DECISIONS)}
    assert found == {"1": ("hand_edit", "john smith", "HUMAN FIX"), "2": ("hand_edit", "ann lee?", "Ann Lee")}
    assert not [a for a in table(engine, AUDIT) if a["key"] in ("1", "2") and a["run_id"] == report.run_id]
    assert [r["status"] for r in table(engine, REVIEW, key="2")] == ["edited"]  # the question is answered
    again = clean_table(engine, user, version(3), Shout(sure=True))
    assert column(engine)[1] == "HUMAN FIX" and again.decided == 2  # and every version after


def test_approve_reject_and_edit_are_audited_survive_new_models_and_revert(engine):
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    clean_table(engine, user, version(1), Shout())
    ids = open_ids(engine)
    assert set(ids) == {"2", "3", "5"}
    done = decide(engine, [Decision(ids["2"], "approve"), Decision(ids["3"], "reject"),
                           Decision(ids["5"], "edit", "Zoë Brown")], by="ana", note="checked the CRM")
    assert sorted(done.applied) == sorted(ids.values()) and done.changed == 2 and not done.refused
    assert column(engine) == {1: "JOHN SMITH", 2: "ANN LEE?", 3: None, 4: "MARY JONES", 5: "Zoë Brown"}
    decisions = {d["key"]: d for d in table(engine, DECISIONS)}
    assert {k: (d["action"], d["value"], d["decided_by"], d["note"]) for k, d in decisions.items()} == {
        "2": ("approve", "ANN LEE?", "ana", "checked the CRM"), "3": ("reject", "bob ray?", "ana", "checked the CRM"),
        "5": ("edit", "Zoë Brown", "ana", "checked the CRM")}
    audit = {a["key"]: (a["old_value"], a["new_value"], a["model_name"]) for a in table(engine, AUDIT,
                                                                                          run_id=done.runs[0])}
    assert audit == {"2": (None, "ANN LEE?", "person"), "5": (None, "Zoë Brown", "person")}
    assert table(engine, RUNS, run_id=done.runs[0])[0]["decided"] == 3
    # a new model version, sure of everything, changes nothing a person decided
    later = clean_table(engine, user, version(2), Shout(sure=True))
    assert later.decided == 3 and column(engine)[3] is None and column(engine)[5] == "Zoë Brown"
    assert not open_ids(engine)
    # undo the decisions: values restored, decisions no longer in force, questions open again
    assert revert_run(engine, done.runs[0]) == 2
    assert column(engine)[5] is None and set(open_ids(engine)) == {"2", "3", "5"}
    assert {d["status"] for d in table(engine, DECISIONS)} == {"reverted"}
    assert decision_pairs(engine) == []


def test_a_decision_on_a_row_whose_input_changed_is_refused(engine):
    user = reflect_table(engine, "people", "id", "name", None)  # in place
    clean_table(engine, user, version(1), Shout())
    ids = open_ids(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE people SET name = 'bobby ray?' WHERE id = 3"))
    done = decide(engine, [Decision(ids["3"], "approve"), Decision(ids["2"], "edit", "Ann Lee")], by="ana")
    assert done.applied == [ids["2"]] and [i for i, _ in done.refused] == [ids["3"]]
    assert "input changed" in done.refused[0][1]
    assert column(engine, "name")[2] == "Ann Lee" and column(engine, "name")[3] == "bobby ray?"
    assert ids["3"] in open_ids(engine).values()  # a refused decision leaves its question open
    clean_table(engine, user, version(2), Shout(sure=True))  # in place, the person's value is the input now
    assert column(engine, "name")[2] == "Ann Lee"


def test_a_decided_row_whose_input_changes_is_only_ever_suggested(engine):
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    clean_table(engine, user, version(1), Shout())
    decide(engine, [Decision(open_ids(engine)["2"], "edit", "Ann Lee")], by="ana")
    with engine.begin() as conn:  # a reload: the decision was about another value
        conn.execute(sa.text("UPDATE people SET name = 'ann lee jr' WHERE id = 2"))
    report = clean_table(engine, user, version(2), Shout(sure=True))
    assert column(engine)[2] == "Ann Lee" and report.review == 1
    assert [(r["reason"], r["suggestion"]) for r in table(engine, REVIEW, key="2", status="open")] == [
        ("changed_since_decision", "ANN LEE JR")]
    assert clean_table(engine, user, version(2), Shout(sure=True)).review == 0  # asked once per model version


def test_a_hand_edit_in_place_after_strseq_changed_the_row_is_kept(engine):
    user = reflect_table(engine, "people", "id", "name", None)
    clean_table(engine, user, version(1), Shout())
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE people SET name = 'John Smith' WHERE id = 1"))  # strseq wrote JOHN SMITH
    report = clean_table(engine, user, version(2), Shout(sure=True))
    assert column(engine, "name")[1] == "John Smith" and report.decided == 1
    assert [(d["source_value"], d["value"]) for d in table(engine, DECISIONS)] == [("john smith", "John Smith")]


def test_a_change_a_surer_model_applies_closes_the_rows_open_question(engine):
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    clean_table(engine, user, version(1), Shout())
    assert queue(engine, QueueFilter())[0] == 3
    clean_table(engine, user, version(2), Shout(sure=True))  # writes what version 1 only suggested
    assert column(engine)[2] == "ANN LEE?" and queue(engine, QueueFilter())[0] == 0
    assert sorted(r["status"] for r in table(engine, REVIEW)) == ["superseded"] * 3


def test_a_new_question_replaces_the_open_one_and_revert_closes_a_runs_questions(engine):
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    clean_table(engine, user, version(1), Shout())
    second = clean_table(engine, user, version(2), Shout())
    statuses = [(r["key"], r["status"]) for r in table(engine, REVIEW)]
    assert sorted(statuses) == sorted([(k, s) for k in ("2", "3", "5") for s in ("superseded", "open")])
    assert queue(engine, QueueFilter())[0] == 3  # the queue holds each row once
    revert_run(engine, second.run_id)
    assert queue(engine, QueueFilter())[0] == 0
    assert {r["status"] for r in table(engine, REVIEW, run_id=second.run_id)} == {"reverted"}


def test_revert_of_a_cleaning_run_refuses_to_undo_a_persons_edit(engine):
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    run = clean_table(engine, user, version(1), Shout())
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE people SET name_clean = 'John Smith' WHERE id = 1"))
    with pytest.raises(RevertConflict, match="changed since"):
        revert_run(engine, run.run_id)
    assert column(engine)[1] == "John Smith"


def test_the_review_commands_list_decide_in_bulk_and_export_pairs(engine, database_url, tmp_path):
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    clean_table(engine, user, version(1), Shout())
    listed = run_strseq("review", "list", "--db", database_url, "--limit", "2")
    assert listed.returncode == 0, listed.stderr
    assert "3 row(s) to review (showing 1-2)" in listed.stdout and "more: --offset 2" in listed.stdout
    as_json = json.loads(run_strseq("review", "list", "--db", database_url, "--search", "ZOË", "--json").stdout)
    assert [r["value"] for r in as_json["rows"]] == ["zoë brown?"] and as_json["total"] == 1
    dry = run_strseq("review", "approve", "--db", database_url, "--table", "people", "--dry-run")
    assert "dry run: would have approved 3 row(s), 3 value(s) written" in dry.stdout
    assert column(engine)[2] is None and len(open_ids(engine)) == 3
    nothing = run_strseq("review", "approve", "--db", database_url)
    assert nothing.returncode == 2 and nothing.stderr.startswith("error: say which rows to approve")
    ids = open_ids(engine)
    edit = run_strseq("review", "edit", "--db", database_url, str(ids["5"]), "--value", "Zoë Brown", "--by", "li")
    assert edit.returncode == 0, edit.stderr
    bulk = run_strseq("review", "approve", "--db", database_url, "--max-confidence", "0.6", "--by", "li")
    assert bulk.returncode == 0 and "approved 2 row(s)" in bulk.stdout and "strseq revert" in bulk.stdout
    again = run_strseq("review", "reject", "--db", database_url, str(ids["2"]))
    assert again.returncode == 2 and "not open any more" in again.stderr
    shown = run_strseq("review", "show", "--db", database_url, str(ids["5"]))
    assert "edit by li" in shown.stdout and "'Zoë Brown'" in shown.stdout
    out = tmp_path / "decided.csv"
    exported = run_strseq("review", "export", "--db", database_url, "--out", out)
    assert exported.returncode == 0, exported.stderr
    with open(out, newline="", encoding="utf-8") as f:
        pairs = {(r["input"], r["target"], r["action"]) for r in csv.DictReader(f)}
    assert pairs == {("ann lee?", "ANN LEE?", "approve"), ("bob ray?", "BOB RAY?", "approve"),
                     ("zoë brown?", "Zoë Brown", "edit")}
    missing = run_strseq("review", "show", "--db", database_url, "999")
    assert missing.returncode == 2 and missing.stderr.strip() == "error: no review row 999"


def test_a_database_from_an_older_strseq_gets_the_new_table_and_columns(engine):
    """strseq_runs without `decided`, no strseq_decisions: the first run adds them, rows kept."""
    from strseq_tasks.data.db import job_tables

    _, new = job_tables()
    old = sa.MetaData()
    for name, t in new.items():
        if name != DECISIONS:
            sa.Table(name, old, *(sa.Column(c.name, c.type, primary_key=c.primary_key) for c in t.columns
                                  if c.name != "decided"))
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(old.tables[RUNS].insert().values(run_id="old-run", table_name="people", key_column="id",
                                                      column_name="name", target_column="name", status="completed"))
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    report = clean_table(engine, user, version(1), Shout())
    assert report.review == 3 and sa.inspect(engine).has_table(DECISIONS)
    runs = {r["run_id"]: r["decided"] for r in table(engine, RUNS)}
    assert runs == {"old-run": None, report.run_id: 0}
    assert "ix_strseq_audit_row" in {i["name"] for i in sa.inspect(engine).get_indexes(AUDIT)}


def test_the_review_commands_read_an_older_strseqs_queue_before_any_run_upgrades_it(engine, database_url):
    """A review table without the columns a later strseq added (`new_words`, `signals`): listing
    and showing it reads them as unknown and writes nothing; the next run adds them."""
    from strseq_tasks.data.db import job_tables

    _, new = job_tables()
    old = sa.MetaData()
    for name, t in new.items():
        if name != DECISIONS:
            sa.Table(name, old, *(sa.Column(c.name, c.type, primary_key=c.primary_key) for c in t.columns
                                  if c.name not in ("new_words", "signals", "decided")))
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(old.tables[REVIEW].insert().values(
            run_id="old-run", table_name="people", key="2", column_name="name_clean", value="ann lee?",
            suggestion="Ann Lee?", confidence=0.5, reason="low_confidence", status="open",
            created=sa.func.current_timestamp()))
    listed = run_strseq("review", "list", "--db", database_url, "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)["rows"]
    assert (row["value"], row["new_words"], row["signals"]) == ("ann lee?", None, None)
    shown = run_strseq("review", "show", "--db", database_url, str(row["id"]))
    assert shown.returncode == 0 and "'ann lee?' -> 'Ann Lee?'" in shown.stdout, shown.stderr
    assert "signals" not in {c["name"] for c in sa.inspect(engine).get_columns(REVIEW)}  # reading wrote nothing
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    clean_table(engine, user, version(1), Shout())
    assert {"new_words", "signals"} <= {c["name"] for c in sa.inspect(engine).get_columns(REVIEW)}


def test_revert_undoes_an_older_strseqs_run_before_any_run_upgrades_its_tables(engine, database_url):
    """A run an older strseq made (its strseq_runs without the columns added since, no
    strseq_decisions): `strseq revert` restores it, as it did then."""
    from strseq_tasks.data.db import job_tables

    _, new = job_tables()
    old = sa.MetaData()
    for name, t in new.items():
        if name != DECISIONS:
            sa.Table(name, old, *(sa.Column(c.name, c.type, primary_key=c.primary_key) for c in t.columns
                                  if c.name not in ("new_words", "signals", "decided", "by_program")))
    old.create_all(engine)
    reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    with engine.begin() as conn:
        conn.execute(old.tables[RUNS].insert().values(run_id="old-run", table_name="people", key_column="id",
                                                      column_name="name", target_column="name_clean",
                                                      status="completed"))
        conn.execute(sa.text("UPDATE people SET name_clean = 'JOHN SMITH' WHERE id = 1"))
        conn.execute(old.tables[AUDIT].insert().values(
            run_id="old-run", table_name="people", key="1", column_name="name_clean", old_value=None,
            new_value="JOHN SMITH", source_value="john smith", confidence=0.99, model_name="names", model_version=1,
            applied_at=sa.func.current_timestamp()))
    reverted = run_strseq("revert", "--db", database_url, "--run-id", "old-run")
    assert reverted.returncode == 0, reverted.stderr
    assert column(engine)[1] is None and table(engine, RUNS)[0]["status"] == "reverted"
