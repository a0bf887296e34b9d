"""Known values: the set of valid outputs a column may take, and the strings near an input.

A data team often has a list of valid values next to its dirty column: a dictionary, the product
codes in the catalogue, the city names of a country, the clean values already in the table.
Given one, decoding (``transduce``) prefers it: an input that is already a known value is left
alone, and an input within ``max_distance`` edits of known values becomes the nearest of them
(fewest edits first; the model's probability breaks ties, helped by a prior from the list's
order when training found that it helps: see ``log_prior``). Inputs with no known value nearby
are decoded freely, as without a list. This is what makes spelling correction of words never
seen in the pairs possible: a few pairs cannot teach a model which words exist.

Distances are optimal string alignment (Damerau-Levenshtein with adjacent swaps counted as one
edit), case-sensitive, on NFC text; the search uses rapidfuzz over values grouped by length.

An all-lower-case value (``mississippi``, a word list's usual form) says nothing about case, so
it also stands for its capitalized and upper-case forms: ``Mississippi`` and ``MISSISSIPPI`` are
known, and ``Missisipi`` becomes ``Mississippi`` (the input's case kept: upper, first letter
upper, or as listed). A value with capitals of its own (``McDonald``, ``iPhone``) is matched as
written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from strseq_tasks.core.vocab import normalize_text

DEFAULT_MAX_DISTANCE = 2
DEFAULT_MAX_CANDIDATES = 16  # ties at the nearest distance that are scored by the model


@dataclass(frozen=True)
class Near:
    values: tuple[str, ...]  # the known values at the nearest distance (at most max_candidates)
    distance: int  # 0 when the text itself is known


def recase(value: str, like: str) -> str:
    """An all-lower-case ``value`` in the case of ``like``: upper case if ``like`` is (two or more
    letters), first letter upper if ``like``'s is, else as it is."""
    letters = [c for c in like if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return value.upper()
    if letters and letters[0].isupper():
        i = next(i for i, c in enumerate(value) if c.isalpha()) if any(c.isalpha() for c in value) else 0
        return value[:i] + value[i:i + 1].upper() + value[i + 1:]
    return value


class KnownValues:
    """An immutable set of known values (NFC, blanks dropped, duplicates merged, order kept)."""

    def __init__(self, values: Iterable[str], max_distance: int = DEFAULT_MAX_DISTANCE,
                 max_candidates: int = DEFAULT_MAX_CANDIDATES):
        if max_distance < 0:
            raise ValueError(f"max_distance must be >= 0, got {max_distance}")
        if max_candidates < 1:
            raise ValueError(f"max_candidates must be >= 1, got {max_candidates}")
        seen: dict[str, None] = {}
        for value in values:
            if not isinstance(value, str):
                raise TypeError(f"known values must be strings, got {type(value).__name__}: {value!r}")
            value = normalize_text(value)
            if value.strip():
                seen[value] = None
        self.values: tuple[str, ...] = tuple(seen)
        self.max_distance = max_distance
        self.max_candidates = max_candidates
        self._set = frozenset(self.values)
        self._positions = {v: i for i, v in enumerate(self.values)}
        self._by_length: dict[int, list[str]] = {}
        for value in self.values:
            self._by_length.setdefault(len(value), []).append(value)
        # the case-neutral (all-lower-case) values, also matched against an input's lower case
        self._lower = frozenset(v for v in self.values if v == v.lower() and v != v.upper())
        self._lower_by_length: dict[int, list[str]] = {}
        for value in self.values:
            if value in self._lower:
                self._lower_by_length.setdefault(len(value), []).append(value)

    def __len__(self) -> int:
        return len(self.values)

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and normalize_text(text) in self._set

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KnownValues) and (self.values, self.max_distance) == (other.values,
                                                                                      other.max_distance)

    def __repr__(self) -> str:
        return f"KnownValues({len(self)} values, max_distance={self.max_distance})"

    def fingerprint(self) -> str:
        """sha256 of the values in order (what a manifest records)."""
        digest = hashlib.sha256()
        for value in self.values:
            digest.update(value.encode("utf-8"))
            digest.update(b"\0")
        return digest.hexdigest()

    def near(self, text: str) -> Near | None:
        """The known values nearest to ``text`` within ``max_distance`` edits, or None.

        Ties keep the list's order (put more likely values first when writing the list). A text
        with capitals is also compared, in lower case, with the all-lower-case values, which
        then come back in its case (``recase``).
        """
        text = normalize_text(text)
        if text in self._set:
            return Near((text,), 0)
        lower = text.lower()
        if lower != text and lower in self._lower:
            return Near((text,), 0)  # "January" with "january" listed: known, kept as typed
        best = self._search(text, self._by_length)
        if lower != text:
            best += [(d, p, recase(v, text)) for d, p, v in self._search(lower, self._lower_by_length)]
        if not best:
            return None
        nearest = min(d for d, _, _ in best)
        tied = sorted({(p, v) for d, p, v in best if d == nearest})[: self.max_candidates]
        return Near(tuple(dict.fromkeys(v for _, v in tied)), nearest)

    def _search(self, text: str, by_length: dict[int, list[str]]) -> list[tuple[int, int, str]]:
        """(distance, position in the list, value) of the values within ``max_distance`` of ``text``."""
        best: list[tuple[int, int, str]] = []
        size = len(text)
        for length in range(max(size - self.max_distance, 1), size + self.max_distance + 1):
            group = by_length.get(length)
            if not group:
                continue
            for value, distance, _ in process.extract(
                text, group, scorer=OSA.distance, score_cutoff=self.max_distance, limit=None
            ):
                best.append((int(distance), self._positions[value], value))
        return best

    def log_prior(self, values: Iterable[str]) -> np.ndarray:
        """A Zipf prior from list order, ``-log(1 + position)``: write the list most likely value
        first (a dictionary by word frequency, a catalogue by sales) and the first of two equally
        near values is preferred. This is the noisy-channel spelling corrector's P(word), which
        the pairs cannot teach for words they never show. Decoding adds it to the model's
        log-probability times a weight that training chooses on validation (0 when list order
        carries no information, e.g. an alphabetical list)."""
        return -np.log1p(np.array([self._position(normalize_text(v)) for v in values], dtype=np.float64))

    def _position(self, value: str) -> int:
        """A value's place in the list; a recased one takes its lower-case entry's."""
        found = self._positions.get(value)
        return found if found is not None else self._positions[value.lower()]

    def to_json(self) -> str:
        """The bundle's ``known_values.json`` (JSON keeps values with line breaks or odd characters)."""
        return json.dumps({"max_distance": self.max_distance, "values": list(self.values)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> KnownValues:
        """``ValueError`` for anything but a list ``to_json`` wrote (bundles read theirs with
        ``bundle_schema.read_known``, which also checks it against the manifest)."""
        data = json.loads(text)
        values = data.get("values") if isinstance(data, dict) else None
        distance = data.get("max_distance") if isinstance(data, dict) else None
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError("not a known-values list: 'values' must be a list of strings")
        if isinstance(distance, bool) or not isinstance(distance, int):
            raise ValueError(f"not a known-values list: 'max_distance' must be a whole number, not {distance!r}")
        return cls(values, max_distance=distance)
