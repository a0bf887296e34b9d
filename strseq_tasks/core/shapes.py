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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby

MAX_DIGITS = 5  # a longer run of digits has the shape of a five-digit one
MAX_SHAPES = 100_000  # a bundle stores at most this many (bundle_schema checks it)


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


def _letters(word: str) -> str:
    if len(word) == 1:
        return "A" if word.isupper() else "a"
    return _CASE_SHAPES[word_case(word)]


def text_shape(text: str) -> str:
    """The shape of ``text`` (see the module's docstring)."""
    out = []
    for kind, run in groupby(text.strip(), _kind):
        run = "".join(run)
        if kind == "letters":
            out.append(_letters(run))
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


def unseen_chars(texts: Iterable[str], known_chars: str | None) -> list[bool] | None:
    """For each text, whether it holds a character missing from ``known_chars``; None without them."""
    if known_chars is None:
        return None
    known = set(known_chars)
    return [not known.issuperset(t) for t in texts]


@dataclass(frozen=True)
class Familiar:
    """What a model learned from: the shapes and the characters of its training inputs (None:
    not known, e.g. a bundle written before they were stored)."""

    shapes: frozenset[str] | None = None
    chars: str | None = None

    def flags(self, texts: Sequence[str]) -> dict:
        """``novel`` and ``unseen`` per text, as ``Calibration.confidence`` takes them."""
        return {"novel": novel(texts, self.shapes), "unseen": unseen_chars(texts, self.chars)}


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
