"""Reading a table to clean in key order, a batch at a time: values that are not text (a BLOB,
bytes that are not UTF-8) come back as ``NOT_TEXT`` instead of failing the batch."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from strseq_tasks.data.db import TEXT_TYPES, DatabaseJobError, UserTable


class _NotText:
    """A value SQLite keeps in a text column that is not text: a BLOB, or bytes that are not UTF-8
    (SQLite stores whatever it is given). The job leaves such a row alone and says so."""

    def __repr__(self) -> str:
        return "NOT_TEXT"


NOT_TEXT = _NotText()


def _sqlite_text(column: sa.ColumnElement) -> list[sa.ColumnElement]:
    # the bytes and their storage class: the sqlite3 module raises on text that is not UTF-8
    # ("Could not decode to UTF-8"), failing the whole batch, run after run
    return [sa.func.typeof(column), sa.cast(column, sa.LargeBinary)]


def _decoded(kind: str, raw: bytes | None) -> str | None | _NotText:
    if kind == "null":
        return None
    if kind != "text":
        return NOT_TEXT
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return NOT_TEXT


def read_batches(engine: sa.Engine, user: UserTable, batch_size: int, after: object = None,
                 upto: object = None) -> Iterator[list[tuple]]:
    """Rows (key, value, target value) in key order, ``batch_size`` at a time: keyset pagination,
    one short read transaction per batch (never the whole table in memory). On SQLite a value that
    is not text comes back as ``NOT_TEXT``; a key that is not UTF-8 stops the job with a clear error."""
    target = sa.null().label(user.target.name) if user.target_missing else user.target
    values = [user.column] + ([] if user.in_place else [target])
    sqlite = engine.dialect.name == "sqlite"
    text_key = sqlite and isinstance(user.key.type, TEXT_TYPES)
    columns = [*(_sqlite_text(user.key) if text_key else [user.key]),
               *(part for v in values for part in (_sqlite_text(v) if sqlite else [v]))]
    last = after
    while True:
        query = sa.select(*columns).order_by(user.key).limit(batch_size)
        if last is not None:
            query = query.where(user.key > last)
        if upto is not None:
            query = query.where(user.key <= upto)
        with engine.connect() as conn:
            rows = conn.execute(query).fetchall()
        if not rows:
            return
        if sqlite:
            rows = [_decode_row(r, text_key, last, user) for r in rows]
        yield rows
        last = rows[-1][0]


def _decode_row(row: sa.Row, text_key: bool, after: object, user: UserTable) -> tuple:
    parts = list(row)
    key = parts.pop(0)
    if text_key:
        key = _decoded(key, parts.pop(0))
        if key is NOT_TEXT:
            raise DatabaseJobError(f"a key of {user.table.name}.{user.key.name} after {after!r} is not UTF-8 text: "
                                   "strseq cannot name that row; correct or delete its key (nothing of this batch "
                                   "was written)")
    return (key, *(_decoded(parts[i], parts[i + 1]) for i in range(0, len(parts), 2)))


def count_rows(engine: sa.Engine, user: UserTable, after: object = None, upto: object = None) -> int:
    """Rows with ``after < key <= upto`` (None: unbounded): an indexed count, for progress bars."""
    query = sa.select(sa.func.count()).select_from(user.table)
    if after is not None:
        query = query.where(user.key > after)
    if upto is not None:
        query = query.where(user.key <= upto)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())
