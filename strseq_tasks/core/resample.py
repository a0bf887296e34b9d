"""Copied spans replaced by new strings, the same on both sides of a pair.

What a target copies from its input ("Sep 29, 1957" -> "1957-09-29", "2704 Alexander Sq" ->
"2704 Alexander Sq") can be anything: replaced by new characters in input and target alike, the
pair stays correct and teaches "copy this, map the rest". With a few pairs a model otherwise
learns the values themselves: at 50 pairs it wrote "Alexaner" and "Bennet" for street names it
had never seen (column benchmark, addresses).

- **Digits** (``resample_digits``): digit runs the target copies verbatim, each replaced by random
  digits ("Sep 66, 0487" -> "0487-09-66").
- **Letters** (``resample_letters``): letter runs the target copies as a whole word, in the same
  or another case ("ALEXANDER" -> "Alexander"), replaced by random letters drawn from the
  letters the pairs copy, in each side's case. Only *values* are replaced: a word seen in one
  pair only, of three letters or more, written in lower, upper or title case. Words that recur
  across pairs ("St", "Apt", "van", "cup") are the column's vocabulary, whose treatment the
  pairs teach; replacing them could contradict it.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence

from strseq_tasks.core.words import word_case

_DIGIT_RUN = re.compile("[0-9]+")
_LETTER_RUN = re.compile(r"[^\W\d_]+")
MIN_LETTERS = 3  # shorter letter runs (initials, "St", "fl") are layout more often than values


# -- digits ---------------------------------------------------------------------------------------
def copied_digit_runs(src: str, tgt: str) -> list[tuple[int, int, int]]:
    """(src_start, tgt_start, length) of digit runs that the target copies unambiguously.

    A run qualifies when it occurs exactly once in the input (as a substring, so "1" inside
    "19" disqualifies it) and exactly once in the target; overlapping target spans are dropped.

    A copy of one or two digits inside a longer target number whose other digits the input does
    not supply (other than zero-padding in front) does not qualify: those digits may depend on
    it. A two-digit year's century does ("'13" -> "2013", "'85" -> "1985"); resampled, such copies
    taught the model that it does not, and dates at 200 pairs lost 10 points to the century
    (column benchmark, development seed 100: 97 of 123 errors).
    """
    found: list[tuple[int, int, int]] = []
    taken: list[tuple[int, int]] = []
    for match in _DIGIT_RUN.finditer(src):
        run = match.group()
        if src.count(run) != 1 or tgt.count(run) != 1:
            continue
        start = tgt.index(run)
        if any(start < end and begin < start + len(run) for begin, end in taken):
            continue
        taken.append((start, start + len(run)))
        found.append((match.start(), start, len(run)))
    covered = {i for begin, end in taken for i in range(begin, end)}
    return [(s, t, n) for s, t, n in found if n > 2 or not _completes_a_number(tgt, t, n, covered)]


def _completes_a_number(tgt: str, start: int, length: int, covered: set[int]) -> bool:
    """Whether the target's digit run around ``tgt[start:start + length]`` holds digits that no
    copy supplies, zero-padding in front aside ("2013" around "13"; not "04" around "4")."""
    begin, end = start, start + length
    while begin > 0 and tgt[begin - 1].isdigit():
        begin -= 1
    while end < len(tgt) and tgt[end].isdigit():
        end += 1
    own = [i for i in range(begin, end) if i not in covered]
    padding = all(tgt[i] == "0" for i in own) and all(i < start for i in own)
    return bool(own) and not padding


def resample_digits(src: str, tgt: str, rng: random.Random) -> tuple[str, str]:
    """Replace each unambiguously copied digit run by random digits, the same in input and target.

    Label-consistent for formatting tasks (dates, phone numbers, codes): the target copies these
    digits, so new digits make a new correct pair and teach "copy digits, map the rest".
    """
    runs = copied_digit_runs(src, tgt)
    src_chars, tgt_chars = list(src), list(tgt)
    for src_start, tgt_start, length in runs:
        for k in range(length):
            digit = rng.choice("0123456789")
            src_chars[src_start + k] = digit
            tgt_chars[tgt_start + k] = digit
    return "".join(src_chars), "".join(tgt_chars)


# -- letters --------------------------------------------------------------------------------------
def _in_case(letters: str, case: str) -> str:
    return {"lower": letters, "upper": letters.upper(), "title": letters[:1].upper() + letters[1:]}[case]


def copied_letter_runs(src: str, tgt: str) -> list[tuple[re.Match, re.Match]]:
    """(source run, target run) of the whole words the target copies, ignoring case: each occurs
    once among its side's words (case-folded), both sides in lower, upper or title case."""
    src_runs = [m for m in _LETTER_RUN.finditer(src) if len(m.group()) >= MIN_LETTERS]
    tgt_runs = list(_LETTER_RUN.finditer(tgt))
    src_count = Counter(m.group().casefold() for m in _LETTER_RUN.finditer(src))
    tgt_count = Counter(m.group().casefold() for m in tgt_runs)
    found = []
    for s in src_runs:
        key = s.group().casefold()
        if src_count[key] != 1 or tgt_count[key] != 1 or word_case(s.group()) is None:
            continue
        t = next(m for m in tgt_runs if m.group().casefold() == key)
        if word_case(t.group()) is not None:
            found.append((s, t))
    return found


class LetterValues:
    """Which copied words of a set of pairs are values (seen in one pair only), and the lower-case
    letters they are made of (what new values are drawn from)."""

    def __init__(self, pairs: Sequence[tuple[str, str]]):
        seen = Counter(w for src, _ in pairs for w in {m.group().casefold() for m in _LETTER_RUN.finditer(src)})
        self.words = {w for w, n in seen.items() if n == 1}
        letters = [c for src, tgt in pairs for s, _ in copied_letter_runs(src, tgt)
                   if s.group().casefold() in self.words for c in s.group().lower()]
        self._pool = letters

    def runs(self, src: str, tgt: str) -> list[tuple[re.Match, re.Match]]:
        return [(s, t) for s, t in copied_letter_runs(src, tgt) if s.group().casefold() in self.words]

    def draw(self, length: int, rng: random.Random) -> str:
        return "".join(rng.choice(self._pool) for _ in range(length))


def resample_letters(src: str, tgt: str, values: LetterValues, rng: random.Random) -> tuple[str, str]:
    """Replace each copied value word (``LetterValues``) by random letters of the same length, in
    the input's case in the input and the target's case in the target."""
    runs = values.runs(src, tgt)
    if not runs:
        return src, tgt
    src_parts, tgt_edits = [], []
    last = 0
    for s, t in sorted(runs, key=lambda st: st[0].start()):
        new = values.draw(len(s.group()), rng)
        src_parts += [src[last : s.start()], _in_case(new, word_case(s.group()))]
        last = s.end()
        tgt_edits.append((t.start(), t.end(), _in_case(new, word_case(t.group()))))
    src_parts.append(src[last:])
    out, last = [], 0
    for start, end, text in sorted(tgt_edits):
        out += [tgt[last:start], text]
        last = end
    out.append(tgt[last:])
    return "".join(src_parts), "".join(out)
