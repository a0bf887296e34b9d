"""Tables shaped wrongly, on real SQLite and PostgreSQL: keys that do not name one row, NULL and
non-text keys, values that are not text, odd names, one file spelled two ways, things dropped
between a run and its revert. Each is refused clearly or handled, and nothing is lost: no row
changes without its audit row, and revert restores what was there."""

from __future__ import annotations

import logging
import os
import sqlite3

import pytest
import sqlalchemy as sa

from strseq_tasks.data.db import AUDIT, RUNS, DatabaseJobError, LockedError, create_engine, reflect_table
from strseq_tasks.data.locks import job_lock
from strseq_tasks.jobs.clean import KeyNotUnique, clean_table
from strseq_tasks.jobs.clean_report import ModelIdentity
from strseq_tasks.jobs.revert import revert_run
from strseq_tasks.serve.runtime import Prediction

MODEL = ModelIdentity("title", 1, "sha-title")


def title_case(texts):
    """A stand-in model: title case, confident."""
    return [Prediction(t.title(), 0.95, "ok") for t in texts]


def dump(engine, table="people"):
    """Every row as stored, comparable byte for byte (SQLite: hex of each value, so BLOBs and bytes
    that are not UTF-8 can be compared too)."""
    t = sa.Table(table, sa.MetaData(), autoload_with=engine)
    columns = [sa.func.hex(c) if engine.dialect.name == "sqlite" else c for c in t.columns]
    with engine.connect() as conn:
        return sorted((tuple(r) for r in conn.execute(sa.select(*columns)).all()), key=repr)


def audit_rows(engine) -> int:
    if not sa.inspect(engine).has_table(AUDIT):
        return 0
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {AUDIT}")).scalar()


def make(engine, ddl: list[str], rows: list[dict], table="people"):
    with engine.begin() as conn:
        for statement in ddl:
            conn.exec_driver_sql(statement)
        if rows:
            t = sa.Table(table, sa.MetaData(), autoload_with=conn)
            conn.execute(t.insert(), rows)


DUPLICATED = [{"k": k, "name": n} for k, n in [("a", "ANN"), ("a", "BOB"), ("b", "CAT"), ("b", "DAN"), ("c", "EVE")]]
# each way a key can look unique to a careless check while rows share it
NOT_PROOF = {
    "partial unique index": ["CREATE TABLE people (k TEXT, name TEXT)",
                             "CREATE UNIQUE INDEX people_k ON people (k) WHERE k > 'zzz'"],
    "unique index on an expression": ["CREATE TABLE people (k TEXT, name TEXT)",
                                      "CREATE UNIQUE INDEX people_k ON people ((k || name))"],
    "composite primary key": ["CREATE TABLE people (k TEXT, name TEXT, PRIMARY KEY (k, name))"],
    "composite unique constraint": ["CREATE TABLE people (k TEXT, name TEXT, UNIQUE (k, name))"],
}


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")  # the test's own
@pytest.mark.parametrize("shape", list(NOT_PROOF))
def test_a_key_not_proven_unique_is_refused_before_anything_is_written(database_url, shape, ledger):
    engine = sa.create_engine(database_url)
    make(engine, NOT_PROOF[shape], DUPLICATED)
    before = dump(engine)
    with pytest.raises(DatabaseJobError, match="neither the primary key nor unique") as caught:
        user = reflect_table(engine, "people", "k", "name", None)
        clean_table(engine, user, MODEL, title_case)
    lost = int(dump(engine) != before)
    ledger("hostile input", f"clean --in-place keyed on a column with duplicates and a {shape}",
           engine.dialect.name, rows_lost=lost, rows_double_applied=0, error=caught.value)
    assert not lost and audit_rows(engine) == 0
    engine.dispose()


