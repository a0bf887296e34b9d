"""Where curated pairs and unlabeled strings come from: a CSV/Parquet file or a SQL database.

A source is a file path, or a SQLAlchemy URL (``sqlite:///pairs.db``,
``postgresql+psycopg://user@host/db``, or a reference to one: ``env:NAME``, see ``urls``) with a
table or a query. Table and column names are
checked against the reflected schema and quoted by SQLAlchemy; no value is formatted into SQL.
Everything is returned as a frame of text with a ``row`` column (1-based position in the
source) so that a validation report can point at rows. Nothing is validated here beyond the
shape (columns present, values text or null): that is the expectation suite's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from strseq_tasks.core.vocab import normalize_text
from strseq_tasks.data.files import InputFileError, read_table
from strseq_tasks.data.urls import UrlReferenceError, is_reference, mask_url

DATABASE_URL = re.compile(r"^(sqlite|postgresql|postgres|mysql|mariadb|mssql|oracle)(\+\w+)?://", re.IGNORECASE)


@dataclass(frozen=True)
class Source:
    """A file, or a database URL with ``table`` (and optional ``schema``) or ``query``."""

    location: str
    table: str | None = None
    query: str | None = None
    schema: str | None = None

    @property
    def is_database(self) -> bool:
        return bool(DATABASE_URL.match(self.location)) or is_reference(self.location)

    def describe(self) -> str:
        """Where the data came from, with any password hidden (safe for logs and reports)."""
        if not self.is_database:
            return self.location
        url = mask_url(self.location)
        what = f"table {self.table!r}" if self.table else "query"
        return f"{url} {what}"

    def check(self) -> Source:
        if self.is_database and bool(self.table) == bool(self.query):
            raise ValueError(f"{self.describe()}: give a table or a query (exactly one) for a database source")
        if not self.is_database and (self.table or self.query):
            raise ValueError(f"{self.location}: a table or query only makes sense with a database URL")
        return self


def read_columns(source: Source, columns: tuple[str, ...]) -> pd.DataFrame:
    """``columns`` of the source as text or None, NFC-normalized, plus ``row`` (1-based)."""
    source.check()
    label = source.describe()
    frame = _read_database(source, columns) if source.is_database else _read_file(Path(source.location), columns)
    out = pd.DataFrame({"row": range(1, len(frame) + 1)})
    for column in columns:
        values = []
        for i, value in enumerate(frame[column].tolist(), start=1):
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                values.append(None)
            elif isinstance(value, str):
                values.append(normalize_text(value))
            else:
                raise InputFileError(label, f"expected text, found {type(value).__name__} {value!r}",
                                     row=i, column=column)
        out[column] = pd.Series(values, dtype=object)
    return out


def _read_file(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    frame = read_table(path, ())
    _require(str(path), list(frame.columns), columns)
    return frame


def _read_database(source: Source, columns: tuple[str, ...]) -> pd.DataFrame:
    import sqlalchemy as sa

    from strseq_tasks.data.db import DatabaseJobError, create_engine

    label = source.describe()
    try:  # an existing SQLite file (a mistyped path was created empty), a server that answers
        engine = create_engine(source.location)
    except (UrlReferenceError, DatabaseJobError) as exc:
        raise InputFileError(label, str(exc)) from None
    try:
        with engine.connect() as conn:
            if source.table:
                try:
                    table = sa.Table(source.table, sa.MetaData(), autoload_with=conn, schema=source.schema)
                except sa.exc.NoSuchTableError:
                    names = sa.inspect(conn).get_table_names(schema=source.schema)
                    raise InputFileError(label, f"no such table (tables: {', '.join(names) or 'none'})") from None
                _require(label, [c.name for c in table.columns], columns)
                result = conn.execute(sa.select(*(table.c[c] for c in columns)))
                found, rows = list(result.keys()), result.fetchall()
            else:
                found, rows = _run_query(conn, source.query)
    except sa.exc.DBAPIError as exc:
        raise InputFileError(label, f"the query failed: {mask_url(str(exc.orig).strip().splitlines()[0])}") from None
    finally:
        engine.dispose()
    _require(label, found, columns)
    return pd.DataFrame(rows, columns=found, dtype=object)  # ints stay ints


def _run_query(conn, query: str) -> tuple[list[str], list[tuple]]:
    """The user's query as written, through the driver with no parameters: SQLAlchemy's text()
    would read ``:30`` in ``'10:30'`` as a bind parameter, and psycopg, handed parameters, a
    ``%`` in ``LIKE 'a%'`` as a placeholder."""
    import sqlalchemy as sa

    cursor = conn.connection.cursor()
    try:
        cursor.execute(query)
        if cursor.description is None:
            return [], []
        return [d[0] for d in cursor.description], [tuple(r) for r in cursor.fetchall()]
    except Exception as exc:  # the driver's own error (syntax, a value it cannot decode): the user's to read
        raise sa.exc.DBAPIError(query, None, exc) from None
    finally:
        cursor.close()


def _require(label: str, found: list[str], columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in found]
    if missing:
        raise InputFileError(label, f"missing column(s) {', '.join(missing)} (found: {', '.join(found) or 'none'})")


def read_pair_frame(source: Source, input_column: str = "input", target_column: str = "target") -> pd.DataFrame:
    """Pairs as a frame with columns ``row``, ``input``, ``target`` (renamed from the source's)."""
    frame = read_columns(source, (input_column, target_column))
    return frame.rename(columns={input_column: "input", target_column: "target"})[["row", "input", "target"]]


def read_strings(source: Source, column: str) -> list[str]:
    """Unlabeled strings (e.g. the column to clean, for domain-adaptive pretraining); blanks skipped."""
    frame = read_columns(source, (column,))
    return [v for v in frame[column] if v is not None and v.strip()]
