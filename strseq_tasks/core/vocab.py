"""Character vocabulary: specials, Unicode NFC, case folding tables, JSON round-trip.

Pure Python and numpy; imported by the torch-free runtime.

Every text entering strseq is normalized to Unicode NFC first (``normalize_text``), so a
decomposed "é" (e + U+0301) and a precomposed "é" are the same character to the model.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")

# Case classes shared by the encoder and decoder input embeddings: a letter's upper and
# lower forms share one embedding row plus a case embedding, so "MAR", "mar" and "Mar"
# are one word to the model (see MODELING-NOTES: case splits the data).
CASE_NONE, CASE_LOWER, CASE_UPPER = 0, 1, 2


def normalize_text(text: str) -> str:
    """The canonical form of every string strseq reads: Unicode NFC."""
    return unicodedata.normalize("NFC", text)


SPACES_KEEP, SPACES_COLLAPSE = "keep", "collapse"


def collapse_spaces(text: str) -> str:
    """Every run of whitespace (tabs, non-breaking and other Unicode spaces, line breaks) one
    space; none at either end."""
    return " ".join(text.split())


def spaces_rule(pairs) -> str:
    """``collapse`` when no target has whitespace other than single spaces between words, and
    collapsing the inputs' whitespace gives no input two targets: then whitespace in an input
    carries nothing, and a model reads it collapsed (a tab or a non-breaking space it never saw
    in training reads as the space it learned). Else ``keep``."""
    seen: dict[str, str] = {}
    for src, tgt in pairs:
        if tgt != collapse_spaces(tgt) or seen.setdefault(collapse_spaces(src), tgt) != tgt:
            return SPACES_KEEP
    return SPACES_COLLAPSE


def read_text(text: str, spaces: str = SPACES_KEEP) -> str:
    """What a model reads of ``text``: NFC, and its whitespace collapsed if its rule says so."""
    text = normalize_text(text)
    return collapse_spaces(text) if spaces == SPACES_COLLAPSE else text


def lower_char(char: str) -> str:
    """Lower-case form of one character, or the character itself when that is not one char."""
    low = char.lower()
    return low if len(low) == 1 else char


def upper_char(char: str) -> str:
    """Upper-case form of one character ("ß".upper() is "SS": then the character itself)."""
    up = char.upper()
    return up if len(up) == 1 else char


def case_class(char: str) -> int:
    if lower_char(char) != char:
        return CASE_UPPER
    if upper_char(char) != char:
        return CASE_LOWER
    return CASE_NONE


@dataclass(frozen=True)
class CharVocab:
    """Characters known to a model, with their ids after the four specials."""

    chars: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    # the characters whose three copy variants (as written, lower, upper) are all in the vocabulary
    closed: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("vocabulary characters must be unique")
        for char in self.chars:
            if len(char) != 1:
                raise ValueError(f"vocabulary entries must be single characters, got {char!r}")
        index = {char: i + len(SPECIALS) for i, char in enumerate(self.chars)}
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "closed", frozenset(c for c in self.chars
                                                     if lower_char(c) in index and upper_char(c) in index))

    @classmethod
    def build(cls, texts: Iterable[str]) -> CharVocab:
        """Vocabulary of every character in ``texts`` (NFC), plus both cases of each letter."""
        seen: set[str] = set()
        for text in texts:
            for char in normalize_text(text):
                seen.update((char, lower_char(char), upper_char(char)))
        return cls(tuple(sorted(seen)))

    def __len__(self) -> int:
        return len(SPECIALS) + len(self.chars)

    def __contains__(self, char: str) -> bool:
        return char in self._index

    def id(self, char: str) -> int:
        return self._index.get(char, UNK)

    def token(self, idx: int) -> str:
        if idx < len(SPECIALS):
            return SPECIALS[idx]
        return self.chars[idx - len(SPECIALS)]

    def encode(self, text: str) -> list[int]:
        """Ids of the characters of ``text`` (NFC); unknown characters become UNK."""
        return [self._index.get(char, UNK) for char in normalize_text(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of in-vocabulary ids, stopping at EOS; specials other than EOS are skipped."""
        out = []
        for idx in ids:
            if idx == EOS:
                break
            if idx >= len(SPECIALS):
                out.append(self.chars[idx - len(SPECIALS)])
        return "".join(out)

    def fold_table(self) -> np.ndarray:
        """For each id, the id of its lower-case form (the shared embedding row)."""
        table = np.arange(len(self), dtype=np.int64)
        for i, char in enumerate(self.chars):
            table[i + len(SPECIALS)] = self._index.get(lower_char(char), i + len(SPECIALS))
        return table

    def case_table(self) -> np.ndarray:
        """For each id, its case class (CASE_NONE / CASE_LOWER / CASE_UPPER)."""
        table = np.zeros(len(self), dtype=np.int64)
        for i, char in enumerate(self.chars):
            table[i + len(SPECIALS)] = case_class(char)
        return table

    def to_json(self) -> str:
        return json.dumps(
            {"format": "strseq-charvocab/1", "specials": list(SPECIALS), "chars": list(self.chars)},
            ensure_ascii=False,
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> CharVocab:
        """``ValueError`` for anything but a vocabulary ``to_json`` wrote (bundles read theirs with
        ``bundle_schema.read_vocab``, which also names the field)."""
        data = json.loads(text)
        if (not isinstance(data, dict) or data.get("format") != "strseq-charvocab/1"
                or data.get("specials") != list(SPECIALS)):
            raise ValueError("not a strseq character vocabulary (format strseq-charvocab/1)")
        chars = data.get("chars")
        if not isinstance(chars, list) or not all(isinstance(c, str) for c in chars):
            raise ValueError("a strseq character vocabulary's chars are a list of strings")
        return cls(tuple(chars))