def test_an_invalid_unique_index_is_no_proof(ledger):
    """CREATE UNIQUE INDEX CONCURRENTLY on duplicates fails and leaves an INVALID index behind."""
    url = os.environ.get("STRSEQ_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("STRSEQ_TEST_POSTGRES_URL is not set")
    import uuid

    schema = f"strseq_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        conn.exec_driver_sql(f'CREATE TABLE "{schema}".people (k TEXT, name TEXT)')
        conn.exec_driver_sql(f"INSERT INTO \"{schema}\".people VALUES ('a', 'ANN'), ('a', 'BOB')")
        with pytest.raises(sa.exc.IntegrityError):
            conn.exec_driver_sql(f'CREATE UNIQUE INDEX CONCURRENTLY people_k ON "{schema}".people (k)')
    engine = sa.create_engine(url)
    try:
        with pytest.raises(DatabaseJobError, match="neither the primary key nor unique") as caught:
            reflect_table(engine, "people", "k", "name", None, schema=schema)
        ledger("hostile input", "clean keyed on a column whose unique index is INVALID (a failed CREATE UNIQUE "
               "INDEX CONCURRENTLY)", "postgresql", rows_lost=0, error=caught.value)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        engine.dispose()
        admin.dispose()


@pytest.mark.parametrize("batch_size, where", [(2, "in a batch of their own"), (3, "across batches")])
@pytest.mark.parametrize("in_place", [True, False], ids=["in place", "output column"])
def test_rows_sharing_a_key_roll_their_batch_back(database_url, monkeypatch, in_place, batch_size, where, ledger):
    """Whatever proof of uniqueness was accepted, rows sharing a key are never written: a batch
    holding a key twice, or an UPDATE by key that touches more than one row, rolls the batch back
    and fails the run, with every earlier change audited (and revertable)."""
    engine = sa.create_engine(database_url)
    make(engine, ["CREATE TABLE people (k TEXT, name TEXT, out TEXT)"],
         [{"k": k, "name": n, "out": None} for k, n in [("0", "ZED"), ("1", "AMY"), ("a", "ANN"), ("a", "ANN")]])
    monkeypatch.setattr("strseq_tasks.data.db.key_is_unique", lambda *a: True)  # proofs that do not hold
    monkeypatch.setattr("strseq_tasks.data.db.shared_key", lambda *a: None)
    user = reflect_table(engine, "people", "k", "name", None if in_place else "out")
    before = dump(engine)
    with pytest.raises(KeyNotUnique, match="several rows" if batch_size == 2 else "matched 2 rows") as caught:
        clean_table(engine, user, MODEL, title_case, batch_size=batch_size)
    after = dump(engine)
    changed = sum(a != b for a, b in zip(before, after))
    audited = audit_rows(engine)
    with engine.connect() as conn:
        status = conn.execute(sa.text(f"SELECT status FROM {RUNS}")).scalar()
    ledger("hostile input", f"two rows sharing a key, {where} ({'in place' if in_place else 'output column'})",
           engine.dialect.name, rows_lost=changed - audited, rows_double_applied=0, error=caught.value)
    assert changed == audited == (2 if batch_size == 2 else 0) and status == "failed"
    assert not any(b[0] == "a" and a != b for a, b in zip(after, before))  # the shared key's rows untouched
    engine.dispose()


def test_a_unique_index_with_another_collation_than_its_column_is_no_proof(tmp_path, ledger):
    """SQLite: a unique index on k COLLATE BINARY holds 'a' and 'A', which WHERE k = ? on a NOCASE
    column finds together."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    make(engine, ["CREATE TABLE people (k TEXT COLLATE NOCASE, name TEXT)",
                  "CREATE UNIQUE INDEX people_k ON people (k COLLATE BINARY)"],
         [{"k": "a", "name": "ANN"}, {"k": "A", "name": "ANN"}])
    before = dump(engine)
    with pytest.raises(DatabaseJobError, match="on several rows") as caught:
        reflect_table(engine, "people", "k", "name", None)
    ledger("hostile input", "clean keyed on a NOCASE column whose unique index is COLLATE BINARY ('a' and 'A')",
           "sqlite", rows_lost=int(dump(engine) != before), rows_double_applied=0, error=caught.value)
    assert dump(engine) == before
    engine.dispose()


def test_cleaning_the_key_column_in_place_is_refused(database_url, ledger):
    """It would rename rows: their audit rows (and revert) point at keys that no longer exist."""
    engine = sa.create_engine(database_url)
    make(engine, ["CREATE TABLE people (name TEXT PRIMARY KEY, age INTEGER)"], [{"name": "ANN", "age": 1}])
    before = dump(engine)
    with pytest.raises(DatabaseJobError, match="would change the keys") as caught:
        reflect_table(engine, "people", "name", "name", None)
    ledger("hostile input", "clean --in-place with --column the same as --key", engine.dialect.name,
           rows_lost=int(dump(engine) != before), error=caught.value)
    user = reflect_table(engine, "people", "name", "name", "name_clean", create_output=True)  # into a column: fine
    assert clean_table(engine, user, MODEL, title_case).changed == 1
    engine.dispose()


def test_a_schema_written_into_the_table_name_or_misspelled_is_pointed_at(database_url):
    engine = sa.create_engine(database_url)
    make(engine, ["CREATE TABLE people (k TEXT PRIMARY KEY, name TEXT)"], [{"k": "1", "name": "ANN"}])
    with engine.connect() as conn:
        schema = "main" if engine.dialect.name == "sqlite" else \
            conn.execute(sa.text("SELECT current_schema()")).scalar()
    with pytest.raises(DatabaseJobError, match=f"is named with --schema {schema} --table people"):
        reflect_table(engine, f"{schema}.people", "k", "name", "name_clean")
    with pytest.raises(DatabaseJobError, match=f"no table 'peple' in schema '{schema}' \\(tables: people\\)"):
        reflect_table(engine, "peple", "k", "name", "name_clean", schema=schema)
    with pytest.raises(DatabaseJobError, match=f"no schema '{schema}x' \\(schemas: .*{schema}"):
        reflect_table(engine, "people", "k", "name", "name_clean", schema=f"{schema}x")
    assert reflect_table(engine, "people", "k", "name", None, schema=schema).table.name == "people"
    engine.dispose()


NULL_KEYS = {
    "sqlite": ["CREATE TABLE people (k TEXT PRIMARY KEY, name TEXT)"],  # SQLite lets a TEXT primary key be NULL
    "postgresql": ["CREATE TABLE people (k TEXT UNIQUE, name TEXT)"],
}


def test_null_keys_are_refused_up_front(database_url, ledger):
    engine = sa.create_engine(database_url)
    make(engine, NULL_KEYS[engine.dialect.name],
         [{"k": None, "name": "ANN"}, {"k": None, "name": "BOB"}, {"k": "c", "name": "CAT"}])
    before = dump(engine)
    with pytest.raises(DatabaseJobError, match="holds 2 NULL") as caught:
        reflect_table(engine, "people", "k", "name", None)
    ledger("hostile input", "clean keyed on a unique column holding 2 NULL keys", engine.dialect.name,
           rows_lost=int(dump(engine) != before), rows_double_applied=0, error=caught.value)
    assert dump(engine) == before
    engine.dispose()


@pytest.mark.parametrize("ddl, key", [("k TEXT PRIMARY KEY", "X'00FF'"), ("k INTEGER UNIQUE", "1.5")],
                         ids=["BLOB in a TEXT key", "REAL in an INTEGER key"])
def test_sqlite_keys_that_are_neither_text_nor_integer_are_refused(tmp_path, ddl, key, ledger):
    path = tmp_path / "k.db"
    with sqlite3.connect(path) as conn:
        conn.execute(f"CREATE TABLE people ({ddl}, name TEXT)")
        conn.execute(f"INSERT INTO people VALUES ({key}, 'ANN'), (2, 'BOB')")
    engine = sa.create_engine(f"sqlite:///{path}")
    with pytest.raises(DatabaseJobError, match="holds 1 NULL .or, on SQLite, non-text") as caught:
        reflect_table(engine, "people", "k", "name", None)
    ledger("hostile input", f"clean keyed on a SQLite {ddl} holding {key}", "sqlite", rows_lost=0, error=caught.value)
    engine.dispose()


def test_one_sqlite_file_spelled_two_ways_is_one_lock(tmp_path, monkeypatch, ledger):
    path = tmp_path / "crm.db"
    sqlite3.connect(path).close()
    (tmp_path / "link.db").symlink_to(path)
    monkeypatch.chdir(tmp_path)
    spellings = [f"sqlite:///{path}", "sqlite:///crm.db", "sqlite:///./crm.db", "sqlite:///link.db",
                 f"sqlite:///file:{path}?mode=rw&uri=true"]
    engines = [sa.create_engine(url) for url in spellings]
    refused = []
    with job_lock(engines[0], "people", "name"):
        for engine in engines[1:]:
            with pytest.raises(LockedError) as caught:
                with job_lock(engine, "people", "name"):
                    pass
            refused.append(caught.value)
    ledger("concurrency", "a second run on one SQLite file spelled another way (relative, ./, a symbolic "
           "link, a file: URI)", "sqlite", rows_double_applied=0, error=refused[0])
    assert len(refused) == 4
    with job_lock(engines[1], "people", "name"):  # released: any spelling takes it now
        pass


HOSTILE_NAMES = ["pct%name", "co:lon", "%(x)s and :y", "50%:off"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_percent_and_colon_in_names_reach_sql_and_validation_intact(database_url, name, ledger):
    from strseq_tasks.data.validation import validate_column

    table, key, column, output = f"t {name}", f"k {name}", f"c {name}", f"out {name}"
    meta = sa.MetaData()
    t = sa.Table(table, meta, sa.Column(key, sa.Integer, primary_key=True), sa.Column(column, sa.Text))
    meta.create_all(sa.create_engine(database_url))
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(t.insert(), [{key: i, column: v} for i, v in enumerate(["ANN LEE", "BOB", None, "CAT"], 1)])
    user = reflect_table(engine, table, key, column, output, create_output=True)
    report = validate_column(engine, user.table, user.column, max_len=64)
    run = clean_table(engine, user, MODEL, title_case)
    written = sa.Table(table, sa.MetaData(), autoload_with=engine).c[output]
    with engine.connect() as conn:
        out = conn.execute(sa.select(written).order_by(written.table.c[key])).scalars().all()
    restored = revert_run(engine, run.run_id)
    ledger("hostile input", f"table, key, column and output names holding {name!r}: validated, cleaned, reverted",
           engine.dialect.name, rows_lost=sum(a != b for a, b in zip(out, ["Ann Lee", "Bob", None, "Cat"])),
           rows_double_applied=0)
    assert report.success and report.rows == 4, report.summary()
    assert out == ["Ann Lee", "Bob", None, "Cat"] and restored == 3
    engine.dispose()


def _sqlite_with_junk(path):
    """people(id, name, name_clean): rows 2 and 3 hold a BLOB and bytes that are not UTF-8 as name,
    row 5 a BLOB in the output column; the rest ordinary text."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, name_clean TEXT)")
        conn.execute("INSERT INTO people VALUES (1, 'ANN', NULL), (2, X'00FF41', NULL), "
                     "(3, CAST(X'C328414E4E' AS TEXT), NULL), (4, 'BOB', NULL), (5, 'CAT', X'FFFE'), "
                     "(6, 'DAN', NULL)")


