"""When a layout program may answer rows: read, verified, used, withdrawn. Pure Python.

For a shape with many values (``programs.py``):

1. the model decodes ``induce_rows`` of them, and a program is read off its outputs (``induce``);
2. the model decodes ``verify_rows`` more, held out from step 1; the program is accepted only if
   it reproduces every one of them (a row whose map key the program has not seen teaches the map
   instead: it counts neither way). A map borrows the word keys that maps of other layouts, of the
   same kind, confirmed (``SharedKeys``); a row the model reads otherwise stops the lending;
3. the shape's other values get the program's output, unless a word it would copy or re-case is
   one whose treatment the pairs show is irregular (``guard``), its output treats the row's words
   unlike the pairs (``agrees``), or a map key is missing: those rows go to the model, whose
   outputs keep checking the program: one disagreement withdraws it.

Everything here is deterministic: the rows decoded for a shape are chosen by a hash of their
text, not by their order in the column.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from strseq_tasks.core.programs import (
    MAP_CONFIRM,
    Lend,
    Program,
    both_shapes,
    induce,
    is_word,
    tokens,
)

INDUCE_ROWS = 8  # outputs a program is read off
VERIFY_ROWS = 24  # further outputs it must reproduce, all of them, before it is used
MIN_SAVED = 8  # a shape gets a program only when it would spare the model at least this many values
MAX_LOGPROBS = 256  # a shape's model log-probabilities kept for its programs' confidence

__all__ = ["INDUCE_ROWS", "MAP_CONFIRM", "VERIFY_ROWS", "ProgramBook", "ShapeBook", "pick_rows"]


def pick_rows(values: Iterable[str], n: int) -> list[str]:
    """``n`` of ``values``, the same ones whatever their order (by a hash of each)."""
    return sorted(values, key=lambda v: hashlib.blake2b(v.encode("utf-8"), digest_size=8).digest())[:n]


@dataclass
class ShapeBook:
    """What is known about one shape: the model's outputs seen, and the program once read off them."""

    examples: list[tuple[str, str]] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    program: Program | None = None
    agreed: int = 0  # held-out rows the program reproduced
    status: str = "learning"  # learning -> verifying -> accepted; or rejected
    why: str = ""
    covered: int = 0  # values the program answered

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @property
    def open(self) -> bool:
        return self.status in ("learning", "verifying")


class SharedKeys:
    """The word keys map parts (shape, part index) lend each other across layouts. Map parts are
    of one kind when they share a key with the same output (the brand map of "northwind 12 black
    large" and of "northwind #12 - black - large": ``northwind`` -> ``NWD`` in both), transitively;
    a kind lends a key that its parts' model outputs showed ``MAP_CONFIRM`` times in all, and only
    while they all agree on it (one part that read the key otherwise stops the lending). Words
    only: the same digits mean a day in one part and a month in another. Kept up to date as keys
    are learned (``add``): a union of kinds, never a rebuild."""

    def __init__(self) -> None:
        self.parent: dict[tuple[str, int], tuple[str, int]] = {}
        self.owner: dict[tuple[str, str], tuple[str, int]] = {}  # (key, output) -> a part that has it
        self.entries: dict[tuple[str, int], dict[str, Counter]] = {}  # a kind's root -> key -> outputs seen

    @classmethod
    def of(cls, programs: Mapping[str, Program]) -> SharedKeys:
        keys = cls()
        for shape, program in programs.items():
            keys.add_program(shape, program)
        return keys

    def add_program(self, shape: str, program: Program) -> None:
        for j, part in enumerate(program.parts):
            if part.op == "map":
                for key, out in program.maps[j].items():
                    self.add((shape, j), key, out, max(program.seen[j][key], 1))

    def add(self, part: tuple[str, int], key: str, out: str, count: int = 1) -> None:
        """Map part ``part`` saw ``key`` -> ``out`` (``count`` model outputs)."""
        if not is_word(key):
            return
        if part not in self.parent:
            self.parent[part], self.entries[part] = part, {}
        root = self._union(part, self.owner.setdefault((key, out), part))
        self.entries[root].setdefault(key, Counter())[out] += count

    def lend(self, part: tuple[str, int], key: str) -> str | None:
        """The output ``part``'s kind confirmed for ``key``, unanimously; None when there is none."""
        if part not in self.parent:
            return None
        outs = self.entries[self._find(part)].get(key)
        if not outs or len(outs) != 1:
            return None
        ((out, count),) = outs.items()
        return out if count >= MAP_CONFIRM else None

    def _find(self, part: tuple[str, int]) -> tuple[str, int]:
        while self.parent[part] != part:
            self.parent[part] = self.parent[self.parent[part]]
            part = self.parent[part]
        return part

    def _union(self, a: tuple[str, int], b: tuple[str, int]) -> tuple[str, int]:
        ra, rb = self._find(a), self._find(b)
        if ra != rb:
            if len(self.entries[ra]) < len(self.entries[rb]):
                ra, rb = rb, ra
            for key, outs in self.entries.pop(rb).items():
                self.entries[ra].setdefault(key, Counter()).update(outs)
            self.parent[rb] = ra
        return ra


