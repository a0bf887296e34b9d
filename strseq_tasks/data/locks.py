"""One cleaning run per column at a time (``job_lock``): a PostgreSQL advisory lock held by a
session of its own, or a lock file beside a SQLite database."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from strseq_tasks.data.db import DatabaseJobError, LockedError, sqlite_path

log = logging.getLogger("strseq.db")


def lock_name(url: sa.URL, table: str, column: str, schema: str | None = None) -> str:
    """One name per database, schema, table and column, however the URL spells the database (a
    SQLite file by its resolved path: relative, absolute and linked spellings are one lock)."""
    path = sqlite_path(url) if url.get_backend_name() == "sqlite" else None
    database = str(path) if path is not None else url.database
    return json.dumps(["strseq", database, schema, table, column], ensure_ascii=False)


LOCK_CHECK_S = 5.0  # how often a run checks the session that holds its PostgreSQL lock


class _PgLock:
    """A session advisory lock on a connection kept for the run, and a thread that checks that
    connection every ``LOCK_CHECK_S``. If the server ended the session (restart, failover,
    ``pg_terminate_backend``), the lock went with it: the thread takes it again on a new
    connection at once, so no second run can start on the column meanwhile. If another run was
    quicker, that run marked this one interrupted, and this run's next batch stops (RunNotActive)."""

    def __init__(self, engine: sa.Engine, name: str, what: str):
        self.engine, self.key, self.what = engine, zlib.crc32(name.encode()) - 2**31, what
        self.conn: sa.Connection | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._keep, name=f"strseq-lock {what}", daemon=True)

    def _take(self) -> bool:
        # autocommit: the lock belongs to the session, and the checks leave no transaction open
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
        except BaseException:
            conn.close()
            raise
        if not taken:
            conn.close()
            return False
        self.conn = conn
        return True

    def acquire(self) -> None:
        if not self._take():
            raise LockedError(f"another strseq run is cleaning {self.what} (advisory lock held)")
        self.thread.start()

    def _say_lost(self, exc: sa.exc.DBAPIError) -> None:
        log.warning("the connection holding the lock on %s was lost during the run (the server released "
                    "the lock then): %s", self.what, str(exc.orig).strip().splitlines()[0])

    def _alive(self) -> bool:
        try:
            self.conn.execute(sa.text("SELECT 1")).scalar()
            return True
        except sa.exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            self._say_lost(exc)
            self.conn.close()
            self.conn = None
            return False

    def _keep(self) -> None:
        lost = False
        while not self.stop.wait(LOCK_CHECK_S):
            try:
                if self.conn is not None and self._alive():
                    continue
                if self._take():
                    log.warning("took the lock on %s again on a new connection", self.what)
                    lost = False
                elif not lost:
                    lost = True
                    log.error("another strseq run took the lock on %s after this run lost it: this run stops at "
                              "its next batch (the other marked it interrupted; what this run applied is kept)",
                              self.what)
            except sa.exc.SQLAlchemyError as exc:  # the server is still away: try again at the next check
                log.warning("could not take the lock on %s again yet: %s", self.what,
                            str(exc).strip().splitlines()[0])
            except Exception:  # never let the keeper die silently
                log.exception("checking the lock on %s failed", self.what)

    def release(self) -> None:
        self.stop.set()
        self.thread.join()
        if self.conn is None:
            return
        try:
            self.conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        except sa.exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            # the session ended (the server released the lock then); the run's writes did not depend on it
            self._say_lost(exc)
        finally:
            self.conn.close()


def table_schema(engine: sa.Engine, table: str) -> str | None:
    """PostgreSQL: the schema the unqualified ``table`` resolves to on this connection's
    search_path (two schemas' tables of one name are two locks), else the current schema."""
    prep = engine.dialect.identifier_preparer
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT coalesce((SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = to_regclass(:name)), current_schema())"), {"name": prep.quote(table)}).scalar()


@contextlib.contextmanager
def job_lock(engine: sa.Engine, table: str, column: str, schema: str | None = None) -> Iterator[None]:
    """Held for the whole run; released by the database or the OS if the process dies.

    PostgreSQL: a session advisory lock on a connection kept open for the run, checked and taken
    again if the server ends that session (``_PgLock``). SQLite: an exclusive ``flock`` on a file
    beside the database file (its resolved path, so every spelling of the URL meets the same lock).
    """
    if engine.dialect.name == "postgresql":
        name = lock_name(engine.url, table, column, schema or table_schema(engine, table))
        lock = _PgLock(engine, name, f"{table}.{column}")
        lock.acquire()
        try:
            yield
        finally:
            lock.release()
        return
    if engine.dialect.name == "sqlite":
        name = lock_name(engine.url, table, column, schema)
        database = sqlite_path(engine.url)
        if database is None:
            yield  # a private in-memory database: nobody else can run on it
            return
        path = Path(f"{database}.strseq-{hashlib.sha256(name.encode()).hexdigest()[:12]}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LockedError(f"another strseq run is cleaning {table}.{column} (lock file {path})") from None
            yield
        finally:
            os.close(fd)  # closing releases the flock
        return
    raise DatabaseJobError(f"cleaning jobs support SQLite and PostgreSQL, not {engine.dialect.name}")
