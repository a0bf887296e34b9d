"""The cleaning job's database side on real SQLite and PostgreSQL databases."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from strseq_tasks.core.shapes import Familiar, shapes_of
from strseq_tasks.data.db import AUDIT, PROCESSED, REVIEW, RUNS, DatabaseJobError, LockedError, reflect_table
from strseq_tasks.data.locks import job_lock
from strseq_tasks.jobs.clean import clean_table
from strseq_tasks.jobs.clean_report import ModelIdentity
from strseq_tasks.jobs.revert import RevertConflict, revert_run
from strseq_tasks.serve.runtime import Prediction

MODEL = ModelIdentity("names", 3, "sha-of-version-3")
ROWS = [(1, "john smith"), (2, "Mary Jones"), (3, None), (4, ""), (5, "ann lee?"), (6, "x" * 30),
        (7, "bob  ray"), (8, "Zoë Brown"), (9, "peter o'neil"), (10, "   ")]


class TitleCase:
    """A stand-in model: title case; unsure (0.5) about values with '?'; too long past 20."""

    def __init__(self):
        self.calls = 0

    def __call__(self, texts):
        self.calls += 1
        return [Prediction(t, 0.0, "too_long") if len(t) > 20 else
                Prediction(t.title(), 0.5 if "?" in t else 0.95, "ok") for t in texts]


@pytest.fixture
def engine(database_url):
    engine = sa.create_engine(database_url)
    meta = sa.MetaData()
    people = sa.Table("people", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text),
                      sa.Column("age", sa.Integer))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(people.insert(), [{"id": k, "name": v, "age": 30 + k} for k, v in ROWS])
    yield engine
    engine.dispose()


def dump(engine, table="people"):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(f'SELECT * FROM "{table}" ORDER BY 1')).fetchall()]


def count(engine, table, **where):
    t = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(t).where(
            *(t.c[k] == v for k, v in where.items()))).scalar()


def test_output_column_mode_with_audit_and_review(engine):
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    report = clean_table(engine, user, MODEL, TitleCase(), threshold=0.9, batch_size=3)
    assert (report.changed, report.unchanged, report.review, report.skipped) == (3, 2, 2, 3)
    rows = {r[0]: r for r in dump(engine)}
    assert rows[1][1] == "john smith" and rows[1][3] == "John Smith"  # input column untouched
    assert rows[2][3] is None  # unchanged: nothing written, recorded as checked
    assert rows[5][3] is None and rows[6][3] is None  # below threshold / too long: to review
    assert count(engine, AUDIT) == report.changed == 3
    with engine.connect() as conn:
        review = {r.key: (r.reason, r.suggestion) for r in conn.execute(sa.text(f"SELECT * FROM {REVIEW}"))}
    assert review == {"5": ("low_confidence", "Ann Lee?"), "6": ("too_long", None)}
    assert count(engine, RUNS, status="completed") == 1


def test_a_new_version_asks_nothing_about_a_value_it_agrees_with_that_the_last_one_wrote(engine):
    """The demo's retrain was unsure of rows its predecessor had written, right, at 0.99: a question
    whose answer the column already holds. Only a suggestion that differs is asked."""
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    first = clean_table(engine, user, MODEL, TitleCase(), threshold=0.9)
    written = dump(engine)

    class Unsure(TitleCase):  # agrees with version 3 but on "bob  ray"; sure of nothing
        def __call__(self, texts):
            return [Prediction("Bob Ray" if p.text == "Bob  Ray" else p.text, 0.5, p.status)
                    for p in super().__call__(texts)]

    second = clean_table(engine, user, ModelIdentity("names", 4, "sha-of-version-4"), Unsure(), threshold=0.9)
    assert dump(engine) == written and count(engine, AUDIT) == first.changed == 3
    with engine.connect() as conn:
        asked = {r.key: r.suggestion for r in conn.execute(
            sa.text(f"SELECT key, suggestion FROM {REVIEW} WHERE run_id = :run"), {"run": second.run_id})}
    assert asked == {"5": "Ann Lee?", "6": None, "7": "Bob Ray"}  # not "John Smith", not "Peter O'Neil"
    assert (second.changed, second.unchanged, second.review) == (0, 4, 3)


def test_a_review_row_records_the_words_its_pairs_never_showed_and_what_set_it_apart(engine):
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    pairs = [("lee, ann", "Ann Lee"), ("x", "X")]
    familiar = Familiar.of(frozenset(shapes_of(a for a, _ in pairs)), pairs)
    clean_table(engine, user, ModelIdentity("names", 3, "sha-3", familiar), TitleCase(), threshold=0.9)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT key, new_words, signals FROM {REVIEW}")).fetchall()
    # "ann lee?": both words shown, a layout and a "?" the pairs lacked; "xxx...": a new word and a
    # layout, its characters seen (too long for the model: no suggestion to judge)
    assert {r.key: (r.new_words, r.signals) for r in rows} == {
        "5": ("", "a layout no pair showed (aa aa?); character no pair held: '?'"),
        "6": ("x" * 30, "a layout no pair showed (aa)")}
    # a model whose bundle does not say (trained before): NULL, not "nothing new"
    clean_table(engine, user, ModelIdentity("names", 4, "sha-4"), TitleCase(), threshold=0.9)
    with engine.connect() as conn:
        later = conn.execute(sa.text(f"SELECT new_words, signals FROM {REVIEW} WHERE status = 'open'")).fetchall()
    assert [tuple(r) for r in later] == [(None, None), (None, None)]


def test_in_place_run_then_revert_restores_the_table_byte_for_byte(engine):
    before = dump(engine)
    user = reflect_table(engine, "people", "id", "name", None)
    report = clean_table(engine, user, MODEL, TitleCase(), batch_size=4)
    after = dump(engine)
    assert after != before and dict((r[0], r[1]) for r in after)[1] == "John Smith"
    audit = Counter(r[0] for r in sa.create_engine(engine.url).connect().execute(
        sa.text(f"SELECT key FROM {AUDIT}")))
    assert sum(audit.values()) == report.changed and max(audit.values()) == 1  # one audit row per change
    assert revert_run(engine, report.run_id) == report.changed
    assert dump(engine) == before
    with pytest.raises(DatabaseJobError, match="already reverted"):
        revert_run(engine, report.run_id)


def test_a_rerun_with_the_same_model_touches_nothing(engine):
    user = reflect_table(engine, "people", "id", "name", None)
    first = clean_table(engine, user, MODEL, TitleCase())
    table, audit = dump(engine), count(engine, AUDIT)
    model = TitleCase()
    second = clean_table(engine, user, MODEL, model)
    assert dump(engine) == table and count(engine, AUDIT) == audit
    assert second.changed == 0 and second.already_done == first.changed + first.unchanged + first.review
    assert model.calls == 0  # nothing left to predict
    third = clean_table(engine, user, ModelIdentity("names", 4, "sha-of-version-4"), TitleCase())
    assert third.already_done == 0  # a new model version looks at every row again


def test_dry_run_writes_nothing(engine):
    before = dump(engine)
    user = reflect_table(engine, "people", "id", "name", None)
    report = clean_table(engine, user, MODEL, TitleCase(), dry_run=True)
    assert report.changed == 3 and report.sample[0]["diff"] == "[-j-]{+J+}ohn [-s-]{+S+}mith"
    assert dump(engine) == before
    assert not any(sa.inspect(engine).has_table(t) for t in (RUNS, AUDIT, REVIEW, PROCESSED))


def test_a_crash_mid_run_then_a_rerun_applies_every_row_exactly_once(engine):
    user = reflect_table(engine, "people", "id", "name", None)

    class Crashes(TitleCase):
        def __call__(self, texts):
            if self.calls == 2:
                raise RuntimeError("killed")
            return super().__call__(texts)

    with pytest.raises(RuntimeError, match="killed"):
        clean_table(engine, user, MODEL, Crashes(), batch_size=3)
    assert count(engine, RUNS, status="failed") == 1
    partial = count(engine, AUDIT)
    assert 0 < partial < 3
    report = clean_table(engine, user, MODEL, TitleCase(), batch_size=3)
    assert report.changed == 3 - partial
    with engine.connect() as conn:
        keys = [r[0] for r in conn.execute(sa.text(f"SELECT key FROM {AUDIT}"))]
    assert len(keys) == len(set(keys)) == 3


def test_a_value_edited_during_the_run_is_left_alone(engine):
    user = reflect_table(engine, "people", "id", "name", None)

    class EditsFirst(TitleCase):
        def __call__(self, texts):
            with engine.begin() as conn:  # a person fixes row 1 while the batch is being predicted
                conn.execute(sa.text("UPDATE people SET name = 'Jon Smith' WHERE id = 1"))
            return super().__call__(texts)

    report = clean_table(engine, user, MODEL, EditsFirst(), batch_size=100)
    assert report.conflicts == 1 and dict((r[0], r[1]) for r in dump(engine))[1] == "Jon Smith"


def test_revert_refuses_when_values_changed_since(engine):
    user = reflect_table(engine, "people", "id", "name", None)
    report = clean_table(engine, user, MODEL, TitleCase())
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE people SET name = 'Johnny' WHERE id = 1"))
    before = dump(engine)
    with pytest.raises(RevertConflict, match="key 1: run wrote 'John Smith', now 'Johnny'"):
        revert_run(engine, report.run_id)
    assert dump(engine) == before


def test_two_runs_on_one_column_cannot_both_apply(engine):
    user = reflect_table(engine, "people", "id", "name", None)
    with job_lock(engine, "people", "name"):
        with pytest.raises(LockedError, match="another strseq run"):
            clean_table(engine, user, MODEL, TitleCase())
    assert clean_table(engine, user, MODEL, TitleCase()).changed == 3  # released


@pytest.mark.parametrize("table, key, column, output, message", [
    ('people"; DROP TABLE people; --', "id", "name", None, "no table"),
    ("people", "id", "nope", None, "no text column 'nope'"),
    ("people", "id", "age", None, "not text"),
    ("people", "age", "name", None, "neither the primary key nor unique"),
    ("people", "name", "name", None, "would change the keys"),
    ("people", "id", "name", "missing_out", "pass --create-output-column"),
    ("people", "id", "name", "age", "not text"),
])
def test_bad_names_and_types_are_refused(engine, table, key, column, output, message, ledger):
    before = dump(engine)
    with pytest.raises(DatabaseJobError, match=message) as caught:
        reflect_table(engine, table, key, column, output)
    ledger("hostile input", f"clean table {table!r}, key {key!r}, column {column!r}, output {output!r}",
           engine.dialect.name, rows_lost=0 if dump(engine) == before else 1, error=caught.value)
    assert dump(engine) == before


def test_hostile_but_real_names_are_quoted(database_url, ledger):
    engine = sa.create_engine(database_url)
    meta = sa.MetaData()
    odd = sa.Table('odd "table"; name', meta, sa.Column("k.e y", sa.Text, primary_key=True),
                   sa.Column("val'ue", sa.Text))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(odd.insert(), [{"k.e y": "a", "val'ue": "john"}, {"k.e y": "b", "val'ue": "Ann"}])
    user = reflect_table(engine, 'odd "table"; name', "k.e y", "val'ue", "out; put", create_output=True)
    report = clean_table(engine, user, MODEL, TitleCase())
    out = sa.Table('odd "table"; name', sa.MetaData(), autoload_with=engine).c["out; put"]
    with engine.connect() as conn:
        written = conn.execute(sa.select(out).order_by(out.table.c["k.e y"])).scalars().all()
    reverted = revert_run(engine, report.run_id)
    with engine.connect() as conn:
        restored = conn.execute(sa.select(out).order_by(out.table.c["k.e y"])).scalars().all()
    ledger("hostile input", "clean and revert a table and columns named with quotes, spaces, dots and semicolons",
           engine.dialect.name, rows_double_applied=0,
           rows_lost=sum(w != e for w, e in zip(written, ["John", None])) + sum(map(bool, restored)))
    assert report.changed == 1 and reverted == 1
    assert written == ["John", None] and restored == [None, None]
    from strseq_tasks.jobs.partitions import plan_partitions

    assert plan_partitions(engine, user, 2) == [(None, "a"), ("a", None)]  # the key read through quoting
    engine.dispose()


def test_repeat_cache_predicts_each_distinct_value_once_and_keeps_order():
    from strseq_tasks.jobs.repeat_cache import RepeatCache

    model = TitleCase()
    seen: list[list[str]] = []

    def predict(texts):
        seen.append(list(texts))
        return model(texts)

    cache = RepeatCache(predict, size=3)
    first = cache(["ann lee", "bob ray", "ann lee"])
    second = cache(["bob ray", "cy twain", "ann lee"])
    assert [p.text for p in first] == ["Ann Lee", "Bob Ray", "Ann Lee"]
    assert [p.text for p in second] == ["Bob Ray", "Cy Twain", "Ann Lee"]
    assert seen == [["ann lee", "bob ray"], ["cy twain"]] and cache.hits == 3
    cache(["dee dee"])  # a fourth distinct value: the least recently used one (bob ray) is forgotten
    cache(["bob ray"])
    assert seen[-1] == ["bob ray"] and len(cache.memory) == 3


def test_a_value_the_model_keeps_is_not_rewritten_in_another_unicode_form():
    import unicodedata

    from strseq_tasks.jobs.clean_plan import CHANGED, UNCHANGED, outcome

    decomposed = unicodedata.normalize("NFD", "José Müller")
    kept = Prediction(unicodedata.normalize("NFC", decomposed), 0.99, "ok")  # the model reads NFC
    assert decomposed != kept.text and outcome(decomposed, kept, 0.9) == UNCHANGED
    assert outcome(decomposed, Prediction("Jose Muller", 0.99, "ok"), 0.9) == CHANGED


def test_tables_of_one_name_in_two_postgresql_schemas_are_two_locks(database_url):
    """On a search_path, `people` in one schema and `people` in another are different columns to
    clean: holding one's lock must not refuse the other (and the same schema is refused)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("schemas on a search_path: PostgreSQL")
    import os
    import uuid

    other = f"strseq_test_{uuid.uuid4().hex[:12]}"
    base = sa.create_engine(os.environ["STRSEQ_TEST_POSTGRES_URL"])
    with base.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{other}"; CREATE TABLE "{other}".people (id int primary key)'))
    here = sa.create_engine(database_url)
    there = sa.create_engine(base.url.update_query_dict({"options": f"-csearch_path={other}"}))
    with here.begin() as conn:
        conn.execute(sa.text("CREATE TABLE people (id int primary key)"))
    try:
        with job_lock(here, "people", "name"):
            with job_lock(there, "people", "name"):  # another schema's table: not refused
                pass
            with pytest.raises(LockedError):
                with job_lock(sa.create_engine(database_url), "people", "name"):
                    pass
    finally:
        here.dispose()
        there.dispose()
        with base.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{other}" CASCADE'))
        base.dispose()
