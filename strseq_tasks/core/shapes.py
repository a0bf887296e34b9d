"""Input shapes and characters: what a model learned from, to tell inputs unlike it. Pure Python.

A shape keeps what a layout is made of and drops the values: each run of letters becomes its
case pattern (``Aa`` title case, ``AA`` upper, ``aa`` lower, ``Ax`` mixed, ``A`` or ``a`` one
letter), each run of digits becomes as many ``9`` as it has digits (at most five), punctuation and
other symbols stay as they are, and whitespace runs become one space (ends dropped)::

    "GOTTHARD Giovanni"   -> "AA Aa"
    "Smith, John A."      -> "Aa, Aa A."
    "May 16th, 1969"      -> "Aa 99aa, 9999"
    "+1 (555) 010-2030"   -> "+9 (999) 999-9999"

A trained model stores the shapes of every input it learned from (the pairs and their augmented
copies). An input whose shape is not among them is a layout the model never saw: it is right less
often at the same probability (on the column benchmark's held-out layouts, names read ``LAST
First`` as ``First Last`` at 0.99999), so calibration gives such rows a shift of their own
(``calibration.Calibration.novel_shift``).

Characters likewise: an input holding a character that no training input held (an Irish ``Ó``
in a column whose pairs never had one, read as a middle initial and dropped at 0.99999) gets
``Calibration.unseen_char_shift``.

Words, last: the pairs show what happens to each word of their inputs, kept in the target (in
any case) or rewritten. An output that treats an input word unlike every pair did is right less
often (``Calibration.disagree_shift``): it keeps a word the pairs always rewrote ("Pky" left
where the pairs wrote "Pkwy", at 0.99999), or rewrites a word they always kept or never showed
("Sq" -> "St", "Boone" -> "Bone", "KESTREL" -> "KTR"). A word no pair showed is expected kept: in
a column, new words are mostly values, copied. A bundle stores the words as keyed hashes
(``WordTreatment.key``), not as text: the words a column's pairs rewrite can be people's middle
names, and a bundle goes to every server that cleans.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import groupby

MAX_DIGITS = 5  # a longer run of digits has the shape of a five-digit one
MAX_SHAPES = 100_000  # a bundle stores at most this many (bundle_schema checks it)
MAX_WORDS = 100_000  # likewise for the words of ``WordTreatment``
MIN_REWRITES = 2  # pairs that must agree on what a word becomes (one pair's new words name every change it made)
_WORD = re.compile(r"[^\W\d_]+")
_DIGITS = re.compile(r"\d+")
_FRACTION = re.compile(r"\d+/\d+")
_ZEROS = re.compile(r"(?<![\d.])\d+\.\d*0(?![\d.])")  # a decimal ending in a zero ("37.40"), not a date's "12.10."


def word_case(word: str) -> str | None:
    """'lower', 'upper' or 'title'; None for a mixed case ("McDonald": its case is part of the value)."""
    if word.islower():
        return "lower"
    if word.isupper():
        return "upper"
    if word[0].isupper() and word[1:].islower():
        return "title"
    return None


_CASE_SHAPES = {"lower": "aa", "upper": "AA", "title": "Aa", None: "Ax"}


def case_pattern(word: str) -> str:
    """A run of letters as a shape has it: ``Aa`` title case, ``AA`` upper, ``aa`` lower, ``Ax`` mixed,
    ``A`` or ``a`` one letter (this module's shapes and layout programs' share it)."""
    if len(word) == 1:
        return "A" if word.isupper() else "a"
    return _CASE_SHAPES[word_case(word)]


def text_shape(text: str) -> str:
    """The shape of ``text`` (see the module's docstring)."""
    out = []
    for kind, run in groupby(text.strip(), _kind):
        run = "".join(run)
        if kind == "letters":
            out.append(case_pattern(run))
        elif kind == "digits":
            out.append("9" * min(len(run), MAX_DIGITS))
        else:
            out.append(" " if kind == "space" else run)
    return "".join(out)


def _kind(char: str) -> str:
    if char.isalpha():
        return "letters"
    if char.isdecimal():
        return "digits"
    return "space" if char.isspace() else "other"


def shapes_of(texts: Iterable[str]) -> set[str]:
    """The distinct shapes of ``texts``."""
    return {text_shape(t) for t in texts}


def novel(texts: Iterable[str], known_shapes: set[str] | frozenset[str] | None) -> list[bool] | None:
    """For each text, whether its shape is missing from ``known_shapes``; None without shapes
    (a model trained before shapes were stored, or on a column of more than ``MAX_SHAPES``)."""
    if known_shapes is None:
        return None
    return [text_shape(t) not in known_shapes for t in texts]


ASCII_ALNUM = frozenset(string.ascii_letters + string.digits)


def unseen_chars(texts: Iterable[str], known_chars: str | None) -> list[bool] | None:
    """For each text, whether it holds a character missing from ``known_chars``; None without them."""
    if known_chars is None:
        return None
    known = set(known_chars)
    return [not known.issuperset(t) for t in texts]


def lost_chars(texts: Sequence[str], outputs: Sequence[str], known_chars: str | None) -> list[bool] | None:
    """For each text, whether its output lacks (in any case) a letter or digit of the text beyond
    ASCII that no training input held: the model discarded what no pair showed it discard ("Ó" of
    "Loretto Ó Scanaill"), a guess however sure it is. ASCII letters and digits are in every
    model's vocabulary and its pretraining (a month's "v" unseen in 50 pairs is still read), and
    spaces and punctuation are not counted (tidying them is what columns need most); None without
    ``known_chars``."""
    if known_chars is None:
        return None
    known = set(known_chars) | ASCII_ALNUM
    return [bool(lost_letters(t, o, known)) for t, o in zip(texts, outputs)]


def lost_letters(text: str, output: str, known: set[str] | frozenset[str]) -> list[str]:
    """The letters and digits of ``text`` outside ``known`` that ``output`` lacks in any case (sorted)."""
    return sorted(c for c in set(text) - known if c.isalnum() and c.casefold() not in output.casefold())


def words(text: str) -> set[str]:
    """The lower-case letter runs of ``text``."""
    return set(_WORD.findall(text.lower()))


def _units(text: str) -> set[str]:
    """``words`` and the digit runs of ``text``: what a rewritten word may become ("Apr" -> "04")."""
    return words(text) | set(_DIGITS.findall(text))


CASES = ("lower", "upper", "title", "mixed")
CASING_KEYS = (*CASES, "mixed_prefixes")  # a bundle's decoding.word_cases
MAX_PREFIX = 4  # the longest prefix before an inner capital kept ("mac" of MacArthur, "van" of VanDyke)


def _rewrites(pairs: Sequence[tuple[str, str]], always: set[str]) -> dict[str, set[str]]:
    """What each word of ``always`` (words no target kept), or fraction no target kept ("3/4"),
    becomes: the words and digit runs that every pair holding it wrote and its input lacked, where
    at least ``MIN_REWRITES`` pairs hold it ("pound" -> {"lb"}, "apr" -> {"04"}, "3/4" -> {"75"}).
    A word that always comes with another one held by more pairs has no rewrite of its own: a word
    dropped rather than rewritten ("monday") shares its pairs' other changes by chance ("monday,
    jun. 15" and "monday 30 jun." both write "06"); a number the input holds, padded or not, is
    the input's own ("2nd" -> "02" is not "nd"'s)."""
    into: dict[str, set[str]] = {}
    beside: dict[str, set[str]] = {}  # a word -> the words of ``always`` in every pair holding it
    held: Counter = Counter()
    kept = {f for a, b in pairs for f in _FRACTION.findall(a) if f in b}  # "3/4" is a word here too
    for a, b in pairs:
        numbers = {int(n) for n in _DIGITS.findall(a)}  # "2nd" -> "02" is the input's number, not "nd"'s
        ws = (words(a) & always) | (set(_FRACTION.findall(a)) - kept)
        new = {u for u in _units(b) - _units(a) if not (u.isdigit() and int(u) in numbers)}
        for w in ws:
            held[w] += 1
            into[w], beside[w] = (into[w] & new, beside[w] & ws) if w in into else (new, ws - {w})
    return {w: new for w, new in into.items()
            if new and held[w] >= MIN_REWRITES and not any(held[v] > held[w] for v in beside[w])}


def _zeros(pairs: Sequence[tuple[str, str]]) -> str | None:
    """'dropped' or 'kept': what every pair whose input holds a decimal with trailing zeros
    ("37.40") did with them, where at least ``MIN_REWRITES`` such decimals are held."""
    kept = [z in b for a, b in pairs for z in _ZEROS.findall(a)]
    if len(kept) < MIN_REWRITES or (any(kept) and not all(kept)):
        return None
    return "kept" if kept[0] else "dropped"


def _casing(targets: Iterable[str]) -> tuple[dict[str, frozenset[str]], frozenset[str]]:
    """``WordTreatment.cased`` and ``.prefixes`` of the target texts."""
    cased: dict[str, set[str]] = {c: set() for c in CASES}
    prefixes = set()
    for target in targets:
        for word in _WORD.findall(target):
            case = word_case(word) or "mixed"
            cased[case].add(word.lower())
            if case == "mixed":
                prefixes.update(word[:i].lower() for i in range(2, min(len(word), MAX_PREFIX + 1))
                                if word[i].isupper())
    return ({c: frozenset(map(WordTreatment.key, ws)) for c, ws in cased.items()},
            frozenset(map(WordTreatment.key, prefixes)))


@dataclass(frozen=True)
class WordTreatment:
    """What the pairs did with the words of their inputs, as ``key``s of the lower-case words:
    ``always_rewritten``, the words no target kept; ``ever_rewritten``, those some target did not
    keep; ``shown``, every word of the inputs (None: a bundle from before it was stored)."""

    always_rewritten: frozenset[str]
    ever_rewritten: frozenset[str]
    shown: frozenset[str] | None = None
    # the cases the targets write each word in ('lower', 'upper', 'title', 'mixed' -> keys), and the
    # keys of what comes before an inner capital of a mixed-case target word ("mc" of "McDonald"):
    # which words' case a layout program may not decide (``may_program``); None: not stored
    cased: dict[str, frozenset[str]] | None = None
    prefixes: frozenset[str] | None = None
    # what a word the pairs always rewrote becomes: key -> the keys of the target words and digit
    # runs that every pair holding it (at least ``MIN_REWRITES``) wrote and its input did not hold
    # ("pound" -> "lb", "may" -> "05");
    # None: not stored (a bundle from before them)
    rewrites: dict[str, frozenset[str]] | None = None
    # what the pairs do with a decimal's trailing zeros ("5.50"): 'dropped' or 'kept' by every pair
    # holding one (at least ``MIN_REWRITES``); None: either, too few, or not stored
    zeros: str | None = None

    @staticmethod
    @lru_cache(maxsize=1 << 16)  # a column's words recur: a month name, a street type, a legal form
    def key(word: str) -> str:
        """A word as a bundle stores it: 16 hex digits of its BLAKE2b hash."""
        return hashlib.blake2b(word.encode("utf-8"), digest_size=8, person=b"strseq-words").hexdigest()

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> WordTreatment | None:
        """From training pairs; None when their inputs hold more than ``MAX_WORDS`` words (free
        text, where a word's treatment says little)."""
        pairs = list(pairs)
        kept, rewritten = Counter(), Counter()
        for a, b in pairs:
            in_target = words(b)
            for w in words(a):
                (kept if w in in_target else rewritten)[w] += 1
        if len(kept.keys() | rewritten.keys()) > MAX_WORDS:
            return None
        cased, prefixes = _casing(b for _, b in pairs)
        always = {w for w in rewritten if not kept[w]}
        return cls(frozenset(map(cls.key, always)), frozenset(map(cls.key, rewritten)),
                   frozenset(map(cls.key, kept.keys() | rewritten.keys())), cased, prefixes,
                   {cls.key(w): frozenset(map(cls.key, new)) for w, new in _rewrites(pairs, always).items()},
                   _zeros(pairs))

    def to_dict(self) -> dict[str, list[str]]:
        """As a bundle's manifest stores it (``decoding.words``)."""
        return {"always_rewritten": sorted(self.always_rewritten), "ever_rewritten": sorted(self.ever_rewritten),
                "shown": sorted(self.shown or ())}

    def cases_dict(self) -> dict[str, list[str]] | None:
        """The cases, as a manifest stores them (``decoding.word_cases``, a key of its own that
        runtimes from before it ignore: a model trained now still serves on them)."""
        if self.cased is None or self.prefixes is None:
            return None
        return {**{c: sorted(keys) for c, keys in self.cased.items()}, "mixed_prefixes": sorted(self.prefixes)}

    def rewrites_dict(self) -> dict[str, list[str]] | None:
        """What words become, as a manifest stores it (``decoding.word_rewrites``, a key of its own,
        like the cases)."""
        return None if self.rewrites is None else {k: sorted(v) for k, v in sorted(self.rewrites.items())}

    @classmethod
    def from_dict(cls, stored: dict[str, list[str]], cases: dict[str, list[str]] | None = None,
                  rewrites: dict[str, list[str]] | None = None, zeros: str | None = None) -> WordTreatment:
        """From ``to_dict``'s, ``cases_dict``'s and ``rewrites_dict``'s forms and ``zeros``
        (``decoding.trailing_zeros``), also those of bundles from before 'shown', the cases, the
        rewrites and the zeros."""
        return cls(frozenset(stored["always_rewritten"]), frozenset(stored["ever_rewritten"]),
                   frozenset(stored["shown"]) if "shown" in stored else None,
                   None if cases is None else {c: frozenset(cases[c]) for c in CASES},
                   None if cases is None else frozenset(cases["mixed_prefixes"]),
                   None if rewrites is None else {k: frozenset(v) for k, v in rewrites.items()}, zeros)

    def manifest(self) -> dict:
        """The manifest's ``decoding`` entries that hold it: ``words``, and, each a key of its own
        that runtimes from before it ignore, ``word_cases``, ``word_rewrites``, ``trailing_zeros``."""
        stored = {"words": self.to_dict(), "word_cases": self.cases_dict(), "word_rewrites": self.rewrites_dict(),
                  "trailing_zeros": self.zeros}
        return {key: value for key, value in stored.items() if value is not None}

    @classmethod
    def from_manifest(cls, decoding: dict) -> WordTreatment | None:
        """From a manifest's ``decoding`` (``manifest``'s entries); None where it holds no words."""
        words = decoding.get("words")
        return cls.from_dict(words, decoding.get("word_cases"), decoding.get("word_rewrites"),
                             decoding.get("trailing_zeros")) if words else None

    def mark(self, word: str) -> str:
        """What a layout program's shape notes of a word (``program_book``): 'r' for a word the
        pairs always rewrote (a title, a suffix, a month name), 'l' for one they write in lower case
        (a particle: "van", "da"), '' for the others."""
        key = self.key(word.lower())
        if key in self.always_rewritten:
            return "r"
        return "l" if self.cased is not None and key in self.cased["lower"] else ""

    def may_program(self, word: str, output: str) -> bool:
        """Whether a layout program (``programs.py``) may copy or re-case ``word`` to ``output``: not
        when the pairs rewrote the word, wrote it in another case than ``output``'s, or wrote a word
        beginning like it with an inner capital ("MCGREGOR" after a pair's "McDonald"); never without
        the cases stored (a bundle from before them)."""
        low = word.lower()
        key = self.key(low)
        if self.cased is None or self.prefixes is None or key in self.ever_rewritten:
            return False
        case = word_case(output) or "mixed"
        if any(key in keys for c, keys in self.cased.items() if c != case):
            return False
        return not any(self.key(low[:i]) in self.prefixes for i in range(2, min(len(low), MAX_PREFIX + 1)))

    def new_words(self, text: str) -> list[str] | None:
        """The words of ``text`` (lower case, sorted) that no input of the pairs showed: what only
        an answer can teach the model about it (``review_queue.teaching_order`` groups questions
        by them). None when ``shown`` is not known."""
        if self.shown is None:
            return None
        return sorted(w for w in words(text) if self.key(w) not in self.shown)

    def disagrees(self, text: str, output: str) -> bool:
        """Whether ``output`` keeps a word of ``text`` the pairs always rewrote, rewrites one they
        never rewrote (or never showed), lacks what every pair rewrote a word into ("pound" ->
        "pb" where the pairs wrote "lb"), or treats a decimal's trailing zeros unlike every pair
        ("5.50" kept where the pairs wrote "37.4" for "37.40")."""
        if self.zeros is not None and any((z in output) != (self.zeros == "kept") for z in _ZEROS.findall(text)):
            return True
        ws, kept = words(text), words(output)
        if any((key in self.always_rewritten) if w in kept else (key not in self.ever_rewritten)
               for w in ws for key in (self.key(w),)):
            return True
        into = self.rewrites or {}
        wanted = [into[key] for w in ws | set(_FRACTION.findall(text)) if (key := self.key(w)) in into]
        if not wanted:
            return False
        written = {self.key(x) for x in _units(output)}
        return any(not new & written for new in wanted)


@dataclass(frozen=True)
class Familiar:
    """What a model learned from: the shapes, the characters and the words' treatment of its
    training inputs (None: not known, e.g. a bundle written before they were stored)."""

    shapes: frozenset[str] | None = None
    chars: str | None = None
    words: WordTreatment | None = None

    @classmethod
    def of(cls, shapes: frozenset[str] | None, pairs: Sequence[tuple[str, str]]) -> Familiar:
        """The given shapes, and the characters and word treatment of the training ``pairs``."""
        return cls(shapes, "".join(sorted(set().union(*(a for a, _ in pairs)))), WordTreatment.of(pairs))

    def flags(self, texts: Sequence[str], outputs: Sequence[str] | None = None) -> dict:
        """``novel``, ``unseen`` and (given the ``outputs``) ``disagree`` and ``lost`` per text, as
        ``Calibration.confidence`` takes them."""
        disagree = None if outputs is None or self.words is None else [
            self.words.disagrees(t, o) for t, o in zip(texts, outputs)]
        return {"novel": novel(texts, self.shapes), "unseen": unseen_chars(texts, self.chars), "disagree": disagree,
                "lost": None if outputs is None else lost_chars(texts, outputs, self.chars)}


class ShapeLog:
    """The shapes of the inputs a training run learned from, epoch by epoch (the model it keeps is
    that of one epoch), until there are more than ``MAX_SHAPES`` in all: a column without layouts
    (free text), where novelty would say nothing; then ``upto`` is None."""

    def __init__(self, texts: Iterable[str]):
        self.epochs: list[set[str]] | None = [shapes_of(texts)]
        self._every = set(self.epochs[0])

    def add(self, texts: Iterable[str]) -> None:
        if self.epochs is not None:
            self.epochs.append(shapes_of(texts))
            self._every |= self.epochs[-1]
            if len(self._every) > MAX_SHAPES:
                self.epochs, self._every = None, set()

    def upto(self, n: int) -> frozenset[str] | None:
        """The shapes of the first ``n`` entries (the pairs, then each epoch's data); None: too many."""
        return None if self.epochs is None else frozenset().union(*self.epochs[:n])