def test_values_that_are_not_text_are_left_alone_and_every_run_gets_past_them(tmp_path, caplog, ledger):
    path = tmp_path / "junk.db"
    _sqlite_with_junk(path)
    engine = sa.create_engine(f"sqlite:///{path}")
    before = dump(engine)
    user = reflect_table(engine, "people", "id", "name", "name_clean")
    with caplog.at_level(logging.WARNING, logger="strseq.clean"):
        first = clean_table(engine, user, MODEL, title_case, batch_size=3)
    second = clean_table(engine, user, MODEL, title_case, batch_size=3)
    after = dict((r[0], r) for r in dump(engine))
    untouched = all(after[key] == row for key, row in ((r[0], r) for r in before) if key in ("32", "33", "35"))
    ledger("hostile input", "SQLite TEXT column holding a BLOB, bytes that are not UTF-8, and a BLOB in the "
           "output column: left alone, counted as skipped, run after run", "sqlite",
           rows_lost=int(not untouched), rows_double_applied=0, error=caplog.records[0].getMessage())
    assert (first.changed, first.skipped) == (3, 3) and (second.already_done, second.skipped) == (3, 3)
    assert untouched and "not text" in caplog.text and "keys 2, 3" in caplog.text
    assert revert_run(engine, first.run_id) == 3 and dump(engine) == before
    engine.dispose()


