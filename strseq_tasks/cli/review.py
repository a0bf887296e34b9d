"""``strseq review``: the queue a cleaning run leaves, and a person's decisions about it.

``list`` and ``show`` read it; ``approve``, ``reject`` and ``edit`` decide rows through the same
audited, transactional path as a cleaning run (``jobs.decide``; ``strseq revert`` undoes them);
``export`` writes what people decided as curated pairs.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from strseq_tasks.cli.common import (
    DbOpt,
    SchemaOpt,
    app,
    check_output_option,
    fail,
    revert_hint,
    setup_logging,
    write_output,
)

review_app = typer.Typer(no_args_is_help=True, help="The review queue: list, show, approve, reject, edit, export.")
app.add_typer(review_app, name="review")

Db = DbOpt
Schema = SchemaOpt
Table = Annotated[str | None, typer.Option(help="Only rows of this table.")]
Column = Annotated[str | None, typer.Option(help="Only rows of this output column.")]
RunId = Annotated[str | None, typer.Option("--run-id", help="Only rows this cleaning run queued.")]
MinConf = Annotated[float | None, typer.Option(help="Only rows at this confidence or above.", min=0, max=1)]
MaxConf = Annotated[float | None, typer.Option(help="Only rows at this confidence or below.", min=0, max=1)]
Search = Annotated[str | None, typer.Option(help="Only rows whose value or suggestion contains this text (any case).")]
Reason = Annotated[str | None, typer.Option(help="Only rows queued for this reason (low_confidence, too_long, "
                                                 "longer_than_column, changed_since_decision).")]
Ids = Annotated[list[int] | None, typer.Argument(help="Review row ids (as `strseq review list` shows them).")]
By = Annotated[str | None, typer.Option(help="Who decides (recorded with each decision; default: your login).")]
Note = Annotated[str | None, typer.Option(help="Why (recorded with each decision).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Say what would be decided; change nothing.")]
Json = Annotated[bool, typer.Option("--json", help="JSON on standard output instead of text.")]


@contextmanager
def _engine(db: str) -> Iterator:
    from strseq_tasks.data.db import DatabaseJobError, create_engine
    from strseq_tasks.data.urls import UrlReferenceError

    try:
        engine = create_engine(db)
    except (UrlReferenceError, DatabaseJobError) as exc:
        fail(str(exc))
    try:
        yield engine
    except DatabaseJobError as exc:
        fail(str(exc))
    finally:
        engine.dispose()


def _other_schemas(engine, schema: str | None, table: str) -> list[str]:
    """The other schemas of a PostgreSQL database that hold strseq's ``table`` (a queue or runs
    left where the user did not look); none on SQLite."""
    import sqlalchemy as sa

    if engine.dialect.name != "postgresql":
        return []
    inspector = sa.inspect(engine)
    here = schema or inspector.default_schema_name
    return [s for s in inspector.get_schema_names()
            if s != here and s != "information_schema" and not s.startswith("pg_") and inspector.has_table(table, s)]


def elsewhere(engine, where, schema: str | None) -> str:
    """'; 12 open rows in schema crm: add --schema crm' when rows ``where`` matches, none of them
    in ``schema``, sit in another schema; else ''."""
    from strseq_tasks.data.db import REVIEW
    from strseq_tasks.jobs.review_queue import queue

    found = {s: n for s in _other_schemas(engine, schema, REVIEW) if (n := queue(engine, where, s, 0, order="id")[0])}
    what = "open" if where.status == "open" else f"{where.status}" if where.status != "all" else ""
    return "".join(f"; {n} {what + ' ' if what else ''}row(s) in schema {s}: add --schema {s}"
                   for s, n in sorted(found.items()))


def run_elsewhere(engine, run_id: str, schema: str | None) -> str:
    """'; run R is in schema crm: add --schema crm' when ``run_id`` is not in ``schema`` but another has it."""
    import sqlalchemy as sa

    from strseq_tasks.data.db import RUNS, job_tables

    for other in _other_schemas(engine, schema, RUNS):
        runs = job_tables(other)[1][RUNS]
        with engine.connect() as conn:
            if conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first():
                return f"; run {run_id} is in schema {other}: add --schema {other}"
    return ""


def _where_named(engine, schema: str | None) -> str:
    import sqlalchemy as sa

    return f" in schema {schema or sa.inspect(engine).default_schema_name}" if engine.dialect.name == "postgresql" \
        else ""


def _filter(ids=None, status="open", **given):
    from strseq_tasks.jobs.review_queue import QueueFilter

    return QueueFilter(ids=tuple(ids or ()), status=status, **given)


def _line(r: dict) -> str:
    from strseq_tasks.jobs.review_queue import like_it

    suggestion = "(too long for the model)" if r["suggestion"] is None else repr(r["suggestion"])
    confidence = "" if r["confidence"] is None else f" confidence {r['confidence']:.3f}"
    status = "" if r["status"] == "open" else f" [{r['status']}]"
    like = f"; {like_it(r)}" if like_it(r) else ""
    return (f"  #{r['id']} {r['table_name']}.{r['column_name']} key {r['key']}: {r['value']!r} -> {suggestion}"
            f"{confidence} ({r['reason']}{like}){status}")


def _dump(data) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


@review_app.command("list")
def list_rows(db: Db, table: Table = None, column: Column = None, run_id: RunId = None, min_confidence: MinConf = None,
              max_confidence: MaxConf = None, search: Search = None, reason: Reason = None,
              status: Annotated[str, typer.Option(help="open, approved, rejected, edited, superseded, reverted "
                                                       "or all.")] = "open",
              limit: Annotated[int, typer.Option(help="Rows to show.", min=1)] = 50,
              offset: Annotated[int, typer.Option(help="Rows to skip (the next page).", min=0)] = 0,
              order: Annotated[str, typer.Option(help="teach: the question whose answer teaches most first "
                                                      "(layouts in proportion to their rows, typical confidence first); id: as queued.")] = "teach",
              schema: Schema = None, as_json: Json = False) -> None:
    """The rows waiting for a person (or, with --status, those decided), most useful first."""
    from strseq_tasks.jobs.review_queue import queue

    where = _filter(table=table, column=column, run_id=run_id, min_confidence=min_confidence,
                    max_confidence=max_confidence, text=search, reason=reason, status=status)
    with _engine(db) as engine:
        total, rows = queue(engine, where, schema, limit, offset, order)
        hint = elsewhere(engine, where, schema) if not total else ""
        here = _where_named(engine, schema) if hint else ""
    if as_json:
        return _dump({"total": total, "offset": offset, "rows": rows})
    if hint:  # the rows are in another schema: say where, rather than "nothing to review"
        typer.echo(f"{'nothing to review' if status == 'open' else 'no row with status ' + status}{here}{hint}")
        return
    shown = f"{offset + 1}-{offset + len(rows)}" if rows else "none"
    typer.echo(f"{total} row(s) {'to review' if status == 'open' else 'with status ' + status} (showing {shown})")
    for r in rows:
        typer.echo(_line(r))
    if offset + len(rows) < total:
        typer.echo(f"more: --offset {offset + len(rows)}")


@review_app.command()
def show(db: Db, review_id: Annotated[int, typer.Argument(help="The review row's id.")], schema: Schema = None,
         as_json: Json = False) -> None:
    """One review row, with the history of its table row: questions, changes, decisions."""
    from strseq_tasks.core.metrics import char_diff
    from strseq_tasks.jobs.review_queue import review_item

    with _engine(db) as engine:
        item = review_item(engine, review_id, schema)
    if as_json:
        return _dump(item)
    typer.echo(_line(item).strip())
    if item["suggestion"] is not None and item["value"] is not None:
        typer.echo(f"  diff: {char_diff(item['value'], item['suggestion'])}")
    if item["signals"]:
        typer.echo(f"  unlike the pairs: {item['signals']}")
    typer.echo(f"  queued {item['created']} by run {item['run_id']}")
    for change in item["changes"]:
        undone = " (reverted)" if change["reverted_at"] else ""
        typer.echo(f"  changed {change['old_value']!r} -> {change['new_value']!r} by {change['model_name']} "
                   f"at {change['applied_at']}, run {change['run_id']}{undone}")
    for d in item["decisions"]:
        typer.echo(f"  {d['action']} by {d['decided_by']} at {d['decided_at']}: {d['value']!r}"
                   + (f" ({d['note']})" if d["note"] else "") + ("" if d["status"] == "active" else " [reverted]"))


def _decide(db: str, action: str, ids, where: dict, by: str | None, note: str | None, dry_run: bool,
            schema: str | None, value: str | None = None) -> None:
    """Decide the given review ids, or every open row matching the filters."""
    from strseq_tasks.jobs.decide import Decision, decide
    from strseq_tasks.jobs.review_queue import queue

    if not ids and not any(v is not None for v in where.values()):
        fail(f"say which rows to {action}: review ids, or a filter (--table, --run-id, --max-confidence, "
             "--search, ...); every open row of a table is --table NAME")
    with _engine(db) as engine:
        if not ids:
            total, rows = queue(engine, _filter(**where), schema, limit=None)
            ids = [r["id"] for r in rows]
            if not ids:
                typer.echo(f"no open review row matches{_where_named(engine, schema)}: nothing to {action}"
                           f"{elsewhere(engine, _filter(**where), schema)}")
                return
        done = decide(engine, [Decision(i, action, value) for i in ids], by or getpass.getuser(), note, schema,
                      dry_run)
    verb = {"approve": "approved", "reject": "rejected", "edit": "edited"}[action]
    head = "dry run: would have " if dry_run else ""
    typer.echo(f"{head}{verb} {len(done.applied)} row(s), {done.changed} value(s) written"
               + (f", {len(done.refused)} refused (left open)" if done.refused else ""))
    for review_id, why in done.refused[:20]:
        typer.echo(f"  #{review_id}: {why}")
    for run_id in done.runs:
        typer.echo(revert_hint(run_id, schema))


@review_app.command()
def approve(db: Db, ids: Ids = None, table: Table = None, column: Column = None, run_id: RunId = None,
            min_confidence: MinConf = None, max_confidence: MaxConf = None, search: Search = None,
            reason: Reason = None, by: By = None, note: Note = None, dry_run: DryRun = False,
            schema: Schema = None) -> None:
    """Apply the suggestions of these rows (ids, or every open row matching the filters)."""
    setup_logging(True)
    _decide(db, "approve", ids, dict(table=table, column=column, run_id=run_id, min_confidence=min_confidence,
                                     max_confidence=max_confidence, text=search, reason=reason),
            by, note, dry_run, schema)


@review_app.command()
def reject(db: Db, ids: Ids = None, table: Table = None, column: Column = None, run_id: RunId = None,
           min_confidence: MinConf = None, max_confidence: MaxConf = None, search: Search = None,
           reason: Reason = None, by: By = None, note: Note = None, dry_run: DryRun = False,
           schema: Schema = None) -> None:
    """Keep the original values of these rows: the suggestions were wrong (no later run changes them)."""
    setup_logging(True)
    _decide(db, "reject", ids, dict(table=table, column=column, run_id=run_id, min_confidence=min_confidence,
                                    max_confidence=max_confidence, text=search, reason=reason),
            by, note, dry_run, schema)


@review_app.command()
def edit(db: Db, review_id: Annotated[int, typer.Argument(help="The review row's id.")],
         value: Annotated[str, typer.Option(help="The right value, written to the column.")],
         by: By = None, note: Note = None, dry_run: DryRun = False, schema: Schema = None) -> None:
    """Give the right value of one row (written and audited; no later run changes it)."""
    setup_logging(True)
    _decide(db, "edit", [review_id], {}, by, note, dry_run, schema, value)


@review_app.command()
def serve(db: Db, host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")]
          = "127.0.0.1", port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).", min=0, max=65535)] = 8765,
          by: By = None, schema: Schema = None) -> None:
    """The review page in a browser: the queue with a character diff of each suggestion, keyboard
    shortcuts (a approve, r reject, e edit, j/k next/previous), bulk approve of a filtered group and
    the queue's progress; every decision through the same audited path as `strseq review approve`."""
    setup_logging(False)
    try:
        import uvicorn

        from strseq_tasks.review.app import create_app
    except ImportError as exc:
        fail(f"the review page needs the flows extra ({exc}): pip install 'strseq[flows]'", code=1)
    try:  # bound first, so a port in use is one error line (uvicorn would log and exit)
        sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port} ({os.strerror(exc.errno) if exc.errno else exc}): choose another "
             "--port")
    with _engine(db) as engine, sock:
        app = create_app(engine, by or getpass.getuser(), schema)
        if host not in ("127.0.0.1", "localhost", "::1"):
            typer.echo(f"warning: listening on {host}: anyone who can reach it can decide rows (there is no login)",
                       err=True)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        typer.echo(f"review page: http://{shown}:{sock.getsockname()[1]}/ (Ctrl-C stops it)")
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])


@review_app.command()
def export(db: Db, out: Annotated[Path, typer.Option(help="Where to write the pairs: .csv or .parquet.")],
           table: Table = None, column: Column = None, schema: Schema = None) -> None:
    """People's decisions as curated pairs (input, target, provenance), for the retrain.

    Approved and edited suggestions, values typed into the column, and rejected suggestions
    (the input was right)."""
    import pandas as pd

    from strseq_tasks.data.files import write_table
    from strseq_tasks.jobs.review_queue import decision_pairs

    check_output_option("--out", out, table=True)
    with _engine(db) as engine:
        pairs = decision_pairs(engine, schema, table, column)
    frame = pd.DataFrame(pairs, columns=["input", "target", "table", "column", "key", "action", "decided_by",
                                         "decided_at", "note"])
    write_output("--out", out, lambda: write_table(frame, out))
    typer.echo(f"wrote {len(frame)} pair(s) to {out}")
