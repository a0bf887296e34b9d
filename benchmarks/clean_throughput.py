"""Rows per second of the cleaning job, and how much of it is the model.

    .venv/bin/python benchmarks/clean_throughput.py                          # 100,000 rows, SQLite
    .venv/bin/python benchmarks/clean_throughput.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python benchmarks/clean_throughput.py --rows 20000 --repeats 1 --model models/names@production

A names model (trained here on 200 pairs of the names benchmark task unless --model is given)
cleans a table of dirty names in place (``cleaning.clean_table``: keyset reads, per-batch
transactions with audit, review and markers). The same job is then run with a *replay* model
that returns the real model's predictions from a dictionary: the same reads, the same writes
and audit rows, no inference. With --partitions P (default 2) both jobs also run split into P
partitions, on threads and on worker processes, as `strseq clean --partitions P` and
`--dask-address local` run them. Runs alternate on fresh copies of the table; medians are
reported. Target: the real job reaches at least 50% of the replay job's rows/s. Writes
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
from benchmarks.tasks import benchmark_model, names  # noqa: E402
from strseq_tasks.data.db import AUDIT, PROCESSED, REVIEW, RUNS, create_engine, reflect_table  # noqa: E402
from strseq_tasks.jobs import partitions as part  # noqa: E402
from strseq_tasks.jobs.clean import clean_table, cleaning_run  # noqa: E402
from strseq_tasks.jobs.clean_report import ModelIdentity
from strseq_tasks.serve.runtime import Normalizer, Prediction  # noqa: E402

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
             partitions: int = 1, processes: bool = False, precision: str = "auto") -> tuple[float, dict]:
    """One job on a fresh table (the clock includes loading the model). With partitions > 1, one
    run split as the flow splits it: on threads (Prefect's thread pool) or on worker processes
    (``--dask-address local``), one onnxruntime thread each."""
    engine = fresh_table(url, values)
    user_args = ("people", "id", "name", None)
    user = reflect_table(engine, *user_args)
    model = ModelIdentity("names", None, uuid.uuid4().hex)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=2,
                        help="also time the job split into this many partitions, on threads and on "
                        "processes (1: don't)")
    parser.add_argument("--thread-rows", type=int, default=2000, help="rows for the model-alone thread comparison")
    parser.add_argument("--model-only", action="store_true", help="only compare the model alone on 1 and 2 threads")
    parser.add_argument("--model", default=None, help="model folder or REGISTRY/NAME@alias (default: train one)")
    parser.add_argument("--precision", choices=("auto", "fp32", "int8"), default="auto",
                        help="graphs to run (auto: the model's default, int8 when it passed training's int8 gate)")
    parser.add_argument("--postgres", default=os.environ.get("STRSEQ_TEST_POSTGRES_URL"),
                        help="also measure on this PostgreSQL database (tables people and strseq_* are replaced)")
    parser.add_argument("--out", type=Path, default=RESULTS / "clean_throughput.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    train, test = names(200, args.rows, 0)
    values = [a for a, _ in test]
    with tempfile.TemporaryDirectory(prefix="strseq-clean-bench-") as tmp:
        model_path = str(benchmark_model(args.model, train, Path(tmp), "a names model on 200 pairs"))
        precision = Normalizer(model_path, precision=args.precision).precision
        print(f"running the model's {precision} graphs", flush=True)
        threads = model_alone(model_path, values[:args.thread_rows], args.repeats, precision)
        work = model_work(Normalizer(model_path, threads=1, precision=precision), values[:args.thread_rows])
        peak = gemm_peak()
        # the fastest this model can run on one core: every FLOP at the GEMM peak
        work["gemm_peak_gflops_one_thread"] = round(peak / 1e9, 1)
        work["rows_per_s_at_peak_one_thread"] = round(peak / (work["mflop_per_row"] * 1e6), 1)
        work["fraction_of_peak_one_thread"] = round(threads["threads=1"] / work["rows_per_s_at_peak_one_thread"], 3)
        print(f"model: {work['mflop_per_row']} MFLOP per row ({work['decoder_row_steps_per_row']} decoder "
              f"steps per row); onnxruntime's fp32 GEMM peak on one thread: {peak / 1e9:.1f} GFLOP/s, so at "
              f"most {work['rows_per_s_at_peak_one_thread']:,.0f} rows/s per core; one thread reached "
              f"{work['fraction_of_peak_one_thread']:.0%} of that", flush=True)
        if args.model_only:
            print(json.dumps({"model_alone_rows_per_s": threads, "model_work": work}))
            return
        normalizer = Normalizer(model_path, precision=precision)
        answers = {p_in: p for p_in, p in zip(values, normalizer.normalize(values, batch_size=64))}

        databases = {"sqlite": f"sqlite:///{Path(tmp) / 'bench.db'}"}
        if args.postgres:
            databases["postgresql"] = args.postgres
        jobs = [("strseq", "strseq", 1, False), ("replay", "replay", 1, False)]
        if args.partitions > 1:
            jobs += [(f"{kind}, {args.partitions} {how}", kind, args.partitions, how == "processes")
                     for how in ("threads", "processes") for kind in ("strseq", "replay")]
        results = {}
        for name, url in databases.items():
            times = {label: [] for label, *_ in jobs}
            counts = None
            for _ in range(args.repeats):
                for label, kind, partitions, processes in jobs:
                    seconds, counts = run_once(url, values, kind, str(model_path), answers, args.batch_size,
                                               partitions, processes, precision)
                    times[label].append(seconds)
                    print(f"{name} {label}: {len(values) / seconds:,.0f} rows/s ({seconds:.1f} s)", flush=True)
            rate = {label: len(values) / statistics.median(ts) for label, ts in times.items()}
            ratios = {label: round(rate[label] / rate[label.replace("strseq", "replay")], 3)
                      for label in rate if label.startswith("strseq")}
            # the best ratio one process could reach if the model ran at the GEMM peak
            at_peak = 1 / (1 / rate["replay"] + 1 / work["rows_per_s_at_peak_one_thread"])
            results[name] = {"rows_per_s": {k: round(v, 1) for k, v in rate.items()}, "ratio": ratios["strseq"],
                             "ratios": ratios, "seconds": times, "counts": counts,
                             "one_process_ratio_at_gemm_peak": round(at_peak / rate["replay"], 3)}
    labels = [label for label, *_ in jobs if label.startswith("strseq")]
    print("\n| database | job | strseq rows/s | replay (no inference) rows/s | ratio |\n|---|---|---:|---:|---:|")
    for name, r in results.items():
        for label in labels:
            how = label.replace("strseq", "").strip(", ") or "one process"
            print(f"| {name} | {how} | {r['rows_per_s'][label]:,.0f} | "
                  f"{r['rows_per_s'][label.replace('strseq', 'replay')]:,.0f} | {r['ratios'][label]:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": args.rows, "batch_size": args.batch_size, "repeats": args.repeats,
                                    "precision": precision,
                                    "partitions": args.partitions, "cpu_count": os.cpu_count(),
                                    "model_alone_rows_per_s": threads, "model_work": work,
                                    "load_average_1min_at_end": round(os.getloadavg()[0], 2),
                                    "results": results}, indent=2))
    for name, r in results.items():
        print(f"{name}: one process at the GEMM peak would reach a ratio of {r['one_process_ratio_at_gemm_peak']:.2f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
