"""Split a cleaning job's key range into partitions that run side by side (threads, processes or
a Dask cluster), each one a ``cleaning.clean_range`` of the same run.

Partitions are half-open key ranges ``lo < key <= hi`` (``None`` is unbounded), cut at key
quantiles so each holds about the same number of rows whatever the key distribution, and they
are disjoint: no row is in two partitions, so none can be applied twice.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from strseq_tasks.data.batches import count_rows
from strseq_tasks.data.db import UserTable
from strseq_tasks.jobs.clean import clean_range
from strseq_tasks.jobs.clean_report import ModelIdentity, RunReport

KeyRange = tuple[object, object]


def plan_partitions(engine: sa.Engine, user: UserTable, partitions: int) -> list[KeyRange]:
    """At most ``partitions`` key ranges of about equal row counts covering the whole table.

    Reads ``partitions - 1`` keys (one indexed ``ORDER BY key OFFSET n`` each), never the table.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    rows = count_rows(engine, user)
    with engine.connect() as conn:
        cuts = []
        for i in range(1, min(partitions, max(rows, 1))):
            key = conn.execute(sa.select(user.key).order_by(user.key).offset(max(0, rows * i // partitions - 1))
                               .limit(1)).scalar_one()
            if not cuts or key != cuts[-1]:
                cuts.append(key)
    bounds = [None, *cuts, None]
    return list(zip(bounds[:-1], bounds[1:]))


@dataclass(frozen=True)
class Partition:
    """One partition's job: what a worker (a thread, or a process on a Dask cluster) needs."""

    index: int
    key_range: KeyRange
    run_id: str
    dry_run: bool


def run_partition(engine: sa.Engine, user: UserTable, model: ModelIdentity, predict: Callable[[list[str]], Sequence],
                  partition: Partition, threshold: float, batch_size: int,
                  on_batch: Callable[[RunReport], None] | None = None) -> RunReport:
    """Clean one partition into a report of its own (the run adds them up)."""
    report = RunReport(partition.run_id, partition.dry_run, workers=[f"{socket.gethostname()}:{os.getpid()}"])
    return clean_range(engine, user, model, predict, report, threshold, batch_size, partition.key_range, on_batch)


def jobs(ranges: Sequence[KeyRange], report: RunReport) -> list[Partition]:
    return [Partition(i, key_range, report.run_id, report.dry_run) for i, key_range in enumerate(ranges, start=1)]


def load_pinned(model: str, sha: str, threads: int | None, precision: str = "auto", programs: bool = True):
    """The run's model in this process (loaded once per process), refused unless it is the one
    the run started with (the same content identity: the same outputs)."""
    from strseq_tasks.data.db import DatabaseJobError
    from strseq_tasks.serve.loading import open_model

    opened = open_model(model, threads, precision, programs=programs)
    if opened.sha != sha:
        raise DatabaseJobError(f"model {model} here is not the one the run started with (content sha256 "
                               f"{opened.sha[:12]}, expected {sha[:12]}): refusing to mix two models in one run")
    return opened.normalizer


def task_runner(partitions: int, dask_address: str | None):
    """Prefect's thread pool, or prefect-dask's ``DaskTaskRunner`` on a cluster ('local': a
    temporary one, a single-threaded worker process per partition, reporting to this run's API)."""
    from prefect.task_runners import ThreadPoolTaskRunner

    if not dask_address:
        return ThreadPoolTaskRunner(max_workers=partitions)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise ImportError(f"--dask-address needs prefect-dask ({exc}): pip install 'strseq[dask]'") from None
    if dask_address != "local":
        return DaskTaskRunner(address=dask_address)
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    api = str(context.client.api_url) if context and context.client else None
    env = {"PREFECT_API_URL": api.rstrip("/")} if api and api.startswith("http") else {}
    return DaskTaskRunner(cluster_kwargs={"n_workers": partitions, "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": None, "env": env})


def describe(ranges: Sequence[KeyRange]) -> str:
    def bound(value: object, open_end: str) -> str:
        return open_end if value is None else repr(value)

    return ", ".join(f"({bound(lo, '-inf')}, {bound(hi, '+inf')}]" for lo, hi in ranges)