def test_a_key_that_is_not_utf8_stops_the_run_clearly(tmp_path):
    path = tmp_path / "keys.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE people (k TEXT PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO people VALUES ('a', 'ANN'), (CAST(X'62FF' AS TEXT), 'BOB')")
    engine = sa.create_engine(f"sqlite:///{path}")
    user = reflect_table(engine, "people", "k", "name", None)
    with pytest.raises(DatabaseJobError, match="is not UTF-8 text"):
        clean_table(engine, user, MODEL, title_case, batch_size=1)
    engine.dispose()


@pytest.mark.parametrize("dropped", ["output column", "table"])
def test_revert_after_the_output_column_or_table_was_dropped_says_so(database_url, dropped, ledger):
    engine = sa.create_engine(database_url)
    make(engine, ["CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)"],
         [{"id": 1, "name": "ANN"}, {"id": 2, "name": "BOB"}])
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    run = clean_table(engine, user, MODEL, title_case)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE people" if dropped == "table" else "ALTER TABLE people DROP COLUMN name_clean")
    with pytest.raises(DatabaseJobError, match="cannot be reverted") as caught:
        revert_run(engine, run.run_id)
    ledger("hostile input", f"revert after the run's {dropped} was dropped", engine.dialect.name,
           error=caught.value)
    assert audit_rows(engine) == 2  # the old values are still there
    engine.dispose()


