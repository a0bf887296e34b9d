"""Partitions of one cleaning run: planned ranges, side-by-side ranges, stale runs."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from fixtures.tables import people

from strseq_tasks.data.db import AUDIT, RUNS, create_engine, reflect_table
from strseq_tasks.jobs.clean import RunNotActive, clean_range, cleaning_run, watch_progress
from strseq_tasks.jobs.clean_report import ModelIdentity, RunReport
from strseq_tasks.jobs.partitions import Partition, describe, plan_partitions, run_partition
from strseq_tasks.serve.runtime import Prediction

MODEL = ModelIdentity("names", 1, "sha-1")


def title_case(texts):
    return [Prediction(t.title(), 0.95, "ok") for t in texts]


def make_people(url: str, keys, text_keys: bool = False) -> sa.Engine:
    engine = create_engine(url)
    people(engine, [(k, f"person {k}") for k in keys], key_type=sa.Text if text_keys else sa.Integer)
    return engine


def rows_in(engine, user, key_range):
    lo, hi = key_range
    query = sa.select(user.key)
    if lo is not None:
        query = query.where(user.key > lo)
    if hi is not None:
        query = query.where(user.key <= hi)
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(query)]


@pytest.mark.parametrize("keys, text_keys", [
    (list(range(1, 101)), False),
    ([1, 2, 3, *range(1000, 1050), 10**9, 10**9 + 1], False),  # skewed: cut by rank, not by value
    ([f"k{i:03d}" for i in range(37)], True),
    ([], False),
    ([5], False),
    ([5, 6], False),
])
@pytest.mark.parametrize("partitions", [1, 3, 4])
def test_planned_partitions_cover_every_row_once_in_balanced_ranges(database_url, keys, text_keys, partitions):
    engine = make_people(database_url, keys, text_keys)
    user = reflect_table(engine, "people", "id", "name", None)
    ranges = plan_partitions(engine, user, partitions)
    assert 1 <= len(ranges) <= partitions and ranges[0][0] is None and ranges[-1][1] is None
    assigned = [k for r in ranges for k in rows_in(engine, user, r)]
    assert sorted(assigned) == sorted(keys)  # every row, none twice
    sizes = [len(rows_in(engine, user, r)) for r in ranges]
    assert max(sizes) - min(sizes) <= 1 or len(keys) < partitions
    assert describe(ranges).startswith("(-inf, ")
    engine.dispose()


def test_partitions_side_by_side_apply_every_row_exactly_once(database_url):
    """Four threads, each a partition of one run (as Prefect's thread pool runs them)."""
    engine = make_people(database_url, range(1, 201))
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    events: list[dict] = []
    with watch_progress(events.append), cleaning_run(engine, user, MODEL, 0.9) as report:
        parts = [Partition(i, r, report.run_id, False) for i, r in enumerate(plan_partitions(engine, user, 4))]
        results: list[RunReport] = [None] * len(parts)

        def work(p: Partition) -> None:
            local = create_engine(engine.url)  # a worker has its own connections
            results[p.index] = run_partition(local, user, MODEL, title_case, p, 0.9, batch_size=7)
            local.dispose()

        threads = [threading.Thread(target=work, args=(p,)) for p in parts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for r in results:
            report.add(r)
    assert report.changed == report.rows_read == 200
    with engine.connect() as conn:
        audit = conn.execute(sa.text(f"SELECT key, count(*) FROM {AUDIT} GROUP BY key")).fetchall()
        run = conn.execute(sa.text(f"SELECT status, rows_read, changed FROM {RUNS}")).one()
        cleaned = conn.execute(sa.text("SELECT count(*) FROM people WHERE name_clean = 'Person ' || id")).scalar()
    assert len(audit) == 200 and {n for _, n in audit} == {1} and cleaned == 200
    assert tuple(run) == ("completed", 200, 200)
    # the progress a CLI bar shows: each range's size, then each batch's counts
    assert sum(e.get("total", 0) for e in events) == 200 == sum(e.get("rows_read", 0) for e in events)
    assert sum(e.get("changed", 0) for e in events) == 200
    engine.dispose()


def test_a_killed_runs_leftover_partition_cannot_write_once_a_new_run_starts(database_url):
    """A run whose parent died leaves 'running' in strseq_runs; the next run (which can take the
    lock, so the old parent is gone) marks it interrupted, and the old run's ranges stop writing."""
    engine = make_people(database_url, range(1, 21))
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    with cleaning_run(engine, user, MODEL, 0.9) as old:
        pass
    with engine.begin() as conn:  # as if the old run had been killed mid-way
        conn.execute(sa.text(f"UPDATE {RUNS} SET status = 'running' WHERE run_id = :r"), {"r": old.run_id})
    with cleaning_run(engine, user, MODEL, 0.9) as new:
        with pytest.raises(RunNotActive, match="not running any more"):
            clean_range(engine, user, MODEL, title_case, RunReport(old.run_id, False), 0.9, 5)
        clean_range(engine, user, MODEL, title_case, new, 0.9, 5)
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.text(f"SELECT run_id, status FROM {RUNS}")).fetchall())
        audit = conn.execute(sa.text(f"SELECT run_id, count(*) FROM {AUDIT} GROUP BY run_id")).fetchall()
    assert statuses == {old.run_id: "interrupted", new.run_id: "completed"}
    assert dict(audit) == {new.run_id: 20}  # the leftover range's batch was rolled back whole
    engine.dispose()
