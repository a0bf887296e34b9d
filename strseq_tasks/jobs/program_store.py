"""The layout programs a model's cleaning jobs learned, kept in the database they clean
(``strseq_programs``), so that the next job of the same model starts with them.

A nightly job sees few new rows, too few per layout to read and verify a program; the first
full run read them, and they are the model's (keyed by its content sha: a new model version
starts afresh). The programs hold values of the column (a map's keys and outputs), so they stay
in the database that holds the column, never in the model bundle that goes to every server.
A program a later job withdraws (the model disagreed with it) is stored as withdrawn.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import sqlalchemy as sa

from strseq_tasks.core.program_book import ProgramBook
from strseq_tasks.core.programs import Program
from strseq_tasks.data.db import PROGRAMS, job_tables

log = logging.getLogger("strseq")


def load_programs(engine: sa.Engine, schema: str | None, model_sha: str, book: ProgramBook) -> int:
    """Give ``book`` the stored decisions of this model; returns the programs adopted (0 when
    there is no store yet: a first run)."""
    if not sa.inspect(engine).has_table(PROGRAMS, schema=schema):
        return 0
    t = job_tables(schema)[1][PROGRAMS]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.c.shape, t.c.program).where(t.c.model_sha == model_sha)).all()
    records, damaged = [], []
    for shape, program in rows:
        record = _record(shape, program)
        (records if record is not None else damaged).append(record or shape)
    if damaged:  # a row edited by hand, or cut short: the model decides those layouts' rows again
        log.warning("layout programs: %d stored row(s) of %s could not be read and were left out (shapes %s)",
                    len(damaged), PROGRAMS, ", ".join(map(repr, damaged[:5])))
    adopted = book.adopt(records)
    if records:
        log.info("layout programs: %d kept from earlier runs of this model (%d layouts without one)", adopted,
                 len(records) - adopted)
    return adopted


def _record(shape: str, program: str) -> dict | None:
    """A stored row as ``ProgramBook.adopt`` takes it; None when it is not one."""
    try:
        record = {**json.loads(program), "shape": shape}
        if record["status"] == "accepted":
            Program.from_dict(shape, record)
            float(record["logprob"])
        elif record["status"] != "rejected":
            return None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return record


def save_programs(engine: sa.Engine, schema: str | None, model_sha: str, book: ProgramBook) -> int:
    """Store ``book``'s decided shapes for this model (replacing what was stored for them) in one
    transaction; returns how many. Another partition saving the same shapes at the same moment
    wins: what it stores is the same model's, verified the same way."""
    records = book.records()
    if not records:
        return 0
    t = job_tables(schema)[1][PROGRAMS]
    now = dt.datetime.now(dt.UTC)
    rows = [{"model_sha": model_sha, "shape": r["shape"], "status": r["status"], "updated": now,
             "program": json.dumps({k: v for k, v in r.items() if k != "shape"}, ensure_ascii=False)}
            for r in records]
    shapes = [r["shape"] for r in records]
    try:
        with engine.begin() as conn:
            for i in range(0, len(shapes), 500):  # bound parameters per statement stay few
                conn.execute(sa.delete(t).where(t.c.model_sha == model_sha, t.c.shape.in_(shapes[i : i + 500])))
            conn.execute(sa.insert(t), rows)
    except sa.exc.IntegrityError as exc:
        log.info("layout programs not stored: another partition stored them at the same moment (%s)",
                 str(exc).splitlines()[0])
        return 0
    except sa.exc.DBAPIError as exc:  # a lock held too long, a connection lost: the next run reads them again
        log.warning("layout programs not stored (%s); the next run reads its own", str(exc).splitlines()[0])
        return 0
    return len(rows)
