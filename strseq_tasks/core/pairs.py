"""The rules every set of curated pairs follows, for ``strseq train`` and ``strseq retrain`` alike.

One road: ``strseq train`` reads a file and applies ``check_pairs``; the retraining flow
validates the pairs with the Great Expectations suite ``expectations/string_pairs.json`` (which
reports every offending row at once, in the run's report) and then applies ``check_pairs`` too.
The suite states the same rules (``tests/unit/test_pairs.py`` holds the two together):

- every input and target is non-blank and at most ``max_len`` characters (after Unicode NFC);
- a target holds no character a reviewer cannot see (``INVISIBLE``): a model learns to write
  them, and a database then holds values that look clean and compare unequal;
- an input may hold them (a tab, a zero-width space, a byte-order mark): removing them is what a
  normalizer is for; the suite reports them as a warning;
- an input has one target (after NFC); a pair given twice is kept once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from strseq_tasks.core.vocab import normalize_text
from strseq_tasks.errors import StrseqError

# C0 and C1 control characters (tab and newline included), the zero-width space, the word joiner,
# the soft hyphen, the byte-order mark and the bidirectional embeddings and isolates. Not the
# zero-width (non-)joiners: emoji sequences and Persian spelling use them.
INVISIBLE = "[\\x00-\\x1f\\x7f-\\x9f\\u00ad\\u200b\\u2060\\ufeff\\u202a-\\u202e\\u2066-\\u2069]"
_INVISIBLE = re.compile(INVISIBLE)


class PairsError(StrseqError, ValueError):
    """A pair that breaks a rule; ``row`` (1-based, as the source numbers it) and ``column`` say where."""

    def __init__(self, message: str, row: int, column: str):
        self.message, self.row, self.column = message, row, column
        super().__init__(f"row {row}, column {column!r}: {message}")


@dataclass(frozen=True)
class CheckedPairs:
    pairs: list[tuple[str, str]]  # NFC, in source order, each pair once
    duplicates: int  # pairs given again (after NFC) and dropped


def check_pairs(rows: Iterable[tuple[int, str, str]], max_len: int) -> CheckedPairs:
    """``(row, input, target)`` rows as training pairs, or ``PairsError`` naming the first row that
    breaks a rule."""
    seen: dict[str, tuple[str, int]] = {}
    pairs, duplicates = [], 0
    for row, source, target in rows:
        for column, value in (("input", source), ("target", target)):
            if not value.strip():
                raise PairsError("empty value: every pair needs a non-blank input and target", row, column)
            length = len(normalize_text(value))
            if length > max_len:
                raise PairsError(f"value is {length} characters long; the limit is {max_len} (raise it with "
                                 "--max-len)", row, column)
        hidden = _INVISIBLE.search(target)
        if hidden:
            raise PairsError(f"the target holds {hidden.group()!r} (U+{ord(hidden.group()):04X}), a character a "
                             "reviewer cannot see; clean targets must not (inputs may)", row, "target")
        source, target = normalize_text(source), normalize_text(target)
        if source in seen:
            other, first = seen[source]
            if other != target:
                raise PairsError(f"input {source!r} maps to {target!r} here but to {other!r} in row {first}; "
                                 "each input must have one target", row, "target")
            duplicates += 1
            continue
        seen[source] = (target, row)
        pairs.append((source, target))
    return CheckedPairs(pairs, duplicates)
