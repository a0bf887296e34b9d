"""The database side of the cleaning job: strseq's own tables, the user's table, locks.

strseq keeps five tables beside the user's (created on first use, same database and schema;
columns a later strseq added are added to an older database's tables, ``upgrade_job_tables``):

- ``strseq_runs``: one row per cleaning run (parameters, model, counts, progress, status);
- ``strseq_audit``: one row per value changed (old value, new value, confidence, model, time),
  written in the same transaction as the change: what ``revert`` restores from;
- ``strseq_review``: predictions not applied (below the confidence threshold, or inputs too long
  for the model), waiting for a person;
- ``strseq_processed``: which rows a model version has already handled, and the value it left
  (a hash): a re-run skips them, so every row is applied exactly once even after a crash;
- ``strseq_decisions``: what people decided about rows (approved, rejected or edited a
  suggestion, or typed a value into the column themselves), who, when and why: no later run of
  any model touches a decided row (``jobs.decide``);
- ``strseq_programs``: the layout programs a model's cleaning jobs read and verified (or found
  none for), by the model's content sha and the layout's shape, so the next night's job starts
  with them (``jobs.program_store``).

Table and column names come from the reflected schema and are quoted by SQLAlchemy; values are
always bound parameters. Keys must be a single integer or text column (a primary key or unique).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from strseq_tasks.data.urls import mask_url, resolve_url
from strseq_tasks.errors import StrseqError

log = logging.getLogger("strseq.db")

RUNS, AUDIT, REVIEW, PROCESSED = "strseq_runs", "strseq_audit", "strseq_review", "strseq_processed"
DECISIONS = "strseq_decisions"
PROGRAMS = "strseq_programs"
TEXT_TYPES = (sa.String, sa.Text, sa.Unicode, sa.UnicodeText)
KEY_TYPES = (sa.Integer, sa.BigInteger, sa.SmallInteger, *TEXT_TYPES)


def create_engine(url: str | sa.URL) -> sa.Engine:
    """An engine for strseq's jobs: connections checked before use (a server that dropped an idle
    connection costs a reconnect, not a failed batch); SQLite waits up to 30 s for a concurrent
    writer's lock (partitions of one run write side by side) instead of failing at once.
    ``url`` may be a reference (``env:NAME``, ``prefect-secret:NAME``; see ``urls``).

    A SQLite file must exist: SQLite would create an empty database for a mistyped path, and the
    job would then fail on a missing table, leaving the stray file behind."""
    try:
        url = sa.make_url(resolve_url(url) if isinstance(url, str) else url)
    except sa.exc.ArgumentError as exc:
        raise DatabaseJobError(f"not a database URL: {exc} (expected e.g. sqlite:///file.db or "
                               "postgresql+psycopg://user@host/db)") from None
    connect_args = {}
    if url.get_backend_name() == "sqlite":
        connect_args = {"timeout": 30}
        path = sqlite_path(url)
        if path is not None and not path.is_file():
            where = "is a folder" if path.is_dir() else "does not exist"
            raise DatabaseJobError(f"no SQLite database at {path} (the file {where}; strseq does not create "
                                   "databases: check the path, and that sqlite:/// is followed by a relative path, "
                                   "sqlite://// by an absolute one)")
    shown = mask_url(url.render_as_string(hide_password=False))  # ?password=... too
    try:
        engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise DatabaseJobError(f"{shown} is not a database URL strseq can use ({exc}; e.g. sqlite:///file.db or "
                               "postgresql+psycopg://user@host/db)") from None
    try:  # a wrong host, port, database or password fails here, clearly, before anything runs
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        reason = mask_url(str(exc.orig).strip().splitlines()[0])
        if url.password:
            reason = reason.replace(str(url.password), "***")
        raise DatabaseUnavailable(f"cannot connect to {shown}: {reason}") from None
    return engine


def sqlite_path(url: sa.URL) -> Path | None:
    """The file of a SQLite URL, resolved (symbolic links and relative paths: two spellings of one
    file give one path); None for an in-memory database."""
    database = url.database or ""
    if url.query.get("uri") in ("true", "1") and database.startswith("file:"):
        database = database[len("file:"):].split("?", 1)[0]
    if not database or database == ":memory:" or url.query.get("mode") == "memory":
        return None
    return Path(os.path.realpath(database))


class DatabaseJobError(StrseqError):
    """A cleaning job that cannot run as asked (unknown table or column, wrong type, locked)."""


class DatabaseUnavailable(DatabaseJobError):
    """The database did not answer (down, or a wrong host, port, database or password: the
    driver cannot tell which). A scheduled task tries again; the command line says so at once."""

    transient = True


class LockedError(DatabaseJobError):
    """Another run holds the lock on this table and column."""


def job_tables(schema: str | None = None) -> tuple[sa.MetaData, dict[str, sa.Table]]:
    # long: five table definitions, one or two columns a line
    meta = sa.MetaData(schema=schema)
    ts = sa.DateTime(timezone=True)
    runs = sa.Table(
        RUNS, meta,
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("table_name", sa.Text, nullable=False), sa.Column("key_column", sa.Text, nullable=False),
        sa.Column("column_name", sa.Text, nullable=False), sa.Column("target_column", sa.Text, nullable=False),
        sa.Column("model_name", sa.Text), sa.Column("model_version", sa.Integer), sa.Column("model_sha", sa.Text),
        sa.Column("threshold", sa.Float), sa.Column("params", sa.Text),
        sa.Column("status", sa.Text, nullable=False), sa.Column("started", ts), sa.Column("finished", ts),
        sa.Column("rows_read", sa.Integer, default=0), sa.Column("changed", sa.Integer, default=0),
        sa.Column("unchanged", sa.Integer, default=0), sa.Column("review", sa.Integer, default=0),
        sa.Column("skipped", sa.Integer, default=0), sa.Column("already_done", sa.Integer, default=0),
        sa.Column("conflicts", sa.Integer, default=0), sa.Column("last_key", sa.Text), sa.Column("error", sa.Text),
        sa.Column("decided", sa.Integer, default=0),  # rows a person decided: left alone
        sa.Column("by_program", sa.Integer, default=0),  # rows a layout program answered (serve/runtime.py)
    )
    audit = sa.Table(
        AUDIT, meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), nullable=False, index=True),
        sa.Column("table_name", sa.Text, nullable=False), sa.Column("key", sa.Text, nullable=False),
        sa.Column("column_name", sa.Text, nullable=False), sa.Column("old_value", sa.Text),
        sa.Column("new_value", sa.Text), sa.Column("source_value", sa.Text), sa.Column("confidence", sa.Float),
        sa.Column("model_name", sa.Text), sa.Column("model_version", sa.Integer),
        sa.Column("applied_at", ts, nullable=False), sa.Column("reverted_at", ts),
        sa.Index("ix_strseq_audit_row", "table_name", "column_name", "key"),  # a row's history
    )
    review = sa.Table(
        REVIEW, meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), nullable=False, index=True),
        sa.Column("table_name", sa.Text, nullable=False), sa.Column("key", sa.Text, nullable=False),
        sa.Column("column_name", sa.Text, nullable=False), sa.Column("value", sa.Text),
        sa.Column("suggestion", sa.Text), sa.Column("confidence", sa.Float), sa.Column("reason", sa.Text),
        sa.Column("status", sa.Text, nullable=False, default="open"), sa.Column("created", ts, nullable=False),
        # the value's words no pair of the model showed (lower case, space-separated; NULL: not known),
        # which the review queue asks about as groups of their own (review_queue.teaching_order)
        sa.Column("new_words", sa.Text),
        # what set the row apart from the model's training inputs, in words (clean_plan.signals; NULL: not known)
        sa.Column("signals", sa.Text),
    )
    processed = sa.Table(
        PROCESSED, meta,
        sa.Column("table_name", sa.Text, primary_key=True), sa.Column("column_name", sa.Text, primary_key=True),
        sa.Column("model_sha", sa.Text, primary_key=True), sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value_hash", sa.Text, nullable=False), sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False, index=True),
    )
    decisions = sa.Table(
        DECISIONS, meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("table_name", sa.Text, nullable=False), sa.Column("column_name", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),  # approve, reject, edit, hand_edit
        sa.Column("source_value", sa.Text),  # the input the decision is about
        sa.Column("value", sa.Text),  # the right value, as the person decided it
        sa.Column("suggestion", sa.Text), sa.Column("confidence", sa.Float),  # what the model had said, if anything
        sa.Column("value_hash", sa.Text, nullable=False),  # of what the row's input column held after it
        sa.Column("review_id", sa.Integer), sa.Column("run_id", sa.String(36), index=True),
        sa.Column("decided_by", sa.Text), sa.Column("note", sa.Text), sa.Column("decided_at", ts, nullable=False),
        sa.Column("status", sa.Text, nullable=False, default="active"),  # active, reverted
        sa.Index("ix_strseq_decisions_row", "table_name", "column_name", "key"),
    )
    programs = sa.Table(
        PROGRAMS, meta,
        sa.Column("model_sha", sa.Text, primary_key=True), sa.Column("shape", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),  # accepted; rejected: the layout has no program
        sa.Column("program", sa.Text, nullable=False),  # JSON: ProgramBook.records()
        sa.Column("updated", ts, nullable=False),
    )
    return meta, {RUNS: runs, AUDIT: audit, REVIEW: review, PROCESSED: processed, DECISIONS: decisions,
                  PROGRAMS: programs}


def present_columns(engine: sa.Engine | sa.Connection, table: sa.Table) -> list:
    """``table``'s columns to SELECT from a database whose copy may be an older strseq's: a column
    it lacks reads as NULL, so reading (``strseq review list``) writes nothing; the next run or
    decision adds it (``upgrade_job_tables``)."""
    have = {c["name"] for c in sa.inspect(engine).get_columns(table.name, schema=table.schema)}
    return [c if c.name in have else sa.null().label(c.name) for c in table.columns]


def upgrade_job_tables(engine: sa.Engine, meta: sa.MetaData) -> list[str]:
    """Add to strseq's existing tables the columns and indexes a later strseq defines (all
    nullable: old rows read as NULL); returns what was added, for the log. Run after
    ``create_all``, which creates missing tables but never changes an existing one."""
    inspector = sa.inspect(engine)
    prep = engine.dialect.identifier_preparer
    added = []
    with engine.begin() as conn:
        for table in meta.tables.values():
            have = {c["name"] for c in inspector.get_columns(table.name, schema=table.schema)}
            for column in table.columns:
                if column.name not in have:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.exec_driver_sql(f"ALTER TABLE {prep.format_table(table)} ADD COLUMN "
                                         f"{prep.quote(column.name)} {kind}")
                    added.append(f"{table.name}.{column.name}")
            indexes = {i["name"] for i in inspector.get_indexes(table.name, schema=table.schema)}
            for index in table.indexes:
                if index.name not in indexes:
                    index.create(conn, checkfirst=True)
                    added.append(index.name)
    return added


def value_hash(value: str | None) -> str:
    return hashlib.sha256(("\0null" if value is None else value).encode("utf-8")).hexdigest()[:32]


def key_text(key: object) -> str:
    """A key as stored in strseq's tables (JSON: 42 and "42" stay distinct)."""
    return json.dumps(key, ensure_ascii=False)