# --- the same, as a user meets it: the real command ------------------------------------------------


def _one_error_line(proc) -> str:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return errors[0]


MISSING_DATABASES = {
    "a mistyped SQLite file": ("sqlite:///typo.db", "no SQLite database at"),
    "a SQLite file under a folder that does not exist": ("sqlite:////nonexistent/dir/x.db", "no SQLite database at"),
    "a SQLite URL naming a folder": ("sqlite:///.", "is a folder"),
    "postgres+psycopg:// (no such dialect)": ("postgres+psycopg://postgres@127.0.0.1:5432/test",
                                               "not a database URL strseq can use"),
    "a PostgreSQL port nobody listens on (with a password)": ("postgresql+psycopg://postgres:Pw-s3cret@127.0.0.1:1/test",
                                                              "cannot connect to"),
    "a PostgreSQL port nobody listens on (password as a query parameter)": (
        "postgresql+psycopg://postgres@127.0.0.1:1/test?password=Pw-s3cret", "cannot connect to"),
}


# every case through review (the lightest command); clean and revert share its one code path (create_engine)
@pytest.mark.parametrize("command, cases", [("review list", list(MISSING_DATABASES)),
                                            ("clean", list(MISSING_DATABASES)[::3]),
                                            ("revert", list(MISSING_DATABASES)[1::3])])
