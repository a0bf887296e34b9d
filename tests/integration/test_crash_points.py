"""SIGKILL the cleaning job at seeded points in each phase (read, predict, write, commit), then
re-run: every row applied exactly once, the audit table agrees with the table, and reverting
the runs restores every original value byte for byte. SQLite and PostgreSQL.

The job kills itself at the chosen point (the n-th batch read, the n-th predict call, the n-th
write statement about to run, the n-th commit about to be sent), which is what an outside
SIGKILL landing there would do, but lands exactly where the seed says."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import unicodedata

import pytest
import sqlalchemy as sa
from campaign import pick  # tests/ is on sys.path
from fixtures.tables import people

from strseq_tasks.data.db import AUDIT, RUNS, LockedError, job_tables, reflect_table
from strseq_tasks.jobs.clean import clean_table
from strseq_tasks.jobs.clean_report import ModelIdentity
from strseq_tasks.jobs.revert import revert_run
from strseq_tasks.serve.runtime import Prediction

PHASES = ("read", "predict", "write", "commit")
POINTS_PER_PHASE = 5  # 20 seeded points per database
BATCH = 4
# originals with what byte-for-byte restoring must keep: NFD accents, odd spaces, astral
# characters, quotes, an empty string (kept as is), NULL (skipped)
ODD = ["  Ana  María ", unicodedata.normalize("NFD", "josé müller"), "o'brien \"jr\"", "zoë\u200bsmith",
       "😀 emoji person", "ŁUKASZ  nowak", "", None, "tab\tinside", "x" * 300]
ORIGINALS = [ODD[i % len(ODD)] if i % 3 == 0 else f"person number {i}" for i in range(1, 31)]

JOB = textwrap.dedent("""
    import json, os, signal, sys
    import sqlalchemy as sa
    from sqlalchemy import event
    import strseq_tasks.jobs.clean as cleaning
    from strseq_tasks.jobs.clean import clean_table
    from strseq_tasks.jobs.clean_report import ModelIdentity
    from strseq_tasks.data.db import reflect_table
    from strseq_tasks.serve.runtime import Prediction

    url, phase, at, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    counts = dict.fromkeys(("read", "predict", "write", "commit"), 0)

    def hit(point):
        counts[point] += 1
        if point == phase and counts[point] == at:
            os.kill(os.getpid(), signal.SIGKILL)

    real_read = cleaning.read_batches
    def read_batches(*args, **kwargs):
        for rows in real_read(*args, **kwargs):
            hit("read")  # a batch was read, nothing of it processed yet
            yield rows
    cleaning.read_batches = read_batches

    def title_case(texts):
        hit("predict")
        return [Prediction(t.title(), 0.95, "ok") for t in texts]

    engine = sa.create_engine(url)
    @event.listens_for(engine, "before_cursor_execute")
    def before_write(conn, cursor, statement, *rest):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            hit("write")
    @event.listens_for(engine, "commit")
    def before_commit(conn):
        hit("commit")

    user = reflect_table(engine, "people", "id", "name", None)
    clean_table(engine, user, ModelIdentity("names", 1, "sha-1"), title_case, batch_size=batch)
    print(json.dumps(counts))
""")


def _title_case(texts):
    return [Prediction(t.title(), 0.95, "ok") for t in texts]


def _fresh(engine: sa.Engine) -> None:
    job_tables()[0].drop_all(engine)
    people(engine, enumerate(ORIGINALS, 1), replace=True)


def _job(url: str, phase: str, at: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", JOB, url, phase, str(at), str(BATCH)], env=env,
                          capture_output=True, text=True, timeout=120)


def _rerun(engine: sa.Engine):
    deadline = time.monotonic() + 10
    while True:  # the server may take a moment to see the killed session's advisory lock go
        try:
            return clean_table(engine, reflect_table(engine, "people", "id", "name", None),
                               ModelIdentity("names", 1, "sha-1"), _title_case, batch_size=BATCH)
        except LockedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _rows(engine: sa.Engine, sql: str):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).all()


def _phase_counts(engine: sa.Engine, url: str) -> dict[str, int]:
    """How many of each point a whole run passes on this database: seeded points are drawn from these."""
    _fresh(engine)
    done = _job(url, "none", 0)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("phase", PHASES)
def test_sigkill_at_seeded_points_then_rerun_and_revert(database_url, phase, ledger):
    engine = sa.create_engine(database_url)
    backend = engine.dialect.name
    total = _phase_counts(engine, database_url)[phase]
    points = pick(total, POINTS_PER_PHASE, phase)
    expected = [v if v is None or v == "" else v.title() for v in ORIGINALS]
    for at in points:
        _fresh(engine)
        killed = _job(database_url, phase, at)
        assert killed.returncode == -signal.SIGKILL, (phase, at, killed.returncode, killed.stderr[-2000:])
        _rerun(engine)
        keys = [int(k) for (k,) in _rows(engine, f"SELECT key FROM {AUDIT}")]
        final = [v for (v,) in _rows(engine, "SELECT name FROM people ORDER BY id")]
        audit = _rows(engine, f"SELECT key, old_value, new_value FROM {AUDIT}")
        changed = {i for i, (old, new) in enumerate(zip(ORIGINALS, expected), 1) if old != new}
        lost = sum(1 for i in changed if final[i - 1] != expected[i - 1] or i not in keys)
        double = len(keys) - len(set(keys))
        # the audit table agrees with the table: each row's record says what it was and is
        disagree = sum(1 for key, old, new in audit
                       if old != ORIGINALS[int(key) - 1] or new != final[int(key) - 1])
        statuses = sorted(s for (s,) in _rows(engine, f"SELECT status FROM {RUNS}"))
        for (run_id,) in _rows(engine, f"SELECT run_id FROM {RUNS}"):
            revert_run(engine, run_id)
        restored = [v for (v,) in _rows(engine, "SELECT name FROM people ORDER BY id")]
        not_restored = sum(1 for a, b in zip(restored, ORIGINALS) if a != b)
        ledger("crash", f"cleaning job SIGKILLed at {phase} point {at} of {total}, then re-run and reverted",
               backend, rows_lost=lost + not_restored, rows_double_applied=double)
        assert (lost, double, disagree, not_restored) == (0, 0, 0, 0), (phase, at)
        assert set(keys) == changed
        assert statuses in (["completed"], ["completed", "interrupted"]), statuses
        assert final == expected
    engine.dispose()