def key_value(text: str) -> object:
    return json.loads(text)


@dataclass(frozen=True)
class UserTable:
    """The user's table, reflected: what the job reads and writes."""

    table: sa.Table
    key: sa.Column
    column: sa.Column
    target: sa.Column  # the column written: ``column`` itself (in place) or the output column
    target_missing: bool = False  # a dry run into an output column not created yet

    @property
    def in_place(self) -> bool:
        return self.target.name == self.column.name


def reflect_table(engine: sa.Engine, table: str, key: str, column: str, output_column: str | None,
                  create_output: bool = False, schema: str | None = None, dry_run: bool = False) -> UserTable:
    """Check the names against the schema (clear errors), and add the output column if asked
    (a dry run never adds it: it reads the missing column as empty)."""
    # long: one check of the reflected table after another, each with its own message, in the order a user fixes them
    def load() -> sa.Table:
        inspector = sa.inspect(engine)
        if schema is not None and schema not in (schemas := inspector.get_schema_names()):
            raise DatabaseJobError(f"no schema {schema!r} (schemas: {', '.join(schemas)})")
        try:
            with _quiet_reflection():
                return sa.Table(table, sa.MetaData(schema=schema), autoload_with=engine)
        except sa.exc.NoSuchTableError:
            names = inspector.get_table_names(schema=schema)
            where = f" in schema {schema!r}" if schema else ""
            dotted = (f"; a table in schema {table.split('.')[0]!r} is named with --schema "
                      f"{table.split('.')[0]} --table {table.split('.', 1)[1]}") if "." in table and not schema else ""
            raise DatabaseJobError(f"no table {table!r}{where} (tables: {', '.join(names) or 'none'}){dotted}") \
                from None

    reflected = load()

    def col(name: str, role: str) -> sa.Column:
        if name not in reflected.c:
            found = ", ".join(c.name for c in reflected.columns)
            raise DatabaseJobError(f"table {table!r} has no {role} column {name!r} (columns: {found})")
        return reflected.c[name]

    key_col, source = col(key, "key"), col(column, "text")
    if key_col.name == source.name and output_column is None:
        raise DatabaseJobError(f"--in-place on the key column {key!r} would change the keys that name the rows "
                               "(and that their audit rows point to): clean it into an output column, or key the "
                               "table by another column")
    if not isinstance(key_col.type, KEY_TYPES):
        raise DatabaseJobError(f"key column {key!r} is {key_col.type}; an integer or text key is needed")
    if not key_is_unique(engine, reflected, key):
        raise DatabaseJobError(f"key column {key!r} is neither the primary key nor unique (a constraint or "
                               "index on that column alone, not partial): rows could be updated twice")
    shared = shared_key(engine, reflected, key_col)
    if shared is not None:
        raise DatabaseJobError(f"key column {key!r} holds {shared!r} on several rows, though an index says it is "
                               "unique (SQLite compares the column with its own collation, the index with its "
                               "own): rows could be updated twice. Nothing was written")
    bad_keys = unaddressable_keys(engine, reflected, key_col)
    if bad_keys:
        raise DatabaseJobError(f"key column {key!r} holds {bad_keys} NULL (or, on SQLite, non-text, non-integer) "
                               "value(s): those rows cannot be named by their key, so they could be neither "
                               "audited nor reverted; give them keys, or choose another key column. Nothing was "
                               "written")
    if not isinstance(source.type, TEXT_TYPES):
        raise DatabaseJobError(f"column {column!r} is {source.type}, not text")
    if output_column is None:
        return UserTable(reflected, key_col, source, source)
    if output_column not in reflected.c and dry_run:
        if output_column in (key, column):
            raise DatabaseJobError("the output column must differ from the key and input columns (or use --in-place)")
        return UserTable(reflected, key_col, source, sa.Column(output_column, sa.Text), target_missing=True)
    if output_column not in reflected.c:
        if not create_output:
            raise missing_output_column(table, output_column)
        prep = engine.dialect.identifier_preparer
        with engine.begin() as conn:
            # the driver's own SQL, no parameters: text() would read ":name" in a quoted name as a
            # bind parameter, and "%" needs no escaping when nothing is bound
            conn.exec_driver_sql(f"ALTER TABLE {prep.format_table(reflected)} "
                                 f"ADD COLUMN {prep.quote(output_column)} TEXT")
        reflected = load()
    target = col(output_column, "output")
    if not isinstance(target.type, TEXT_TYPES):
        raise DatabaseJobError(f"output column {output_column!r} is {target.type}, not text")
    if target.name == source.name or target.name == key_col.name:
        raise DatabaseJobError("the output column must differ from the key and input columns (or use --in-place)")
    return UserTable(reflected, reflected.c[key], reflected.c[column], target)