def test_commands_refuse_a_database_that_is_not_there_and_create_nothing(tmp_path, lower_bundle, command, cases,
                                                                         ledger):
    args = {"clean": ["--table", "people", "--key", "id", "--column", "name", "--model", lower_bundle],
            "review list": [], "revert": ["--run-id", "some-run"]}[command]
    from .cli_harness import run_strseq

    for case in cases:
        url, message = MISSING_DATABASES[case]
        proc = run_strseq(*command.split(), "--db", url, *args, cwd=tmp_path, timeout=300)
        error = _one_error_line(proc)
        created = sorted(p.name for p in tmp_path.iterdir())
        ledger("hostile input", f"strseq {command} on {case}", "sqlite" if "sqlite" in url else "postgresql",
               rows_lost=0, error=error)
        assert message in error and "Pw-s3cret" not in proc.stderr + proc.stdout, error
        assert created == [], created  # no empty database left behind


def test_clean_refuses_the_reported_partial_index_table_before_prefect_starts(database_url, lower_bundle, ledger):
    from .cli_harness import run_strseq

    engine = sa.create_engine(database_url)
    make(engine, NOT_PROOF["partial unique index"], DUPLICATED)
    before = dump(engine)
    proc = run_strseq("clean", "--db", database_url, "--table", "people", "--key", "k", "--column", "name",
                      "--model", lower_bundle, "--in-place", "--threshold", "0")
    error = _one_error_line(proc)
    ledger("hostile input", "strseq clean --in-place keyed on duplicates under a partial unique index (keys a,a,b,b,c)",
           engine.dialect.name, rows_lost=int(dump(engine) != before), rows_double_applied=0, error=error)
    assert "neither the primary key nor unique" in error and dump(engine) == before
    assert "Starting temporary server" not in proc.stderr  # refused before any flow ran
    engine.dispose()


def test_revert_command_after_the_table_was_dropped(tmp_path, ledger):
    from .cli_harness import run_strseq

    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = sa.create_engine(url)
    make(engine, ["CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)"], [{"id": 1, "name": "ANN"}])
    run = clean_table(engine, reflect_table(engine, "people", "id", "name", None), MODEL, title_case)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE people")
    engine.dispose()
    error = _one_error_line(run_strseq("revert", "--db", url, "--run-id", run.run_id))
    ledger("hostile input", "strseq revert after the run's table was dropped", "sqlite", error=error)
    assert "no longer exists" in error


def test_validation_reads_values_that_are_not_text_without_stopping(tmp_path, ledger):
    """GX lists offending values: a too-long value that is not UTF-8 must be listed, not crash it."""
    from strseq_tasks.data.validation import validate_column

    path = tmp_path / "junk.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO people VALUES (1, 'ANN'), (2, X'FFFF'), (3, CAST(X'C328" + "41" * 30 + "' AS TEXT))")
    engine = sa.create_engine(f"sqlite:///{path}")
    user = reflect_table(engine, "people", "id", "name", None)
    report = validate_column(engine, user.table, user.column, max_len=10, min_within_length=0.9)
    ledger("hostile input", "validation of a SQLite column whose too-long value is not UTF-8", "sqlite",
           rows_lost=0, error=report.summary())
    assert not report.success and report.rows == 3
    assert [c.unexpected for c in report.failures] == [1]  # the 32-byte value, listed despite its bytes
    engine.dispose()


# --- seeded: random tables with random defects (the campaign runs more, with other seeds) ----------

NAME_PARTS = ["%", ":", "%(x)s", " :y", '"', "'", ";", " ", ".", "\\", "é", "名", "-", "?", "$1", "::"]
VALUE_POOL = ["JOHN SMITH", "mary jones", "Ann Lee", "", "   ", None, "zoë", "e\u0301mile", "😀 ok", "O'NEIL",
              "line\nbreak", "x" * 40]
KEY_DEFECTS = {"NULL keys", "duplicate keys under a partial unique index", "composite primary key"}


