"""The registry's alias files (``NAME/aliases/production.json``): their format, checked on every
read, and the locks that make each move a whole read-modify-write.

An alias file is ``{"version": 3, "history": [1, 2], "updated": "...", "reason": "...", "moves":
[...]}``: ``history`` is the stack ``rollback`` pops (the versions it pointed to before), and
``moves`` every move ever made, a rollback included, oldest first (``{"version", "updated",
"reason"}`` each; the newest ``MAX_MOVES``), so a rollback does not forget the version it left. A file
that is not exactly that (truncated, edited, a version that is not a number) is refused with
what is wrong, never half-used: ``parse_alias`` raises ``ValueError`` and the registry names the
file. Two moves of one alias at once must both land, in some order, with the full history:
``alias_lock`` holds an exclusive ``flock`` on ``aliases/.ALIAS.lock`` around the move on a local
folder (or a shared one whose filesystem honours ``flock``, as NFSv4 does), and a lock per alias
within one process elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 1 << 20  # an alias file is ~200 bytes and its moves; a larger one is not an alias file
MAX_MOVES = 2000  # moves kept in an alias file (~300 KB): five years of nightly promotions
LOCK_TIMEOUT_S = 30.0  # a move holds the lock for milliseconds; 30 s means a stuck process
VERSION_PATTERN = r"[1-9][0-9]{0,17}"  # ASCII digits only (str.isdigit() is true for '²')


@dataclass(frozen=True)
class Move:
    version: int
    updated: str
    reason: str


@dataclass(frozen=True)
class Alias:
    version: int
    history: tuple[int, ...]  # versions it pointed to before, oldest first (what rollback pops)
    updated: str
    reason: str
    moves: tuple[Move, ...] = ()  # every move, oldest first (files from before moves were kept: none)

    def moved(self, version: int, history: tuple[int, ...], updated: str, reason: str) -> Alias:
        """The alias after a move to ``version``, the move appended to ``moves``."""
        moves = (*self.moves, Move(version, updated, reason))[-MAX_MOVES:]
        return Alias(version, history, updated, reason, moves)


def _short(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _version(value: object, what: str) -> int:
    if type(value) is not int or value < 1:  # bool is an int; "3" and 3.0 are not versions
        raise ValueError(f"{what} {_short(value)} is not a version number (1, 2, ...)")
    return value


def parse_alias(raw: bytes) -> Alias:
    """The alias a file's bytes hold; ``ValueError`` saying what is wrong otherwise."""
    if len(raw) > MAX_BYTES:
        raise ValueError(f"larger than {MAX_BYTES} bytes")
    if not raw.strip():
        raise ValueError("empty")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError(f"not a JSON object but {_short(data)}")
    if "version" not in data:
        raise ValueError('no "version"')
    version = _version(data["version"], '"version"')
    history = data.get("history", [])
    if not isinstance(history, list):
        raise ValueError(f'"history" {_short(history)} is not a list of version numbers')
    history = tuple(_version(v, 'an entry of "history"') for v in history)
    texts = {key: data.get(key, "") for key in ("updated", "reason")}
    for key, value in texts.items():
        if not isinstance(value, str):
            raise ValueError(f'"{key}" {_short(value)} is not text')
    moves = data.get("moves", [])
    if not isinstance(moves, list):
        raise ValueError(f'"moves" {_short(moves)} is not a list')
    return Alias(version, history, texts["updated"], texts["reason"], tuple(_move(m) for m in moves))


def _move(entry: object) -> Move:
    if not isinstance(entry, dict) or set(entry) != {"version", "updated", "reason"}:
        raise ValueError(f'an entry of "moves" {_short(entry)} is not {{"version", "updated", "reason"}}')
    if not isinstance(entry["updated"], str) or not isinstance(entry["reason"], str):
        raise ValueError(f'an entry of "moves" {_short(entry)} has a time or reason that is not text')
    return Move(_version(entry["version"], 'an entry of "moves"'), entry["updated"], entry["reason"])


def alias_bytes(state: Alias) -> bytes:
    return json.dumps({"version": state.version, "history": list(state.history), "updated": state.updated,
                       "reason": state.reason, "moves": [vars(m) for m in state.moves]},
                      indent=2, ensure_ascii=False).encode("utf-8")


_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


@contextlib.contextmanager
def process_lock(key: str) -> Iterator[None]:
    """One move at a time per ``key`` within this process (what a registry without file locks,
    ``memory://`` or an object store, can do here)."""
    with _process_locks_guard:
        lock = _process_locks.setdefault(key, threading.Lock())
    if not lock.acquire(timeout=LOCK_TIMEOUT_S):
        raise TimeoutError(f"another thread of this process held {key} for {LOCK_TIMEOUT_S:.0f} s")
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def file_lock(path: Path, timeout: float | None = None) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if missing, kept afterwards), released when the
    block ends or the process dies. Separate opens conflict, so threads of one process are
    serialized too."""
    # read-only is enough for flock, and works on a lock file another user created
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    timeout = LOCK_TIMEOUT_S if timeout is None else timeout
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path} stayed locked by another process for {timeout:.0f} s "
                                       "(a move takes milliseconds: is one stuck?)") from None
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # releases the lock
