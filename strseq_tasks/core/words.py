"""Words: what the pairs did with each word of their inputs, to tell outputs that treat a word otherwise. Pure Python.

The pairs show what happens to each word of their inputs, kept in the target (in
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
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

MAX_WORDS = 100_000  # a bundle stores at most this many words' keys (bundle_schema checks it)
MAX_UNSEEN_LAST = 0.2  # the targets' last words are a closed class when their unseen mass (Good-Turing) is at most this
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


def last_word(text: str) -> str | None:
    """The last letter run of ``text``, lower case (None: it has none)."""
    found = _WORD.findall(text.lower())
    return found[-1] if found else None


def closed_last(targets: Iterable[str], max_unseen: float = MAX_UNSEEN_LAST) -> frozenset[str] | None:
    """The keys of the targets' last words where they are a closed class (a street type, a unit, a
    legal form): the Good-Turing estimate of the chance that another target ends in a word none of
    these did, the share of targets whose last word no other target has, is at most
    ``max_unseen``. None for an open class (a surname) and for targets without letters."""
    counts = Counter(w for w in map(last_word, targets) if w is not None)
    if not counts or sum(n == 1 for n in counts.values()) > max_unseen * counts.total():
        return None
    return frozenset(map(WordTreatment.key, counts))


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
    # the keys of the targets' last words where they are a closed class (``closed_last``); None: open, or not stored
    last: frozenset[str] | None = None

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
                   _zeros(pairs), closed_last(b for _, b in pairs))

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
                  rewrites: dict[str, list[str]] | None = None, zeros: str | None = None,
                  last: list[str] | None = None) -> WordTreatment:
        """From ``to_dict``'s, ``cases_dict``'s and ``rewrites_dict``'s forms, ``zeros``
        (``decoding.trailing_zeros``) and ``last`` (``decoding.word_last``), also those of bundles
        from before 'shown', the cases, the rewrites, the zeros and the last words."""
        return cls(frozenset(stored["always_rewritten"]), frozenset(stored["ever_rewritten"]),
                   frozenset(stored["shown"]) if "shown" in stored else None,
                   None if cases is None else {c: frozenset(cases[c]) for c in CASES},
                   None if cases is None else frozenset(cases["mixed_prefixes"]),
                   None if rewrites is None else {k: frozenset(v) for k, v in rewrites.items()}, zeros,
                   None if last is None else frozenset(last))

    def manifest(self) -> dict:
        """The manifest's ``decoding`` entries that hold it: ``words``, and, each a key of its own
        that runtimes from before it ignore, ``word_cases``, ``word_rewrites``, ``trailing_zeros``,
        ``word_last``."""
        stored = {"words": self.to_dict(), "word_cases": self.cases_dict(), "word_rewrites": self.rewrites_dict(),
                  "trailing_zeros": self.zeros, "word_last": None if self.last is None else sorted(self.last)}
        return {key: value for key, value in stored.items() if value is not None}

    @classmethod
    def from_manifest(cls, decoding: dict) -> WordTreatment | None:
        """From a manifest's ``decoding`` (``manifest``'s entries); None where it holds no words."""
        words = decoding.get("words")
        return cls.from_dict(words, decoding.get("word_cases"), decoding.get("word_rewrites"),
                             decoding.get("trailing_zeros"), decoding.get("word_last")) if words else None

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

    def ends_outside(self, output: str) -> bool:
        """Whether ``output`` ends in a word no target ended in, where the targets' last words are a
        closed class (``last``)."""
        return self.last is not None and (end := last_word(output)) is not None and self.key(end) not in self.last

    def disagrees(self, text: str, output: str) -> bool:
        """Whether ``output`` keeps a word of ``text`` the pairs always rewrote, rewrites one they
        never rewrote (or never showed), lacks what every pair rewrote a word into ("pound" ->
        "pb" where the pairs wrote "lb"), ends in a word no target ended in where the targets' last
        words are a closed class ("Pky" where they end in "Pkwy", "St", "Ave"), or treats a decimal's
        trailing zeros unlike every pair
        ("5.50" kept where the pairs wrote "37.4" for "37.40")."""
        if self.ends_outside(output):
            return True
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