def _random_case(rng, dialect: str) -> dict:
    def name(prefix):
        return prefix + "".join(rng.choice(NAME_PARTS) for _ in range(rng.randint(1, 3)))

    defects = [None, None, *sorted(KEY_DEFECTS)] + (["BLOB values", "values not UTF-8"] if dialect == "sqlite" else [])
    return {"table": name("t"), "key": name("k"), "column": name("c"), "output": name("o"),
            "text_key": rng.random() < 0.5, "in_place": rng.random() < 0.5, "defect": rng.choice(defects),
            "values": [rng.choice(VALUE_POOL) for _ in range(rng.randint(5, 15))]}


def _build(engine, case: dict) -> None:
    prep = engine.dialect.identifier_preparer
    table, key, column = prep.quote(case["table"]), prep.quote(case["key"]), prep.quote(case["column"])
    key_type = "TEXT" if case["text_key"] else "INTEGER"
    keys = [str(i) if case["text_key"] else i for i in range(1, len(case["values"]) + 1)]
    defect = case["defect"]
    ddl = {"NULL keys": f"CREATE TABLE {table} ({key} {key_type} UNIQUE, {column} TEXT)",
           "composite primary key": f"CREATE TABLE {table} ({key} {key_type}, {column} TEXT, "
                                    f"PRIMARY KEY ({key}, {column}))",
           "duplicate keys under a partial unique index": f"CREATE TABLE {table} ({key} {key_type}, {column} TEXT)"
           }.get(defect, f"CREATE TABLE {table} ({key} {key_type} PRIMARY KEY, {column} TEXT)")
    values = list(case["values"])
    if defect == "NULL keys":
        keys[0] = keys[1] = None
    if defect == "duplicate keys under a partial unique index":
        keys[1] = keys[0]
    if defect == "composite primary key":  # the key repeats; the pair does not (and may not be NULL)
        values = [v or "" for v in values]
        keys[1], values[1] = keys[0], f"{values[0]}!"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(ddl, ())  # (): psycopg reads the %% the quoting doubled as %
        if defect == "duplicate keys under a partial unique index":
            cursor.execute(f"CREATE UNIQUE INDEX {prep.quote(case['table'] + '_ix')} ON {table} ({key}) "
                           f"WHERE {key} IS NULL", ())
        mark = "?" if engine.dialect.name == "sqlite" else "%s"
        for i, (k, v) in enumerate(zip(keys, values)):
            if defect == "BLOB values" and i % 3 == 1:
                cursor.execute(f"INSERT INTO {table} VALUES ({mark}, {mark})", (k, b"\x00\xff"))
            elif defect == "values not UTF-8" and i % 3 == 1:
                cursor.execute(f"INSERT INTO {table} VALUES ({mark}, CAST({mark} AS TEXT))", (k, b"\xc3(bad"))
            else:
                cursor.execute(f"INSERT INTO {table} VALUES ({mark}, {mark})", (k, v))
        raw.commit()
    finally:
        raw.close()


def _snapshot(engine, case: dict) -> dict:
    t = sa.Table(case["table"], sa.MetaData(), autoload_with=engine)
    cols = [sa.func.hex(c) if engine.dialect.name == "sqlite" else c for c in t.columns]
    with engine.connect() as conn:
        return {repr(r[0]): tuple(r) for r in conn.execute(sa.select(*cols).order_by(t.c[case["key"]]))}


