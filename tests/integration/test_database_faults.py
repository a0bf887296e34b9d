"""Database faults under a running cleaning job: PostgreSQL sessions terminated
(pg_terminate_backend from a second connection, as a server restart, failover or DBA would), rows
or a whole database locked by another session past the lock timeout. The job retries a batch
that is safe to retry, fails clearly when the fault persists, and never half-applies."""

from __future__ import annotations

import logging
import time
import uuid
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from fixtures.tables import people
from sqlalchemy import event

from strseq_tasks.data import locks
from strseq_tasks.data.db import AUDIT, RUNS, LockedError, create_engine, reflect_table
from strseq_tasks.jobs import clean as cleaning
from strseq_tasks.jobs.clean import BatchLocked, clean_table
from strseq_tasks.jobs.clean_report import ModelIdentity
from strseq_tasks.serve.runtime import Prediction

ROWS = 30
BATCH = 4
PG_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def pg(database_url):
    app = f"strseq-job-{uuid.uuid4().hex[:8]}"  # only this test's job sessions are terminated
    url = sa.make_url(database_url).update_query_dict({"application_name": app})
    engine = create_engine(url)
    people(engine, [(i, f"person number {i}") for i in range(1, ROWS + 1)])
    admin = sa.create_engine(database_url)

    def terminate() -> int:
        with admin.connect() as conn:
            return conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                        "WHERE application_name = :app"), {"app": app}).scalar()

    yield engine, terminate
    engine.dispose()
    admin.dispose()


def _title_case(texts):
    return [Prediction(t.title(), 0.95, "ok") for t in texts]


def _clean(engine, predict=_title_case):
    return clean_table(engine, reflect_table(engine, "people", "id", "name", None), ModelIdentity("names", 1, "sha-1"),
                       predict, batch_size=BATCH)


def _check(engine):
    """(rows lost, rows applied twice, audit rows disagreeing with the table)"""
    with engine.connect() as conn:
        keys = [int(k) for (k,) in conn.execute(sa.text(f"SELECT key FROM {AUDIT}"))]
        names = dict(conn.execute(sa.text("SELECT id, name FROM people")).all())
        audit = conn.execute(sa.text(f"SELECT key, old_value, new_value FROM {AUDIT}")).all()
    lost = sum(1 for i in range(1, ROWS + 1) if names[i] != f"Person Number {i}" or i not in keys)
    disagree = sum(1 for k, old, new in audit if old != f"person number {k}" or new != names[int(k)])
    return lost, len(keys) - len(set(keys)), disagree