class ProgramBook:
    """The programs of one model over the columns it normalizes (see the module docstring).

    ``guard(word, output)`` says whether a letter token copied or re-cased to ``output`` may be
    left to a program (a model's bundle knows which words its pairs treat irregularly), and
    ``agrees(text, output)`` whether a program's output treats the row's words as the pairs did
    (keeps the words they kept and never showed, drops the ones they dropped): a program that drops
    the middle word of "Mar Lamas Jr." must not drop the surname of "Sophie Ryan Barbosa.", a row
    of the same shape.
    """

    def __init__(self, guard: Callable[[str, str], bool] | None = None,
                 agrees: Callable[[str, str], bool] | None = None, induce_rows: int = INDUCE_ROWS,
                 verify_rows: int = VERIFY_ROWS, min_saved: int = MIN_SAVED, mark: Callable[[str], str] | None = None):
        self.guard, self.agrees, self.mark = guard, agrees, mark
        self._marks = lru_cache(maxsize=1 << 16)(self._word_marks)
        self.induce_rows, self.verify_rows, self.min_saved = induce_rows, verify_rows, min_saved
        self.shapes: dict[str, ShapeBook] = {}
        self._keys: SharedKeys | None = None
        self._stale = False  # a program was withdrawn since _keys was built: build again before answering
        self._lock = threading.RLock()  # a cleaning job's partitions may share one model on threads

    @staticmethod
    def keys(text: str) -> tuple[str | None, str]:
        """What ``shape`` reads off ``text`` (its shapes with digits of any length and exact), for a
        caller that asks for the shape of the same text many times (``shape(text, keys)``)."""
        return both_shapes(text)

    def shape(self, text: str, keys: tuple[str | None, str] | None = None) -> str:
        """``text``'s shape: with runs of digits of any length (``programs.both_shapes``), then,
        once that shape has no program, of their exact length (``shape_of``), then with each word's
        mark (``mark``): one layout holds "Dr Anouk Mulder." and "Anouk Adam Mulder.", and a title
        the pairs always drop is what tells the first from the second (``WordTreatment.mark``).
        Marks only where the layout needs them: elsewhere they would split a layout by which of its
        values the pairs happened to show (a brand seen, a brand not)."""
        coarse, base = keys or self.keys(text)
        if coarse is not None:
            book = self.shapes.get(coarse)
            if book is None or book.status != "rejected":
                # a program of the exact shape stored before shapes had digits of any length still answers
                return base if (book is None or not book.accepted) and self.accepted(base) else coarse
        book = self.shapes.get(base)
        if self.mark is None or book is None or book.status != "rejected":
            return base
        marks = self._marks(text)
        return f"{base} [{marks}]" if marks.strip(".") else base

    def _word_marks(self, text: str) -> str:
        return "".join(self.mark(t) or "." for t in tokens(text) if is_word(t))

    def book(self, shape: str) -> ShapeBook:
        return self.shapes.setdefault(shape, ShapeBook())

    def needed(self, shape: str) -> int:
        """Model outputs this shape still needs before its program is decided (0: decided)."""
        book = self.book(shape)
        if book.status == "learning":
            return self.induce_rows + self.verify_rows - len(book.examples)
        return self.verify_rows - book.agreed if book.status == "verifying" else 0

    def observe(self, text: str, output: str, logprob: float) -> None:
        """The model's ``output`` for ``text``: evidence for, or against, its shape's program."""
        with self._lock:
            self._observe(self.shape(text), text, output, logprob)

    def _observe(self, shape: str, text: str, output: str, logprob: float) -> None:
        book = self.book(shape)
        if book.status == "rejected":
            return
        if len(book.logprobs) < MAX_LOGPROBS:
            book.logprobs.append(logprob)
        if book.status == "learning":
            book.examples.append((text, output))
            if len(book.examples) == self.induce_rows:
                book.program = induce(shape, book.examples)
                book.status, book.why = ("verifying", "") if book.program else ("rejected", "no program fits")
                if book.program is not None and self._keys is not None:
                    self._keys.add_program(shape, book.program)
            return
        # a row the guard keeps from the program still tests it: skipping those would verify the program
        # on rows unlike the ones it answers (a middle name the pairs dropped, kept from "First Middle
        # Last." rows, would leave only "First Last Jr." ones to verify a program that drops the third word)
        toks = tokens(text)
        lend = self._lender(shape, fresh=False) if book.program.maps else None
        answer = book.program.run(toks, lend=lend)
        own = answer if answer is None or lend is None or not book.program.missing(toks) else None  # no lent key
        if own is None:  # a new map key: the row teaches the map (and what it lends), if the rest agrees
            if not book.program.teach(toks, output):
                book.status, book.why, self._stale = "rejected", "disagrees with the model", True
                return
            self._learned(shape, book.program, toks, output)
            if answer is None or answer != output:  # a lent key the model reads otherwise here: lent no more
                return
        elif answer != output:
            book.status, book.why, self._stale = "rejected", "disagrees with the model", True
            return
        book.agreed += 1
        if book.status == "verifying" and book.agreed >= self.verify_rows:
            book.status = "accepted"

    def accepted(self, shape: str) -> bool:
        book = self.shapes.get(shape)
        return book is not None and book.accepted

    def apply(self, text: str, shape: str | None = None) -> str | None:
        """The accepted program's output for ``text`` (of ``shape``, when the caller knows it); None:
        no program, or it leaves the row to the model."""
        shape = shape or self.shape(text)
        book = self.shapes.get(shape)
        if book is None or not book.accepted:
            return None
        answer = book.program.run(tokens(text), self.guard, self._lender(shape) if book.program.maps else None)
        if answer is not None and self.agrees is not None and not self.agrees(text, answer):
            return None
        if answer is not None:
            with self._lock:
                book.covered += 1
        return answer

    def left_to_model(self, values: Iterable[str], keys: dict[str, tuple[str | None, str]]) -> list[str]:
        """The ``values`` (with their ``keys``) that no program will answer in a call over them:
        their shape has no program, or had one withdrawn, and too few values to read or verify one
        (``needed`` + ``min_saved``). A caller may send them to the model at once."""
        by_shape: dict[str, list[str]] = {}
        for value in values:
            by_shape.setdefault(self.shape(value, keys[value]), []).append(value)
        left = []
        for shape, group in by_shape.items():
            book = self.shapes.get(shape)
            if book is not None and book.accepted:
                continue
            if (book is not None and book.status == "rejected") or len(group) < self.needed(shape) + self.min_saved:
                left.extend(group)
        return left

    def learning(self, shape: str) -> bool:
        book = self.shapes.get(shape)
        return book is None or book.status == "learning"

    def missing(self, text: str, shape: str | None = None) -> tuple[str, ...] | None:
        """What a row of a program's shape needs the model for (``Program.missing``; () nothing: the
        program answers it), or None when there is no program or it leaves the row to the model
        for good (a guarded word)."""
        shape = shape or self.shape(text)
        book = self.shapes.get(shape)
        if book is None or book.program is None or book.status == "rejected":
            return None
        toks = tokens(text)
        if self.guard is not None and book.program.guarded(toks, self.guard):
            return None
        return book.program.missing(toks, self._lender(shape) if book.program.maps else None)

    def _lender(self, shape: str, fresh: bool = True) -> Lend:
        """What the maps of ``shape``'s program may borrow from other layouts' (``SharedKeys``).
        ``fresh``: without the keys of programs withdrawn since (what answers rows); verification
        may use them a while longer (a row it counts agreed with the model all the same), which
        spares building the keys again after every withdrawal."""
        with self._lock:
            if self._keys is None or (fresh and self._stale):
                self._keys, self._stale = SharedKeys.of({s: b.program for s, b in self.shapes.items()
                                                         if b.program is not None and b.status != "rejected"}), False
            keys = self._keys
        return lambda j, key: keys.lend((shape, j), key)

    def _learned(self, shape: str, program: Program, toks: tuple[str, ...], output: str) -> None:
        """The map keys a row just taught ``program``, for the other layouts to borrow."""
        if self._keys is not None:
            outs = tokens(output)
            for j, part in enumerate(program.parts):
                if part.op == "map":
                    self._keys.add((shape, j), toks[part.source], outs[j])

    def logprob(self, text: str) -> float:
        """What a program row's confidence is calibrated from: the log of the mean probability the
        model gave its outputs on the shape's decoded rows. A program row was not scored itself: it
        is taken to be as sure as a row of its shape is on average, so a shape where some decoded
        rows were unsure gives all its program rows less confidence (a quartile of the scores did
        not: the shape's unsure rows, often the wrong ones, then passed as sure)."""
        return self.logprob_of(self.shapes[self.shape(text)])

    @staticmethod
    def logprob_of(book: ShapeBook) -> float | None:
        lps = book.logprobs
        if not lps:
            return None
        top = max(lps)
        return top + math.log(sum(math.exp(lp - top) for lp in lps) / len(lps))

    def records(self) -> list[dict]:
        """The decided shapes (accepted programs, and the shapes that have none), as JSON-ready
        records: what a store keeps for a model, so that its next job starts with them (``adopt``)."""
        with self._lock:
            return [{"shape": shape, "status": book.status, "why": book.why, "logprob": self.logprob_of(book),
                     **(book.program.to_dict() if book.program is not None else {})}
                    for shape, book in self.shapes.items()
                    if book.status in ("accepted", "rejected") and (book.logprobs or book.status == "rejected")]

    def adopt(self, records: Iterable[dict]) -> int:
        """Take the decided shapes of ``records`` (``records``' form) for shapes not decided here yet;
        returns how many programs were adopted."""
        adopted = 0
        with self._lock:
            for record in records:
                if self.shapes.get(record["shape"], ShapeBook()).status in ("accepted", "rejected"):
                    continue
                book = ShapeBook(status=record["status"], why=record.get("why", ""))
                if record["status"] == "accepted":
                    book.program, book.logprobs = Program.from_dict(record["shape"], record), [record["logprob"]]
                    adopted += 1
                self.shapes[record["shape"]] = book
            self._stale = True
        return adopted

    def summary(self) -> dict:
        """Counts and the readable programs: what a report shows."""
        accepted = {s: b for s, b in self.shapes.items() if b.accepted or (b.status == "rejected" and b.covered)}
        return {
            "programs": len([b for b in self.shapes.values() if b.accepted]),
            "covered": sum(b.covered for b in self.shapes.values()),
            "rejected": Counter(b.why for b in self.shapes.values() if b.status == "rejected"),
            "shown": [{"shape": s, "program": b.program.describe(), "covered": b.covered,
                       "status": b.status} for s, b in sorted(accepted.items(), key=lambda kv: -kv[1].covered)],
        }
