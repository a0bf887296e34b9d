"""Layout programs: rewrite rules read off a model's own outputs. Pure Python.

A real column holds a handful of layouts, and within one layout the model does the same thing to
every row: ``"SMITH, JOHN"`` -> ``"John Smith"`` is the third token title-cased, a space, the first
token title-cased. This module holds what a program is: the *shape* that groups values (each run
of letters as its case pattern, each run of digits as its exact length, whitespace and
punctuation as they are; FlashProfile's profiles, simplified), the tokens a program reads, and
``induce``, which reads a program off a few (input, model output) examples: each output token is
a constant, a function of one input token (copied, lower-, upper- or title-cased, zero-padded,
its leading zeros dropped, a slice of its digits, its initial; runs of digits joined), a learned
map of one input token (a month name to its number: FlashFill's lookup, BlinkFill's tokens) or a
two-digit year read with a pivot. ``program_book.py`` decides when a program may answer rows.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from strseq_tasks.core.shapes import case_pattern

MAX_MAP_DIGITS = 2  # a run of digits is a map key only this short (a month number, a two-digit year)
MAX_PREFIX = 3  # digits a joined number may start with that no input token gave (a country code)


# runs of letters, runs of digits, runs of whitespace, any other single character
_TOKEN = re.compile(r"[^\W\d_]+|\d+|\s+|.", re.DOTALL)
_LETTER = re.compile(r"[^\W\d_]")


@lru_cache(maxsize=1 << 16)
def tokens(text: str) -> tuple[str, ...]:
    """Runs of letters, runs of digits, runs of whitespace, and every other character alone."""
    return tuple(_TOKEN.findall(text))


def is_word(token: str) -> bool:
    """Whether a token is a run of letters."""
    return _LETTER.match(token) is not None


@lru_cache(maxsize=1 << 16)
def signature(token: str) -> str:
    """A token as its shape has it: letters as their case pattern, digits as their exact count."""
    if token[0].isdecimal():
        return "9" * len(token)
    return case_pattern(token) if is_word(token) else token


@lru_cache(maxsize=1 << 16)
def shape_of(text: str) -> str:
    """The shape of ``text``, e.g. ``"Aa 99aa, 9999"`` for ``"May 16th, 1969"`` (tokens never
    run together: two runs of letters always have something between them)."""
    return "".join(signature(t) for t in tokens(text))


def both_shapes(text: str) -> tuple[str | None, str]:
    """``text``'s shape with each run of digits as ``N`` whatever its length (``"Aa N, N"`` for
    ``"May 16, 1969"`` and ``"May 2, 1969"``; None for a text without digits), and ``shape_of(text)``,
    the tokens read once. ``N`` never occurs in ``shape_of``'s shapes (letters become case
    patterns), so the two never collide."""
    toks = tokens(text)
    fine = "".join(map(signature, toks))
    if "9" not in fine:
        return None, fine
    return "".join(map(_coarse_signature, toks)), fine


@lru_cache(maxsize=1 << 16)
def _coarse_signature(token: str) -> str:
    return "N" if token[0].isdecimal() else signature(token)


def _title(word: str) -> str:
    return word[:1].upper() + word[1:].lower()


# what an output token can be, as a function of one input token; in order of preference
FUNCTIONS: dict[str, Callable[[str], str]] = {
    "copy": lambda t: t,
    "lower": str.lower,
    "upper": str.upper,
    "title": _title,
    "int": lambda t: str(int(t)) if t.isdecimal() else "\0",
    "initial": lambda t: t[:1].upper() if t[:1].isalpha() else "\0",
}
LETTER_FUNCTIONS = {"copy", "lower", "upper", "title", "initial"}  # what a guard is asked about


@dataclass(frozen=True)
class Part:
    """One output token: ``op`` of input token ``source`` ('const' has no source; 'pad' zero-pads
    to ``value`` digits; 'map' looks the input token up in the program's map for this part)."""

    op: str
    source: int = -1
    value: str = ""

    def describe(self) -> str:
        if self.op == "const":
            return repr(self.value)
        if self.op in ("pad", "slice"):
            return f"{self.op}{self.value}(${self.source + 1})"
        if self.op == "join":
            prefix, sources = self.value.split("|")
            parts = [repr(prefix)] * bool(prefix) + [f"${int(i) + 1}" for i in sources.split(",")]
            return "join(" + ", ".join(parts) + ")"
        return f"{self.op}(${self.source + 1})"


def _explanations(toks: list[str], out: str) -> set[Part]:
    """Every function of one input token that gives ``out`` (constants and maps aside)."""
    found = set()
    digits = out.isdecimal()
    for i, tok in enumerate(toks):
        if tok.isdecimal() != digits or (not digits and tok[0].lower() != out[0].lower()):
            continue  # no function here turns digits into anything but digits, nor changes a first letter
        for name, fn in FUNCTIONS.items():
            if fn(tok) == out:
                found.add(Part(name, i))
        if not digits:
            continue
        if len(out) >= len(tok) and out == tok.zfill(len(out)):  # equal: a copy, unless lengths vary
            found.add(Part("pad", i, str(len(out))))
        if len(tok) == 2 and out in ("19" + tok, "20" + tok):
            found.add(Part("century", i))
        found.update(Part("slice", i, f"{a}:{a + len(out)}") for a in range(len(tok) - len(out) + 1)
                     if len(out) < len(tok) and tok[a : a + len(out)] == out)
    if out.isdecimal():
        found.update(_joins(toks, out))
    return found


def _joins(toks: list[str], out: str) -> set[Part]:
    """``out`` as a constant prefix of at most ``MAX_PREFIX`` digits and then two or more of the
    input's runs of digits, whole and in order ("+1 (555) 010-2030" -> "15550102030")."""
    digits = [i for i, tok in enumerate(toks) if tok.isdecimal()]
    found = set()

    def walk(pos: int, start: int, chosen: list[int], prefix: str) -> None:
        if pos == len(out):
            if len(chosen) >= 2:
                found.add(Part("join", -1, prefix + "|" + ",".join(map(str, chosen))))
            return
        for k in range(start, len(digits)):
            if out.startswith(toks[digits[k]], pos):
                walk(pos + len(toks[digits[k]]), k + 1, [*chosen, digits[k]], prefix)

    for cut in range(min(MAX_PREFIX, len(out) - 1) + 1):
        walk(cut, 0, [], out[:cut])
    return found


def _value(part: Part, toks: list[str]) -> str:
    """A part's output token for input tokens ``toks`` (not for the ``LEARNED`` ones)."""
    if part.op == "const":
        return part.value
    if part.op == "join":
        prefix, sources = part.value.split("|")
        return prefix + "".join(toks[int(i)] for i in sources.split(","))
    tok = toks[part.source]
    if part.op == "slice":
        start, end = map(int, part.value.split(":"))
        return tok[start:end]
    return tok.zfill(int(part.value)) if part.op == "pad" else FUNCTIONS[part.op](tok)


_ORDER = {name: n for n, name in enumerate([*FUNCTIONS, "pad", "slice", "century", "join"])}


def _preference(part: Part) -> tuple:
    """Which of the parts that explain every example a program takes (the least): by kind
    (``_ORDER``), then input token, then, among joins, the fewest constant digits and the earliest
    tokens, among slices the leftmost. A total order: the parts come in a set, whose order changes
    from process to process (string hashing), and a tie left to it read another program each run."""
    if part.op == "join":
        prefix, sources = part.value.split("|")
        detail: tuple = (len(prefix), tuple(int(i) for i in sources.split(",")), prefix)
    elif part.op == "slice":
        detail = tuple(int(i) for i in part.value.split(":"))
    else:
        detail = (part.value,)
    return _ORDER[part.op], part.source, detail
MAP_CONFIRM = 2  # model outputs that must agree on a map key before a program uses it
LEARNED = {"map", "century"}  # parts that learn from the model's outputs as rows come (``Program.teach``)
# what other layouts' maps of the same kind confirmed: (part index, input token) -> output, or None
Lend = Callable[[int, str], "str | None"]


@dataclass
class Program:
    """A shape's program: the output is its parts' tokens joined."""

    shape: str
    parts: tuple[Part, ...]
    maps: dict[int, dict[str, str]] = field(default_factory=dict)  # part index -> input token -> output
    seen: dict[int, Counter] = field(default_factory=dict)  # part index -> input token -> model outputs agreeing
    # part index -> [the largest two-digit year seen in the 2000s, the smallest seen in the 1900s]
    pivots: dict[int, list[int]] = field(default_factory=dict)
    # a shape whose digit runs may be of any length (``both_shapes``): input token -> the
    # lengths of that run the model's outputs showed; a row with a length shown fewer than
    # MAP_CONFIRM times is the model's, and teaches it like a new map key
    lengths: dict[int, Counter] | None = None

    def run(self, toks: list[str], guard: Callable[[str, str], bool] | None = None, lend: Lend | None = None
            ) -> str | None:
        """The output for input tokens ``toks``; None where a map lacks the key (and ``lend``, the
        keys other layouts' maps of the same kind confirmed, has none), a two-digit year falls
        between the pivots seen, or ``guard(word, output)`` says a word's treatment cannot be read
        off its shape."""
        if guard is not None and self.guarded(toks, guard):
            return None
        if self.lengths is not None and any(seen[len(toks[i])] < MAP_CONFIRM for i, seen in self.lengths.items()):
            return None
        out = []
        for j, part in enumerate(self.parts):
            value = self._learned(j, part, toks, lend) if part.op in LEARNED else _value(part, toks)
            if value is None:
                return None
            out.append(value)
        return "".join(out)

    def _learned(self, j: int, part: Part, toks: list[str], lend: Lend | None = None) -> str | None:
        tok = toks[part.source]
        if part.op == "map":  # a key is used once two of the model's outputs showed it
            if self.seen[j][tok] >= MAP_CONFIRM:
                return self.maps[j].get(tok)
            return lend(j, tok) if lend is not None else None
        lo, hi = self.pivots[j]
        return "20" + tok if int(tok) <= lo else "19" + tok if int(tok) >= hi else None

    def guarded(self, toks: list[str], guard: Callable[[str, str], bool]) -> bool:
        """Whether ``guard`` keeps a word of this row from the program (see ``ProgramBook``)."""
        return any(part.op in LETTER_FUNCTIONS and is_word(toks[part.source])
                   and not guard(toks[part.source], _value(part, toks)) for part in self.parts)

    def teach(self, toks: list[str], output: str) -> bool:
        """Learn a model's output for a row the program could not cover (a new map key, a year
        between the pivots), when every other part agrees with it; False: the program does not
        describe this row."""
        outs = tokens(output)
        if len(outs) != len(self.parts):
            return False
        learned = []
        for j, (part, out) in enumerate(zip(self.parts, outs)):
            if part.op not in LEARNED:
                if _value(part, toks) != out:
                    return False
                continue
            tok, known = toks[part.source], self._learned(j, part, toks)
            if part.op == "map":
                known = self.maps[j].get(tok)
            if known is not None and known != out:
                return False
            if part.op == "century" and out not in ("19" + tok, "20" + tok):
                return False
            learned.append((j, part, tok, out))
        for i, seen in (self.lengths or {}).items():
            seen[len(toks[i])] += 1
        for j, part, tok, out in learned:
            if part.op == "map":
                self.maps[j][tok] = out
                self.seen[j][tok] += 1
            elif out.startswith("20"):
                self.pivots[j][0] = max(self.pivots[j][0], int(tok))
            else:
                self.pivots[j][1] = min(self.pivots[j][1], int(tok))
        return True

    def missing(self, toks: list[str], lend: Lend | None = None) -> tuple[str, ...]:
        """The learned parts' inputs this row needs the model for (a map key neither confirmed nor
        lent, a year between the pivots): rows that share them teach the program the same thing."""
        lengths = tuple(f"#{i}:{len(toks[i])}" for i, seen in (self.lengths or {}).items()
                        if seen[len(toks[i])] < MAP_CONFIRM)
        return lengths + tuple(f"{j}:{toks[p.source]}" for j, p in enumerate(self.parts)
                               if p.op in LEARNED and self._learned(j, p, toks, lend) is None)

    def describe(self) -> str:
        return " ".join(p.describe() for p in self.parts)

    def to_dict(self) -> dict:
        """JSON-ready (``from_dict`` reads it back)."""
        return {"parts": [[p.op, p.source, p.value] for p in self.parts],
                "maps": {str(j): m for j, m in self.maps.items()},
                "seen": {str(j): dict(c) for j, c in self.seen.items()},
                "pivots": {str(j): list(p) for j, p in self.pivots.items()},
                **({"lengths": {str(i): {str(n): c for n, c in seen.items()} for i, seen in self.lengths.items()}}
                   if self.lengths is not None else {})}

    @classmethod
    def from_dict(cls, shape: str, data: dict) -> Program:
        return cls(shape, tuple(Part(op, int(source), str(value)) for op, source, value in data["parts"]),
                   {int(j): dict(m) for j, m in data["maps"].items()},
                   {int(j): Counter(c) for j, c in data["seen"].items()},
                   {int(j): [int(lo), int(hi)] for j, (lo, hi) in data["pivots"].items()},
                   None if data.get("lengths") is None else
                   {int(i): Counter({int(n): int(c) for n, c in seen.items()}) for i, seen in data["lengths"].items()})


def _pivots(examples: list[tuple[list[str], list[str]]], j: int, source: int) -> list[int] | None:
    """[largest year in the 2000s, smallest in the 1900s] of output token ``j`` from input token
    ``source``; None when they overlap (no one pivot splits them)."""
    lo = max((int(toks[source]) for toks, outs in examples if outs[j].startswith("20")), default=-1)
    hi = min((int(toks[source]) for toks, outs in examples if outs[j].startswith("19")), default=100)
    return [lo, hi] if lo < hi else None


def _pick_map(examples: list[tuple[list[str], list[str]]], j: int) -> tuple[int, dict[str, str], Counter] | None:
    """The input token that output token ``j`` is a function of, with fewest distinct keys (the most
    evidence that it is one), its map and how often each key was seen; None when none is."""
    best = None
    for i in range(len(examples[0][0])):
        if any(toks[i].isdecimal() and len(toks[i]) > MAX_MAP_DIGITS for toks, _ in examples):
            continue  # a number is a value, not a key: a map of it would only ever learn
        table: dict[str, str] = {}
        if all(table.setdefault(toks[i], outs[j]) == outs[j] for toks, outs in examples):
            if best is None or len(table) < len(best[1]):
                best = (i, table)
    return best and (best[0], best[1], Counter(toks[best[0]] for toks, _ in examples))


def induce(shape: str, examples: list[tuple[str, str]]) -> Program | None:
    """The program that maps every example input (all of ``shape``) to its output, preferring
    functions of an input token, then constants, then maps; None when there is none."""
    pairs = [(tokens(a), tokens(b)) for a, b in examples]
    width = len(pairs[0][1])
    if any(len(outs) != width for _, outs in pairs):
        return None
    parts, maps, seen, pivots = [], {}, {}, {}
    for j in range(width):
        common = set.intersection(*(_explanations(toks, outs[j]) for toks, outs in pairs))
        centuries = {p: _pivots(pairs, j, p.source) for p in common if p.op == "century"}
        common -= {p for p, pivot in centuries.items() if pivot is None}
        if common:
            parts.append(min(common, key=_preference))
            if parts[-1].op == "century":
                pivots[j] = centuries[parts[-1]]
        elif len({outs[j] for _, outs in pairs}) == 1:
            parts.append(Part("const", value=pairs[0][1][j]))
        else:
            picked = _pick_map(pairs, j)
            if picked is None:
                return None
            parts.append(Part("map", picked[0]))
            maps[j], seen[j] = picked[1], picked[2]
    lengths = None
    if "N" in shape:  # any-length digit runs: the lengths the examples showed, each run's own
        lengths = {i: Counter(len(toks[i]) for toks, _ in pairs) for i, tok in enumerate(pairs[0][0])
                   if tok[0].isdecimal()}
    return Program(shape, tuple(parts), maps, seen, pivots, lengths)