def test_random_hostile_tables_are_refused_or_cleaned_with_every_change_audited(database_url, ledger):
    import random

    from campaign import SCALE, SEED  # tests/ is on sys.path

    engine = sa.create_engine(database_url)
    rng = random.Random(f"{SEED}:hostile-tables:{engine.dialect.name}")
    for index in range(6 * SCALE):
        case = _random_case(rng, engine.dialect.name)
        case["table"] += f"_{index}"
        _build(engine, case)
        before = _snapshot(engine, case)
        key_kind, mode = "text" if case["text_key"] else "integer", "in place" if case["in_place"] else "output column"
        what = (f"seeded table {index + 1} ({case['defect'] or 'no defect'}, {key_kind} key, {mode}), "
                f"names like {case['column']!r}")
        output = None if case["in_place"] else case["output"]
        try:
            user = reflect_table(engine, case["table"], case["key"], case["column"], output, create_output=True)
        except DatabaseJobError as exc:
            lost = int(_snapshot(engine, case) != before)
            ledger("hostile input", f"{what}: refused", engine.dialect.name, rows_lost=lost, rows_double_applied=0,
                   error=exc)
            assert case["defect"] in KEY_DEFECTS and not lost, (case, exc)
            continue
        assert case["defect"] not in KEY_DEFECTS, case
        run = clean_table(engine, user, MODEL, title_case, batch_size=rng.randint(1, 6))
        after = _snapshot(engine, case)
        with engine.connect() as conn:
            audited = conn.execute(sa.text(f"SELECT count(*), count(DISTINCT key) FROM {AUDIT} WHERE run_id = :r"),
                                   {"r": run.run_id}).one()
        changed = sum(after[k][:2] != before[k][:2] or (not case["in_place"] and after[k][2] not in (None, ""))
                      for k in before)
        revert_run(engine, run.run_id)
        restored = _snapshot(engine, case)
        restored = {k: v[:2] for k, v in restored.items()} if not case["in_place"] else restored
        original = {k: v[:2] for k, v in before.items()}
        lost = sum(restored[k] != original[k] for k in original) + abs(changed - audited[0])
        ledger("hostile input", f"{what}: cleaned and reverted", engine.dialect.name, rows_lost=lost,
               rows_double_applied=audited[0] - audited[1])
        assert changed == audited[0] == audited[1] == run.changed and lost == 0, (case, run, audited)
    engine.dispose()


def test_an_output_column_with_a_length_limit_sends_longer_suggestions_to_review(database_url, ledger):
    engine = sa.create_engine(database_url)
    make(engine, ["CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, name_clean VARCHAR(5))"],
         [{"id": 1, "name": "ANN", "name_clean": None}, {"id": 2, "name": "BARBARA", "name_clean": None}])
    user = reflect_table(engine, "people", "id", "name", "name_clean")
    run = clean_table(engine, user, MODEL, title_case)
    with engine.connect() as conn:
        written = conn.execute(sa.text("SELECT name_clean FROM people ORDER BY id")).scalars().all()
        reasons = conn.execute(sa.text("SELECT reason, suggestion FROM strseq_review")).all()
    ledger("hostile input", "an output column VARCHAR(5) and a 7-character suggestion: sent to review",
           engine.dialect.name, rows_lost=int(written != ["Ann", None]), rows_double_applied=0)
    assert (run.changed, run.review) == (1, 1) and written == ["Ann", None]
    assert [tuple(r) for r in reasons] == [("longer_than_column", "Barbara")]
    engine.dispose()


def test_a_constraint_the_database_enforces_on_the_output_is_one_clear_error(database_url, ledger):
    """A unique output column, and two rows whose suggestions are the same value."""
    from strseq_tasks.jobs.clean import RowsRefused

    engine = sa.create_engine(database_url)
    make(engine, ["CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, name_clean TEXT UNIQUE)"],
         [{"id": i, "name": n, "name_clean": None} for i, n in [(1, "AMY"), (2, "ANN"), (3, "ann")]])
    user = reflect_table(engine, "people", "id", "name", "name_clean")
    before = dump(engine)
    with pytest.raises(RowsRefused, match="refused a change to people.name_clean") as caught:
        clean_table(engine, user, MODEL, title_case, batch_size=2)
    after = dump(engine)
    changed = sum(a != b for a, b in zip(before, after))
    ledger("hostile input", "a UNIQUE output column and two rows cleaned to the same value", engine.dialect.name,
           rows_lost=changed - audit_rows(engine), rows_double_applied=0, error=caught.value)
    assert changed == audit_rows(engine) == 2  # the first batch stays applied and audited; the second none
    engine.dispose()
