"""The cleaning job's own cost, two checkouts side by side: what a change to ``jobs/clean.py`` costs.

    .venv/bin/python benchmarks/clean_ab.py --old ../strseq-old                     # SQLite, 20,000 rows
    .venv/bin/python benchmarks/clean_ab.py --old ../strseq-old --db postgresql+psycopg://postgres@127.0.0.1:5432/test

Each side (this checkout and ``--old``, e.g. a ``git worktree`` of an earlier commit) runs in its own
interpreter on a fresh table of ``--rows`` rows: a first cleaning run into an output column, then a
second with a new model version (every row again, strseq's audit rows of the first run in place).
The model is a stand-in (title case, unsure of one row in ten): no inference, only the job's reads,
writes, audit, review rows and markers. Sides alternate, ``--repeats`` times; medians and the ratio
new/old are printed and written to ``--out``. On PostgreSQL the tables are dropped first: use a
scratch database.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("people", "strseq_runs", "strseq_audit", "strseq_review", "strseq_processed", "strseq_decisions")


def one_side(rows: int, url: str | None) -> dict:
    """Run in a child interpreter: time two cleaning runs of a fresh table."""
    import sqlalchemy as sa

    from strseq_tasks.data.db import reflect_table
    from strseq_tasks.jobs.clean import clean_table
    from strseq_tasks.jobs.clean_report import ModelIdentity
    from strseq_tasks.serve.runtime import Prediction

    url = url or f"sqlite:///{tempfile.mkdtemp()}/ab.db"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for name in TABLES:
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    people = sa.Table("people", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                      sa.Column("name", sa.Text))
    people.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(people.insert(), [{"id": i, "name": f"person {i} smith"} for i in range(rows)])

    def predict(texts):
        return [Prediction(t.title(), 0.5 if int(t.split()[1]) % 10 == 0 else 0.95, "ok") for t in texts]

    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True)
    seconds = []
    for version in (1, 2):
        start = time.perf_counter()
        clean_table(engine, user, ModelIdentity("ab", version, f"sha-{version}"), predict)
        seconds.append(time.perf_counter() - start)
    engine.dispose()
    return {"first": seconds[0], "second": seconds[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", type=Path, required=True, help="the other checkout (its strseq_tasks is used)")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", default=None, help="a scratch database URL (default: a new SQLite file per run)")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default: print only)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_side(args.rows, args.db)))
        return
    sides = {"old": args.old.resolve(), "new": ROOT}
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, checkout in sides.items():
            env = {**os.environ, "PYTHONPATH": str(checkout)}
            cmd = [sys.executable, __file__, "--old", str(args.old), "--rows", str(args.rows), "--child"]
            if args.db:
                cmd += ["--db", args.db]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    medians = {name: {k: statistics.median(r[k] for r in rs) for k in ("first", "second")} for name, rs in runs.items()}
    ratio = {k: medians["new"][k] / medians["old"][k] for k in ("first", "second")}
    print(f"{args.rows:,} rows, {'SQLite' if not args.db else args.db.split(':')[0]}, medians of {args.repeats}:")
    for k in ("first", "second"):
        print(f"  {k} run: old {medians['old'][k]:.2f} s, new {medians['new'][k]:.2f} s, new/old {ratio[k]:.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": args.rows, "db": "sqlite" if not args.db else "postgresql",
                                        "old": str(args.old), "runs": runs, "medians": medians, "ratio": ratio},
                                       indent=2))


if __name__ == "__main__":
    main()
