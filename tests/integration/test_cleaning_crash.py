"""kill -9 in the middle of a cleaning run, then run again: every row applied exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa
from fixtures.tables import people

from strseq_tasks.data.db import AUDIT, RUNS, reflect_table
from strseq_tasks.jobs.clean import clean_table
from strseq_tasks.jobs.clean_report import ModelIdentity
from strseq_tasks.serve.runtime import Prediction

ROWS = 40
JOB = textwrap.dedent("""
    import sys, time
    import sqlalchemy as sa
    from strseq_tasks.jobs.clean import clean_table
    from strseq_tasks.jobs.clean_report import ModelIdentity
    from strseq_tasks.data.db import reflect_table
    from strseq_tasks.serve.runtime import Prediction

    def slow_title_case(texts):
        time.sleep(0.2)  # a batch takes a while: the parent kills us between or inside batches
        return [Prediction(t.title(), 0.95, "ok") for t in texts]

    engine = sa.create_engine(sys.argv[1])
    user = reflect_table(engine, "people", "id", "name", None)
    if len(sys.argv) > 2:  # partitions side by side on threads, as `strseq clean --partitions` runs them
        from concurrent.futures import ThreadPoolExecutor
        from strseq_tasks.jobs.clean import cleaning_run
        from strseq_tasks.jobs.partitions import jobs, plan_partitions, run_partition

        model = ModelIdentity("names", 1, "sha-1")
        with cleaning_run(engine, user, model, 0.9) as report:
            parts = jobs(plan_partitions(engine, user, int(sys.argv[2])), report)
            with ThreadPoolExecutor(len(parts)) as pool:
                for done in pool.map(lambda p: run_partition(engine, user, model, slow_title_case, p, 0.9, 3), parts):
                    report.add(done)
    else:
        clean_table(engine, user, ModelIdentity("names", 1, "sha-1"), slow_title_case, batch_size=3)
""")


def people_table(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    people(engine, [(i, f"person number {i}") for i in range(1, ROWS + 1)])
    return engine


def _count(engine, sql):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar()


@pytest.mark.parametrize("kill_after, partitions", [(2, 1), (7, 1), (5, 3)])
def test_sigkill_then_rerun_applies_every_row_exactly_once(database_url, kill_after, partitions, ledger):
    engine = people_table(database_url)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", JOB, database_url, *([str(partitions)] if partitions > 1 else [])],
                            env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if sa.inspect(engine).has_table(AUDIT) and _count(engine, f"SELECT count(*) FROM {AUDIT}") >= kill_after:
            break
        assert proc.poll() is None, "the job ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _count(engine, f"SELECT count(*) FROM {AUDIT}")
    assert kill_after <= partial < ROWS
    assert _count(engine, f"SELECT count(*) FROM {RUNS} WHERE status = 'running'") == 1  # died mid-run

    def title_case(texts):
        return [Prediction(t.title(), 0.95, "ok") for t in texts]

    report = clean_table(engine, reflect_table(engine, "people", "id", "name", None),
                         ModelIdentity("names", 1, "sha-1"), title_case, batch_size=3)
    assert report.changed == ROWS - partial and report.already_done == partial
    with engine.connect() as conn:
        keys = [r[0] for r in conn.execute(sa.text(f"SELECT key FROM {AUDIT}"))]
        names = [r[0] for r in conn.execute(sa.text("SELECT name FROM people ORDER BY id"))]
    ledger("crash", f"cleaning job SIGKILLed from outside after {kill_after} audit rows, {partitions} partition(s)",
           engine.dialect.name, rows_lost=ROWS - len(set(keys)), rows_double_applied=len(keys) - len(set(keys)))
    assert sorted(keys, key=int) == [str(i) for i in range(1, ROWS + 1)]  # one audit row per row, no more
    assert names == [f"Person Number {i}" for i in range(1, ROWS + 1)]
    with engine.connect() as conn:  # the killed run is marked, not left "running"
        statuses = sorted(r[0] for r in conn.execute(sa.text(f"SELECT status FROM {RUNS}")))
    assert statuses == ["completed", "interrupted"]
    engine.dispose()


def test_two_processes_cleaning_one_column_at_once_do_not_both_apply(database_url, ledger):
    engine = people_table(database_url)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-c", JOB, database_url], env=env)
    deadline = time.monotonic() + 120
    while not (sa.inspect(engine).has_table(RUNS) and _count(engine, f"SELECT count(*) FROM {RUNS}") >= 1):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-c", JOB, database_url], env=env, capture_output=True, text=True)
    assert second.returncode != 0 and "LockedError: another strseq run is cleaning people.name" in second.stderr
    assert first.wait(timeout=120) == 0
    with engine.connect() as conn:
        keys = [r[0] for r in conn.execute(sa.text(f"SELECT key FROM {AUDIT}"))]
    told = [line for line in second.stderr.splitlines() if line.startswith("strseq_tasks.data.db.LockedError")]
    ledger("concurrency", "a second cleaning run on the same column while the first runs", engine.dialect.name,
           rows_lost=ROWS - len(set(keys)), rows_double_applied=len(keys) - len(set(keys)),
           error=(told or [second.stderr])[-1])
    assert len(keys) == len(set(keys)) == ROWS
    assert _count(engine, f"SELECT count(*) FROM {RUNS}") == 1  # the refused run left no trace
    engine.dispose()