def missing_output_column(table: str, column: str) -> DatabaseJobError:
    return DatabaseJobError(f"table {table!r} has no output column {column!r} (pass --create-output-column to add it)")


@contextlib.contextmanager
def _quiet_reflection() -> Iterator[None]:
    """SQLAlchemy warns that it skips SQLite indexes on expressions; strseq needs none of them (an
    index on an expression proves no key unique), and the user needs no warning about it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index",
                                sa.exc.SAWarning)
        yield


def key_is_unique(engine: sa.Engine, table: sa.Table, column: str) -> bool:
    """Is ``column`` unique by a rule the database enforces on that column alone: the primary key
    (not part of a composite one), or a unique constraint or index on exactly this column that is
    neither partial (``WHERE ...``) nor on an expression, and on PostgreSQL valid (a ``CREATE
    UNIQUE INDEX CONCURRENTLY`` that failed on duplicates leaves an invalid index that enforces
    nothing). NULLs escape all of these (``null_keys``)."""
    if engine.dialect.name == "postgresql":
        where = "n.nspname = :schema" if table.schema else "pg_table_is_visible(c.oid)"  # as reflection found it
        query = sa.text(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            f"WHERE c.relname = :table AND {where} AND i.indisunique AND i.indisvalid AND i.indpred IS NULL "
            "AND i.indexprs IS NULL AND i.indnkeyatts = 1 AND a.attname = :col")
        bound = {"table": table.name, "col": column, **({"schema": table.schema} if table.schema else {})}
        with engine.connect() as conn:
            return bool(conn.execute(query, bound).scalar())
    primary = [c.name for c in table.primary_key.columns]
    if primary == [column]:
        return True
    inspector = sa.inspect(engine)
    with _quiet_reflection():
        uniques = inspector.get_unique_constraints(table.name, schema=table.schema)
        indexes = inspector.get_indexes(table.name, schema=table.schema)
    partial = [i for i in indexes if any(k.endswith("_where") and v is not None
                                         for k, v in (i.get("dialect_options") or {}).items())]
    return any(u["column_names"] == [column] for u in uniques) or any(
        i.get("unique") and i["column_names"] == [column] and i not in partial for i in indexes)


def shared_key(engine: sa.Engine, table: sa.Table, key: sa.Column) -> object | None:
    """SQLite: a key value that ``WHERE key = ?`` would find on several rows, if any. A unique index
    may compare with another collation than the column's (``k TEXT COLLATE NOCASE`` with a unique
    index on ``k COLLATE BINARY`` holds 'a' and 'A'), and SQLAlchemy does not reflect collations;
    GROUP BY compares as the column does. PostgreSQL's unique indexes are exact (``key_is_unique``)."""
    if engine.dialect.name != "sqlite":
        return None
    with engine.connect() as conn:
        return conn.execute(sa.select(key).where(key.is_not(None)).group_by(key)
                            .having(sa.func.count() > 1).limit(1)).scalar()


def unaddressable_keys(engine: sa.Engine, table: sa.Table, key: sa.Column) -> int:
    """Rows whose key cannot name them alone: NULL (a unique constraint allows any number of NULLs,
    and SQLite lets a TEXT primary key hold them), or on SQLite a BLOB or a floating-point value
    (``typeof`` other than integer and text), which no key parameter matches exactly."""
    bad = key.is_(None)
    if engine.dialect.name == "sqlite":
        bad = sa.or_(bad, sa.func.typeof(key).notin_(["integer", "text"]))
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(bad)).scalar_one())
