"""Rows per second of the cleaning job, and how much of it is the model.

    .venv/bin/python benchmarks/clean_throughput.py                          # 100,000 rows, SQLite
    .venv/bin/python benchmarks/clean_throughput.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/clean_throughput.py --rows 20000 --repeats 1 --model models/names@production

A names model (trained here on 200 pairs of the names benchmark task unless --model is given)
cleans a table of dirty names in place (``cleaning.clean_table``: keyset reads, per-batch
transactions with audit, review and markers). The same job is then run with a *replay* model
that returns the real model's predictions from a dictionary: the same reads, the same writes
and audit rows, no inference. Runs alternate on fresh copies of the table; medians are
reported. Target: the real job reaches at least 50% of the replay job's rows/s. Writes
benchmarks/results/clean_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from benchmarks.tasks import names  # noqa: E402
from strseq_tasks import partitions as part  # noqa: E402
from strseq_tasks.cleaning import ModelIdentity, clean_table, cleaning_run  # noqa: E402
from strseq_tasks.db import AUDIT, PROCESSED, REVIEW, RUNS, create_engine, reflect_table  # noqa: E402
from strseq_tasks.runtime import Normalizer, Prediction  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def fresh_table(url: str, values: list[str]) -> sa.Engine:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    people = sa.Table("people", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text))
    with engine.begin() as conn:
        for name in ("people", RUNS, AUDIT, REVIEW, PROCESSED):
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
    meta.create_all(engine)
    with engine.begin() as conn:
        for start in range(0, len(values), 10_000):
            conn.execute(people.insert(), [{"id": i + 1, "name": v} for i, v in
                                           enumerate(values[start:start + 10_000], start=start)])
    return engine


def run_once(url: str, values: list[str], predict, batch_size: int, partitions: int = 1) -> tuple[float, dict]:
    """One job on a fresh table; with partitions > 1, as the flow's thread pool runs them (one
    run, one thread and connection pool per key range)."""
    engine = fresh_table(url, values)
    user = reflect_table(engine, "people", "id", "name", None)
    model = ModelIdentity("names", None, uuid.uuid4().hex)
    started = time.perf_counter()
    if partitions == 1:
        report = clean_table(engine, user, model, predict, batch_size=batch_size)
    else:
        with cleaning_run(engine, user, model, 0.9) as report:
            jobs = part.jobs(part.plan_partitions(engine, user, partitions), report)

            def work(job):
                local = create_engine(url)
                try:
                    return part.run_partition(local, user, model, predict, job, 0.9, batch_size)
                finally:
                    local.dispose()

            with ThreadPoolExecutor(partitions) as pool:
                for result in pool.map(work, jobs):
                    report.add(result)
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, report.counts()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=2,
                        help="also time the job split into this many partitions on threads (1: don't)")
    parser.add_argument("--model", default=None, help="model folder or REGISTRY/NAME@alias (default: train one)")
    parser.add_argument("--postgres", default=os.environ.get("STRSEQ_TEST_POSTGRES_URL"),
                        help="also measure on this PostgreSQL database (tables people and strseq_* are replaced)")
    parser.add_argument("--out", type=Path, default=RESULTS / "clean_throughput.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    train, test = names(200, args.rows, 0)
    values = [a for a, _ in test]
    with tempfile.TemporaryDirectory(prefix="strseq-clean-bench-") as tmp:
        if args.model:
            from strseq_tasks.registry import resolve_model

            model_path = resolve_model(args.model)[0]
        else:
            from strseq_tasks.pipeline import train_bundle
            from strseq_tasks.training import TrainConfig

            print("training a names model on 200 pairs ...", flush=True)
            model_path = train_bundle(train, Path(tmp) / "model", TrainConfig(seed=0)).path
        normalizer = Normalizer(model_path)
        started = time.perf_counter()
        answers = {p_in: p for p_in, p in zip(values, normalizer.normalize(values, batch_size=64))}
        print(f"model alone: {len(values) / (time.perf_counter() - started):,.0f} rows/s", flush=True)

        single = Normalizer(model_path, threads=1)  # partitions: one onnxruntime thread each

        def real(texts):
            return normalizer.normalize(texts, batch_size=64)

        def real_single_thread(texts):
            return single.normalize(texts, batch_size=64)

        def replay(texts):
            return [answers.get(t) or Prediction(t, 1.0, "ok") for t in texts]

        databases = {"sqlite": f"sqlite:///{Path(tmp) / 'bench.db'}"}
        if args.postgres:
            databases["postgresql"] = args.postgres
        results = {}
        for name, url in databases.items():
            jobs = [("strseq", real, 1), ("replay", replay, 1)]
            if args.partitions > 1:
                jobs.append((f"strseq, {args.partitions} partitions", real_single_thread, args.partitions))
            times = {job: [] for job, _, _ in jobs}
            counts = None
            for _ in range(args.repeats):
                for job, predict, partitions in jobs:
                    seconds, counts = run_once(url, values, predict, args.batch_size, partitions)
                    times[job].append(seconds)
                    print(f"{name} {job}: {len(values) / seconds:,.0f} rows/s ({seconds:.1f} s)", flush=True)
            rate = {job: len(values) / statistics.median(ts) for job, ts in times.items()}
            results[name] = {"rows_per_s": {k: round(v, 1) for k, v in rate.items()},
                             "ratio": round(rate["strseq"] / rate["replay"], 3), "seconds": times, "counts": counts}
    split = f"strseq, {args.partitions} partitions"
    print(f"\n| database | strseq rows/s | replay (no inference) rows/s | ratio | {split} rows/s |\n"
          "|---|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['rows_per_s']['strseq']:,.0f} | {r['rows_per_s']['replay']:,.0f} | {r['ratio']:.2f} | "
              f"{r['rows_per_s'].get(split, float('nan')):,.0f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": args.rows, "batch_size": args.batch_size, "repeats": args.repeats,
                                    "partitions": args.partitions, "cpu_count": os.cpu_count(),
                                    "load_average_1min_at_end": round(os.getloadavg()[0], 2),
                                    "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
