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

Words: ``words.WordTreatment``, the last of ``Familiar``'s signals.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby

from strseq_tasks.core.words import WordTreatment, word_case

MAX_DIGITS = 5  # a longer run of digits has the shape of a five-digit one
MAX_SHAPES = 100_000  # a bundle stores at most this many (bundle_schema checks it)
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