@PG_ONLY
def test_sessions_terminated_between_batches(pg, ledger, caplog):
    engine, terminate = pg
    calls = {"n": 0}

    def predict(texts):
        calls["n"] += 1
        if calls["n"] == 3:  # every session of the job, the lock's included
            assert terminate() >= 1
        return _title_case(texts)

    with caplog.at_level(logging.WARNING):
        report = _clean(engine, predict)
    lost, double, disagree = _check(engine)
    warned = [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
    ledger("database fault", "every session of the job terminated (pg_terminate_backend) between two batches",
           "postgresql", rows_lost=lost, rows_double_applied=double, error=(warned or [""])[0])
    assert (lost, double, disagree) == (0, 0, 0) and report.changed == ROWS
    assert any("connection holding the lock" in w for w in warned), warned  # said, and the run still completed
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT status FROM {RUNS}")).scalars().all() == ["completed"]


@PG_ONLY
def test_a_lost_lock_is_taken_again_before_a_second_run_can_start(pg, database_url, ledger, caplog, monkeypatch):
    engine, terminate = pg
    monkeypatch.setattr(locks, "LOCK_CHECK_S", 0.05)
    admin = sa.create_engine(database_url)
    app = engine.url.query["application_name"]
    calls, second = {"n": 0}, {}

    def lock_held() -> bool:
        with admin.connect() as conn:
            return bool(conn.execute(sa.text(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = :app"), {"app": app}).scalar())

    def predict(texts):
        calls["n"] += 1
        if calls["n"] == 3:
            assert terminate() >= 1  # the lock's session with the rest: the server released the lock
            deadline = time.monotonic() + 30
            while not lock_held() and time.monotonic() < deadline:  # the run's keeper takes it again
                time.sleep(0.05)
            try:
                _clean(engine)  # a second run on the same column, started now
            except LockedError as exc:
                second["error"] = str(exc)
        return _title_case(texts)

    with caplog.at_level(logging.WARNING):
        report = _clean(engine, predict)
    admin.dispose()
    lost, double, disagree = _check(engine)
    ledger("concurrency", "the session holding the run's PostgreSQL lock terminated mid-run, then a second run "
           "started on the same column", "postgresql", rows_lost=lost, rows_double_applied=double,
           error=second.get("error", "the second run was not refused"))
    assert "another strseq run is cleaning people.name" in second.get("error", ""), second
    assert (lost, double, disagree) == (0, 0, 0) and report.changed == ROWS
    assert any("took the lock on people.name again" in r.getMessage() for r in caplog.records)
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT status FROM {RUNS}")).scalars().all() == ["completed"]


@PG_ONLY
def test_session_terminated_inside_a_batch_transaction_is_retried(pg, ledger, caplog, monkeypatch):
    engine, terminate = pg
    monkeypatch.setattr(cleaning, "RETRY_WAIT_S", 0.01)
    updates = {"n": 0}

    @event.listens_for(engine, "before_cursor_execute")
    def kill_mid_batch(conn, cursor, statement, *rest):
        if statement.lstrip().upper().startswith("UPDATE PEOPLE"):
            updates["n"] += 1
            if updates["n"] == 6:  # the second row of the second batch: its first row is written
                terminate()

    with caplog.at_level(logging.WARNING):
        report = _clean(engine)
    lost, double, disagree = _check(engine)
    warned = [r.getMessage() for r in caplog.records if "during a batch" in r.getMessage()]
    ledger("database fault", "the job's session terminated inside a batch's transaction, after one of its writes",
           "postgresql", rows_lost=lost, rows_double_applied=double, error=(warned or [""])[0])
    assert (lost, double, disagree) == (0, 0, 0) and report.changed == ROWS
    assert len(warned) == 1 and "trying it again" in warned[0]


@PG_ONLY
def test_a_connection_that_keeps_dying_fails_the_run_clearly_and_a_rerun_finishes(pg, ledger, monkeypatch):
    engine, terminate = pg
    monkeypatch.setattr(cleaning, "RETRY_WAIT_S", 0.01)
    updates = {"n": 0}

    def kill_every_time(conn, cursor, statement, *rest):
        if statement.lstrip().upper().startswith("UPDATE PEOPLE"):
            updates["n"] += 1
            if updates["n"] >= 9:  # from the third batch on, every try dies
                terminate()

    event.listen(engine, "before_cursor_execute", kill_every_time)
    with pytest.raises(sa.exc.OperationalError) as caught:
        _clean(engine)
    event.remove(engine, "before_cursor_execute", kill_every_time)
    with engine.connect() as conn:
        applied = conn.execute(sa.text(f"SELECT count(*) FROM {AUDIT}")).scalar()
        status = conn.execute(sa.text(f"SELECT status FROM {RUNS}")).scalars().all()
    assert applied == 2 * BATCH and status == ["failed"]  # whole batches only: two went through
    _clean(engine)
    lost, double, disagree = _check(engine)
    ledger("database fault", f"the job's session terminated on every try of a batch ({cleaning.BATCH_RETRIES} "
           "retries), then re-run", "postgresql", rows_lost=lost, rows_double_applied=double,
           error=str(caught.value.orig))
    assert (lost, double, disagree) == (0, 0, 0)


def _people(engine):
    people(engine, [(i, f"person number {i}") for i in range(1, ROWS + 1)])


@PG_ONLY
@pytest.mark.parametrize("released", [True, False])
def test_a_row_locked_by_another_session(pg, released, ledger, monkeypatch, caplog):
    engine, _ = pg
    monkeypatch.setattr(cleaning, "LOCK_TIMEOUT_S", 0.3)
    monkeypatch.setattr(cleaning, "RETRY_WAIT_S", 0.05)
    holder = engine.connect()
    holder.execute(sa.text("SELECT * FROM people WHERE id = 10 FOR UPDATE"))  # held in an open transaction
    if released:  # the other session ends its transaction while the job waits to try again
        def release_then_wait(seconds):
            holder.rollback()
            time.sleep(seconds)

        monkeypatch.setattr(cleaning, "time", SimpleNamespace(sleep=release_then_wait))
    error = ""
    with caplog.at_level(logging.WARNING):
        if released:
            _clean(engine)
        else:
            with pytest.raises(BatchLocked) as caught:
                _clean(engine)
            error = str(caught.value)
            with engine.connect() as conn:
                applied = conn.execute(sa.text(f"SELECT count(*) FROM {AUDIT}")).scalar()
            assert applied == 2 * BATCH  # the two batches before the locked row, and nothing of its batch
            assert "stayed locked by another session" in error and "keys 9 to 12" in error
            holder.rollback()
            _clean(engine)  # the lock gone, a re-run finishes the job
    holder.close()
    warned = [r.getMessage() for r in caplog.records if "held a lock" in r.getMessage()]
    lost, double, disagree = _check(engine)
    ledger("database fault", "a row locked by another session (SELECT ... FOR UPDATE) past the lock timeout, "
           + ("released after the first try" if released else "never released, then re-run"), "postgresql",
           rows_lost=lost, rows_double_applied=double, error=error or (warned or [""])[0])
    assert (lost, double, disagree) == (0, 0, 0) and warned


def test_a_sqlite_database_locked_by_another_writer(tmp_path, ledger, monkeypatch, caplog):
    monkeypatch.setattr(cleaning, "RETRY_WAIT_S", 0.05)
    path = tmp_path / "db.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.2})  # a short busy timeout
    _people(engine)
    writer = sa.create_engine(f"sqlite:///{path}").raw_connection()
    calls = {"n": 0}

    def predict(texts):
        calls["n"] += 1
        if calls["n"] == 3:  # another process starts a write transaction and leaves it open
            writer.execute("BEGIN IMMEDIATE")
        return _title_case(texts)

    with caplog.at_level(logging.ERROR), pytest.raises(BatchLocked) as caught:
        _clean(engine, predict)
    writer.rollback()
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {AUDIT}")).scalar() == 2 * BATCH
    assert any("could not mark run" in r.getMessage() for r in caplog.records)  # the lock blocks that too
    _clean(engine)
    lost, double, disagree = _check(engine)
    ledger("database fault", "the SQLite database locked by another writer through every try of a batch, "
           "then re-run", "sqlite", rows_lost=lost, rows_double_applied=double, error=caught.value)
    assert (lost, double, disagree) == (0, 0, 0)
    with engine.connect() as conn:
        assert sorted(conn.execute(sa.text(f"SELECT status FROM {RUNS}")).scalars()) == ["completed", "interrupted"]
    writer.close()
    engine.dispose()


def test_schema_changes_between_runs(database_url, ledger):
    engine = create_engine(database_url)
    _people(engine)
    model = ModelIdentity("names", 1, "sha-1")

    def run():
        user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
        return clean_table(engine, user, model, _title_case, batch_size=BATCH)

    assert run().changed == ROWS
    # the output column dropped and re-created: the markers say done, the values are gone
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE people DROP COLUMN name_clean"))
    again = run()
    with engine.connect() as conn:
        outputs = conn.execute(sa.text("SELECT name_clean FROM people ORDER BY id")).scalars().all()
    lost = sum(o != f"Person Number {i}" for i, o in enumerate(outputs, 1))
    ledger("database fault", "the output column dropped between runs, re-created by the next run",
           engine.dialect.name, rows_lost=lost, rows_double_applied=0)
    assert lost == 0 and again.changed == ROWS
    # the input column or the whole table gone: refused before anything is written
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE people DROP COLUMN name"))
    with pytest.raises(cleaning.DatabaseJobError, match="no text column 'name'") as caught:
        run()
    ledger("database fault", "the input column dropped between runs", engine.dialect.name, error=caught.value)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE people"))
    with pytest.raises(cleaning.DatabaseJobError, match="no table") as caught:
        run()
    ledger("database fault", "the table dropped between runs", engine.dialect.name, error=caught.value)
    engine.dispose()


def test_a_read_only_sqlite_database_is_refused_before_anything_is_written(tmp_path, ledger):
    path = tmp_path / "db.sqlite"
    _people(sa.create_engine(f"sqlite:///{path}"))
    before = path.read_bytes()
    engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(cleaning.NotWritable, match="cannot create strseq's tables") as caught:
        _clean(engine)
    ledger("database fault", "a read-only SQLite database", "sqlite", rows_lost=0 if path.read_bytes() == before else 1,
           error=caught.value)
    assert path.read_bytes() == before
    engine.dispose()


@PG_ONLY
def test_a_role_that_may_not_update_the_table_is_refused_with_nothing_written(pg, database_url, ledger):
    engine, _ = pg
    role = f"strseq_ro_{uuid.uuid4().hex[:8]}"
    schema = sa.make_url(database_url).query["options"].split("=", 1)[1]
    with engine.begin() as conn:  # may read the table and keep strseq's own tables, may not update it
        conn.execute(sa.text(f'CREATE ROLE {role} LOGIN'))
        conn.execute(sa.text(f'GRANT USAGE, CREATE ON SCHEMA "{schema}" TO {role}'))
        conn.execute(sa.text(f'GRANT SELECT ON people TO {role}'))
    limited = create_engine(sa.make_url(database_url).set(username=role))
    try:
        with pytest.raises(cleaning.NotWritable, match="cannot write people.name") as caught:
            _clean(limited)
        with engine.connect() as conn:
            audit = conn.execute(sa.text(f"SELECT count(*) FROM {AUDIT}")).scalar()
            changed = conn.execute(sa.text("SELECT count(*) FROM people WHERE name <> 'person number ' || id")).scalar()
            status = conn.execute(sa.text(f"SELECT status FROM {RUNS}")).scalars().all()
        ledger("database fault", "a role that may read the table but not update it", "postgresql",
               rows_lost=changed, rows_double_applied=0, error=caught.value)
        assert (audit, changed, status) == (0, 0, ["failed"])
    finally:
        limited.dispose()
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP OWNED BY {role}'))
            conn.execute(sa.text(f'DROP ROLE {role}'))


def test_two_runs_on_two_columns_of_one_table_at_once(database_url, ledger):
    """Locks are per column: both runs go ahead side by side, writing the same rows' other columns."""
    from concurrent.futures import ThreadPoolExecutor

    setup = create_engine(database_url)
    meta = sa.MetaData()
    two_columns = sa.Table("people", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text),
                           sa.Column("city", sa.Text))
    meta.create_all(setup)
    with setup.begin() as conn:
        conn.execute(two_columns.insert(), [{"id": i, "name": f"person number {i}", "city": f"city number {i}"}
                                            for i in range(1, ROWS + 1)])

    def run(column):
        engine = create_engine(database_url)
        try:
            user = reflect_table(engine, "people", "id", column, f"{column}_clean", create_output=True)
            return clean_table(engine, user, ModelIdentity("names", 1, "sha-1"), _title_case, batch_size=BATCH)
        finally:
            engine.dispose()

    # the output columns first: adding a column to a table two runs write would wait on their locks
    for column in ("name", "city"):
        reflect_table(setup, "people", "id", column, f"{column}_clean", create_output=True)
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(run, ["name", "city"]))
    with setup.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, name_clean, city_clean FROM people ORDER BY id")).all()
        audit = conn.execute(sa.text(f"SELECT column_name, key FROM {AUDIT}")).all()
    lost = sum((n, c) != (f"Person Number {i}", f"City Number {i}") for i, n, c in rows)
    double = len(audit) - len(set(audit))
    ledger("concurrency", "two cleaning runs at once on two columns of one table", setup.dialect.name,
           rows_lost=lost, rows_double_applied=double)
    assert [r.changed for r in reports] == [ROWS, ROWS] and (lost, double, len(audit)) == (0, 0, 2 * ROWS)
    setup.dispose()
