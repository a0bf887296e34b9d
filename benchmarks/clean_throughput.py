"""Rows per second of the cleaning job, and how much of it is the model.

    .venv/bin/python benchmarks/clean_throughput.py                          # 100,000 rows, SQLite
    .venv/bin/python benchmarks/clean_throughput.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/clean_throughput.py --rows 20000 --repeats 1 --model models/names@production
    .venv/bin/python benchmarks/clean_throughput.py --columns dates phones product_codes names names-distinct

A column's model (trained with the defaults on the column's 200 pairs into ``--models DIR``
once and reused, unless --model is given) cleans a table of the column's values in place
(``cleaning.clean_table``: keyset reads, per-batch transactions with audit, review and
markers). The columns are ``benchmarks/realistic.py``'s: ``names-distinct`` (the default: the
names benchmark task's nearly distinct names, as this benchmark always measured) and realistic
columns whose values repeat on a Zipf tail (dates, phones, product_codes, names, ...). The same
job is then run with a *replay* model that returns the real model's predictions from a
dictionary: the same reads, the same writes and audit rows, no inference. With --partitions P
(default 2) both jobs also run split into P partitions, on threads and on worker processes, as
`strseq clean --partitions P` and `--dask-address local` run them. Runs alternate on fresh
copies of the table; medians are reported. Target (issue 24): the real job reaches at least 70%
of the replay job's rows/s on each column and database (the best of the job's splits). Writes
benchmarks/results/clean_throughput.json.

It also counts the model's FLOPs per row on a real run (the exported graph's matrix products)
and measures onnxruntime's fp32 GEMM peak on one thread in the same run: the rows/s the model
could reach per core if every FLOP ran at that peak, and the ratio one process would then reach.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa  # noqa: E402

from benchmarks.model_cost import gemm_peak, model_work  # noqa: E402
from benchmarks.realistic import MODELS, column, column_model, names  # noqa: E402
from strseq_tasks.data.db import AUDIT, PROCESSED, REVIEW, RUNS, create_engine, reflect_table  # noqa: E402
from strseq_tasks.jobs import partitions as part  # noqa: E402
from strseq_tasks.jobs.clean import clean_table, cleaning_run  # noqa: E402
from strseq_tasks.jobs.clean_report import ModelIdentity  # noqa: E402
from strseq_tasks.serve.runtime import Normalizer, Prediction  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TABLE, COLUMN = "bench_column", "value"
TARGET = 0.70  # issue 24: the real job's rows/s at least this share of the replay job's


def fresh_table(url: str, values: list[str]) -> sa.Engine:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table(TABLE, meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column(COLUMN, sa.Text))
    with engine.begin() as conn:
        for name in (TABLE, RUNS, AUDIT, REVIEW, PROCESSED):
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
    meta.create_all(engine)
    with engine.begin() as conn:
        for start in range(0, len(values), 10_000):
            conn.execute(table.insert(), [{"id": i + 1, COLUMN: v} for i, v in
                                           enumerate(values[start:start + 10_000], start=start)])
    return engine


def model_alone(model_path, values: list[str], repeats: int, precision: str = "auto") -> dict[str, float]:
    """Rows/s of the model alone with 1 and 2 onnxruntime threads, interleaved; medians."""
    sessions = {n: Normalizer(model_path, threads=n, precision=precision) for n in (1, 2)}
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(repeats):
        for n, normalizer in sessions.items():
            started = time.perf_counter()
            normalizer.normalize(values, batch_size=64)
            times[n].append(time.perf_counter() - started)
    rates = {f"threads={n}": round(len(values) / statistics.median(ts), 1) for n, ts in times.items()}
    print("model alone: " + ", ".join(f"{k} {v:,.0f} rows/s" for k, v in rates.items()), flush=True)
    return rates


def make_predict(kind: str, model_path: str, answers: dict | None, threads: int | None, precision: str = "auto"):
    """``predict(texts)`` of the real model (``kind='strseq'``) or of the replay (no inference)."""
    if kind == "replay":
        return lambda texts: [answers.get(t) or Prediction(t, 1.0, "ok") for t in texts]
    normalizer = Normalizer(model_path, threads=threads, precision=precision)
    return lambda texts: normalizer.normalize(texts, batch_size=64)


_WORKER: dict = {}


def _init_worker(kind: str, model_path: str, answers: dict | None, precision: str) -> None:
    _WORKER["predict"] = make_predict(kind, model_path, answers, 1, precision)


def _work(url: str, user_args: tuple, model: ModelIdentity, job, batch_size: int, predict=None):
    engine = create_engine(url)
    try:
        user = reflect_table(engine, *user_args)
        return part.run_partition(engine, user, model, predict or _WORKER["predict"], job, 0.9, batch_size)
    finally:
        engine.dispose()


def run_once(url: str, values: list[str], kind: str, model_path: str, answers: dict, batch_size: int,
             partitions: int = 1, processes: bool = False, precision: str = "auto",
             label: str = "names") -> tuple[float, dict]:
    """One job on a fresh table (the clock includes loading the model). With partitions > 1, one
    run split as the flow splits it: on threads (Prefect's thread pool) or on worker processes
    (``--dask-address local``), one onnxruntime thread each."""
    engine = fresh_table(url, values)
    user_args = (TABLE, "id", COLUMN, None)
    user = reflect_table(engine, *user_args)
    model = ModelIdentity(label, None, uuid.uuid4().hex)
    started = time.perf_counter()
    if partitions == 1:
        report = clean_table(engine, user, model, make_predict(kind, model_path, answers, None, precision),
                             batch_size=batch_size)
    else:
        with cleaning_run(engine, user, model, 0.9) as report:
            jobs = part.jobs(part.plan_partitions(engine, user, partitions), report)
            if processes:
                pool = ProcessPoolExecutor(partitions, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_init_worker, initargs=(kind, model_path, answers, precision))
                futures = [pool.submit(_work, url, user_args, model, job, batch_size) for job in jobs]
            else:
                predict = make_predict(kind, model_path, answers, 1, precision)
                pool = ThreadPoolExecutor(partitions)
                futures = [pool.submit(_work, url, user_args, model, job, batch_size, predict) for job in jobs]
            with pool:
                for future in futures:
                    report.add(future.result())
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, report.counts()


def model_costs(model_path: str, values: list[str], args, precision: str, peak: float) -> tuple[dict, dict]:
    """The model alone on 1 and 2 threads, and its FLOPs per row against the GEMM peak."""
    threads = model_alone(model_path, values[:args.thread_rows], args.repeats, precision)
    work = model_work(Normalizer(model_path, threads=1, precision=precision), values[:args.thread_rows])
    # the fastest this model can run on one core: every FLOP at the GEMM peak
    work["gemm_peak_gflops_one_thread"] = round(peak / 1e9, 1)
    work["rows_per_s_at_peak_one_thread"] = round(peak / (work["mflop_per_row"] * 1e6), 1)
    work["fraction_of_peak_one_thread"] = round(threads["threads=1"] / work["rows_per_s_at_peak_one_thread"], 3)
    print(f"model: {work['mflop_per_row']} MFLOP per row ({work['decoder_row_steps_per_row']} decoder "
          f"steps per row); onnxruntime's fp32 GEMM peak on one thread: {peak / 1e9:.1f} GFLOP/s, so at "
          f"most {work['rows_per_s_at_peak_one_thread']:,.0f} rows/s per core; one thread reached "
          f"{work['fraction_of_peak_one_thread']:.0%} of that", flush=True)
    return threads, work


def job_list(partitions: int) -> list[tuple[str, str, int, bool]]:
    """(label, kind, partitions, on processes) of every job a database runs."""
    jobs = [("strseq", "strseq", 1, False), ("replay", "replay", 1, False)]
    if partitions > 1:
        jobs += [(f"{kind}, {partitions} {how}", kind, partitions, how == "processes")
                 for how in ("threads", "processes") for kind in ("strseq", "replay")]
    return jobs


def time_database(name: str, url: str, values: list[str], model: tuple[str, dict, str, str], args,
                  work: dict) -> dict:
    """Every job on ``url``, alternating, ``args.repeats`` times: rows/s, ratios, counts."""
    model_path, answers, precision, label = model
    jobs = job_list(args.partitions)
    times = {job: [] for job, *_ in jobs}
    counts = None
    for _ in range(args.repeats):
        for job, kind, partitions, processes in jobs:
            seconds, counts = run_once(url, values, kind, model_path, answers, args.batch_size,
                                       partitions, processes, precision, label)
            times[job].append(seconds)
            print(f"{label} {name} {job}: {len(values) / seconds:,.0f} rows/s ({seconds:.1f} s)", flush=True)
    rate = {job: len(values) / statistics.median(ts) for job, ts in times.items()}
    ratios = {job: round(rate[job] / rate[job.replace("strseq", "replay")], 3)
              for job in rate if job.startswith("strseq")}
    # the best ratio one process could reach if the model ran at the GEMM peak
    at_peak = 1 / (1 / rate["replay"] + 1 / work["rows_per_s_at_peak_one_thread"])
    return {"rows_per_s": {k: round(v, 1) for k, v in rate.items()}, "ratio": ratios["strseq"],
            "ratios": ratios, "best_ratio": max(ratios.values()), "seconds": times, "counts": counts,
            "one_process_ratio_at_gemm_peak": round(at_peak / rate["replay"], 3)}


def measure_column(name: str, args, peak: float, databases: dict[str, str]) -> dict:
    col = column(name, args.rows, args.seed)
    model_path = str(column_model(col, args.models, args.model))
    precision = Normalizer(model_path, precision=args.precision).precision
    print(f"{name}: {len(col.values):,} rows ({col.distribution['distinct']:,} distinct), the model's "
          f"{precision} graphs", flush=True)
    threads, work = model_costs(model_path, col.values, args, precision, peak)
    found = {"distribution": col.distribution, "model": model_path, "precision": precision,
             "model_alone_rows_per_s": threads, "model_work": work, "results": {}}
    if args.model_only:
        return found
    normalizer = Normalizer(model_path, precision=precision)
    distinct = sorted(set(col.values))
    answers = dict(zip(distinct, normalizer.normalize(distinct, batch_size=64)))
    for db, url in databases.items():
        found["results"][db] = time_database(db, url, col.values, (model_path, answers, precision, name), args,
                                             work)
    return found


def targets(columns: dict) -> list[dict]:
    return [{"column": name, "database": db, "what": "strseq/replay rows/s (the best of the job's splits)",
             "target": f">= {TARGET}", "value": r["best_ratio"], "pass": r["best_ratio"] >= TARGET}
            for name, c in columns.items() for db, r in c["results"].items()]


def print_report(columns: dict, partitions: int) -> None:
    labels = [job for job, *_ in job_list(partitions) if job.startswith("strseq")]
    print("\n| column | distinct | database | job | strseq rows/s | replay (no inference) rows/s | ratio |\n"
          "|---|---:|---|---|---:|---:|---:|")
    for name, c in columns.items():
        for db, r in c["results"].items():
            for job in labels:
                how = job.replace("strseq", "").strip(", ") or "one process"
                print(f"| {name} | {c['distribution']['distinct']:,} | {db} | {how} | {r['rows_per_s'][job]:,.0f} | "
                      f"{r['rows_per_s'][job.replace('strseq', 'replay')]:,.0f} | {r['ratios'][job]:.2f} |")
    for name, c in columns.items():
        for db, r in c["results"].items():
            print(f"{name} {db}: one process at the GEMM peak would reach a ratio of "
                  f"{r['one_process_ratio_at_gemm_peak']:.2f}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--columns", nargs="+", default=["names-distinct"], choices=names(), metavar="COLUMN",
                        help=f"columns to clean (default: names-distinct; any of {', '.join(names())})")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=2,
                        help="also time the job split into this many partitions, on threads and on "
                        "processes (1: don't)")
    parser.add_argument("--thread-rows", type=int, default=2000, help="rows for the model-alone thread comparison")
    parser.add_argument("--model-only", action="store_true", help="only compare the model alone on 1 and 2 threads")
    parser.add_argument("--models", type=Path, default=MODELS, metavar="DIR",
                        help=f"the columns' models, trained here once (DIR/<column>) and reused (default {MODELS})")
    parser.add_argument("--model", default=None, help="one model folder or REGISTRY/NAME@alias for every column "
                        "(default: each column's own, from --models)")
    parser.add_argument("--seed", type=int, default=0, help="the columns' draw")
    parser.add_argument("--precision", choices=("auto", "fp32", "int8"), default="auto",
                        help="graphs to run (auto: the model's default, int8 when it passed training's int8 gate)")
    parser.add_argument("--postgres", default=os.environ.get("STRSEQ_TEST_POSTGRES_URL"),
                        help=f"also measure on this PostgreSQL database (tables {TABLE} and strseq_* are replaced)")
    parser.add_argument("--out", type=Path, default=RESULTS / "clean_throughput.json")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    peak = gemm_peak()
    columns = {}
    with tempfile.TemporaryDirectory(prefix="strseq-clean-bench-") as tmp:
        databases = {"sqlite": f"sqlite:///{Path(tmp) / 'bench.db'}"}
        if args.postgres:
            databases["postgresql"] = args.postgres
        for name in args.columns:
            columns[name] = measure_column(name, args, peak, databases)
    found = targets(columns)
    print_report(columns, args.partitions)
    print(f"\nissue 24's target: the real job at least {TARGET:.0%} of the replay job's rows/s\n")
    for t in found:
        print(f"- {'PASS' if t['pass'] else 'FAIL'} {t['column']} {t['database']}: {t['value']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": args.rows, "batch_size": args.batch_size, "repeats": args.repeats,
                                    "partitions": args.partitions, "cpu_count": os.cpu_count(),
                                    "gemm_peak_gflops_one_thread": round(peak / 1e9, 1),
                                    "load_average_1min_at_end": round(os.getloadavg()[0], 2),
                                    "columns": columns, "targets": found}, indent=2, ensure_ascii=False))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
