"""Label-consistent augmentation: noisy copies of inputs, targets kept as they are.

Noise kinds (each with a per-character or per-string rate, all driven by one seeded
``random.Random``): adjacent swaps, insertions, deletions, keyboard-neighbour and phonetic
substitutions, doubled letters (typo noise, applied to letters only: digits and punctuation
carry information a typo model must not invent), case noise and whitespace noise.

Two kinds change targets too, identically on both sides (``core/resample.py``): *digit
resampling* replaces digit runs that the target copies verbatim from the input ("Sep 29, 1957"
-> "1957-09-29") by random digits ("Sep 66, 0487" -> "0487-09-66"), so formatting tasks (dates,
phone numbers, codes) see each rare token ("Sep") in many more contexts; *letter resampling*
replaces value words the target copies ("2704 Alexander Sq") by random letters, so a model
learns to copy a street or a surname it never saw rather than the ones it saw.

Which kinds are label-consistent depends on the task: case noise is only harmless when the
targets' case does not depend on the input's, typo noise only when the pairs are typo fixes.
``policy="auto"`` turns on each kind only where the pairs show evidence for it
(``evidence``); ``"all"`` and ``"none"`` override that. A small letter edit counts as a typo fix
only where neither the word edited nor the word it becomes occurs in another pair: an edit
of a word pairs share ("Str" -> "St", "Terr" -> "Ter", "gm" -> "g") is the column's vocabulary
being mapped, not a misspelling. Counted as typos, such
abbreviations put random misspellings into every address input, and the model learned to
"correct" street names it had never seen ("Boone" -> "Bone", "Lynn" -> "Linn").
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from rapidfuzz.distance import Levenshtein

from strseq_tasks.core.recombine import lexicon, recombine
from strseq_tasks.core.resample import LetterValues, copied_digit_runs, resample_digits, resample_letters
from strseq_tasks.core.vocab import lower_char

KEYBOARD_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")

# Sound-alike spellings, both directions where they occur in real misspellings.
PHONETIC = (
    ("ph", "f"), ("f", "ph"), ("i", "y"), ("y", "i"), ("th", "t"), ("ck", "k"), ("c", "k"),
    ("k", "c"), ("s", "z"), ("z", "s"), ("ee", "ea"), ("ea", "ee"), ("ie", "ei"), ("ei", "ie"),
    ("ou", "ow"), ("ow", "ou"), ("oo", "u"), ("er", "ar"), ("ar", "er"), ("an", "en"),
    ("en", "an"), ("tion", "shun"), ("ght", "t"), ("wh", "w"), ("kn", "n"), ("mb", "m"),
    ("x", "ks"), ("qu", "kw"), ("ae", "e"), ("j", "g"), ("g", "j"), ("v", "w"), ("w", "v"),
)


def _keyboard_neighbours() -> dict[str, str]:
    """Letters next to each letter on a QWERTY keyboard (never digits: typos must not invent them)."""
    grid = {c: (r, i) for r, row in enumerate(KEYBOARD_ROWS) for i, c in enumerate(row)}
    out = {}
    for c, (r, i) in grid.items():
        near = [d for d, (r2, i2) in grid.items()
                if d != c and d.isalpha() and abs(r2 - r) <= 1 and abs(i2 - i) <= 1]
        if c.isalpha():
            out[c] = "".join(near)
    return out


KEYBOARD = _keyboard_neighbours()


@dataclass(frozen=True)
class AugmentConfig:
    copies: int = 3  # noisy copies of each pair's input per epoch
    identity: bool = True  # add target -> target pairs: clean values must stay unchanged
    identity_copies: int = 1  # noisy copies of each target as input (when a noise kind is on)
    swap: float = 0.02  # per letter: swap with the next letter
    insert: float = 0.015  # per letter: insert a keyboard neighbour after it
    delete: float = 0.015  # per letter: drop it
    keyboard: float = 0.02  # per letter: replace with a keyboard neighbour
    phonetic: float = 0.3  # per string: one sound-alike substitution
    double: float = 0.015  # per letter: double it
    case: float = 0.5  # per string: upper / lower / title / random-case the whole string
    space: float = 0.3  # per string: doubled, leading or trailing spaces
    digit_copies: int = 2  # copies with copied digit runs resampled (input and target alike)
    letter_copies: int = 2  # copies with copied value words resampled (input and target alike)
    recombine: int = 2  # copies with one unit swapped for another of its slot (core/recombine.py)
    policy: str = "auto"  # "auto" (noise kinds the pairs show evidence for), "all" or "none"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class NoiseKinds:
    typo: bool
    case: bool
    space: bool
    digits: bool = False  # resample digit runs copied verbatim from input to target
    letters: bool = False  # resample value words copied from input to target (core/resample.py)


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _letters(text: str) -> list[str]:
    return sorted(c for c in text if c.isalpha())


_WORD = re.compile(r"[^\W\d_]+")


def _recurring_words(pairs: Sequence[tuple[str, str]]) -> tuple[set[str], set[str]]:
    """Lower-case words of the inputs, and of the targets, that occur in two pairs or more: the
    column's vocabulary."""
    def recurring(texts) -> set[str]:
        seen = Counter(w for text in texts for w in set(_WORD.findall(_collapse(text).lower())))
        return {w for w, n in seen.items() if n > 1}

    return recurring(a for a, _ in pairs), recurring(b for _, b in pairs)


def evidence(pairs: Sequence[tuple[str, str]]) -> NoiseKinds:
    """Which noise kinds these pairs support (see the module docstring)."""
    changed = [(a, b) for a, b in pairs if a != b]
    if not changed:
        return NoiseKinds(typo=False, case=False, space=False)
    min_count = max(2, len(changed) // 20)
    case_hits = sum(
        1 for a, b in changed if _letters(a.lower()) == _letters(b.lower()) and _letters(a) != _letters(b)
    )
    typo_hits = 0
    recurring = _recurring_words(pairs)
    for a, b in changed:
        a2, b2 = _collapse(a).lower(), _collapse(b).lower()
        if a2 != b2 and Levenshtein.distance(a2, b2) <= max(1, len(b2) // 6):
            edits = Levenshtein.editops(a2, b2)
            chars = [a2[e.src_pos] for e in edits if e.tag != "insert" and e.src_pos < len(a2)]
            chars += [b2[e.dest_pos] for e in edits if e.tag != "delete" and e.dest_pos < len(b2)]
            edited = {w.group() for e in edits for w in _WORD.finditer(a2) if w.start() <= e.src_pos <= w.end()}
            fixed = {w.group() for e in edits for w in _WORD.finditer(b2) if w.start() <= e.dest_pos <= w.end()}
            typo_hits += all(c.isalpha() for c in chars) and not (edited & recurring[0] or fixed & recurring[1])
    clean_targets = all(b == _collapse(b) for _, b in pairs)
    digit_hits = sum(1 for a, b in pairs if copied_digit_runs(a, b))
    values = LetterValues(pairs)
    letter_hits = sum(1 for a, b in pairs if values.runs(a, b))
    return NoiseKinds(typo=typo_hits >= min_count, case=case_hits >= min_count, space=clean_targets,
                      digits=digit_hits >= max(2, len(pairs) // 5), letters=letter_hits >= max(2, len(pairs) // 5))


def _typo(text: str, cfg: AugmentConfig, rng: random.Random) -> str:
    """Per letter, at most one edit, each kind at its own rate (a rate of 0 turns it off)."""
    out: list[str] = []
    chars = list(text)
    i = 0
    while i < len(chars):
        c = chars[i]
        low = c.lower()
        if not c.isalpha():
            out.append(c)
            i += 1
            continue
        options = [("double", cfg.double)]
        if i + 1 < len(chars) and chars[i + 1].isalpha():
            options.append(("swap", cfg.swap))
        if len(chars) > 2:
            options.append(("delete", cfg.delete))
        if low in KEYBOARD:
            options += [("keyboard", cfg.keyboard), ("insert", cfg.insert)]
        r = rng.random()
        edit = None
        for kind, rate in options:
            if r < rate:
                edit = kind
                break
            r -= rate
        if edit == "swap":
            out += [chars[i + 1], c]
            i += 2
            continue
        if edit == "keyboard":
            sub = rng.choice(KEYBOARD[low])
            out.append(sub.upper() if c.isupper() else sub)
        elif edit == "insert":
            ins = rng.choice(KEYBOARD[low])
            out += [c, ins.upper() if c.isupper() else ins]
        elif edit == "double":
            out += [c, c]
        elif edit is None:
            out.append(c)
        i += 1
    return "".join(out)


def _phonetic(text: str, rng: random.Random) -> str:
    low = "".join(lower_char(c) for c in text)  # same length as text ("İ".lower() is two chars)
    options = [(i, a, b) for a, b in PHONETIC for i in range(len(low)) if low.startswith(a, i)]
    if not options:
        return text
    i, a, b = rng.choice(options)
    if text[i : i + len(a)].isupper():
        b = b.upper()
    return text[:i] + b + text[i + len(a) :]


def _case(text: str, rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return text.upper()
    if kind == 1:
        return text.lower()
    if kind == 2:
        return text.title()
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)


def _space(text: str, rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0 and " " in text:
        spaces = [i for i, c in enumerate(text) if c == " "]
        i = rng.choice(spaces)
        return text[:i] + " " + text[i:]
    if kind == 1:
        return " " + text
    return text + " "


def noisy(text: str, kinds: NoiseKinds, cfg: AugmentConfig, rng: random.Random) -> str:
    """One noisy copy of ``text`` using the enabled noise kinds."""
    if kinds.typo:
        if rng.random() < cfg.phonetic:
            text = _phonetic(text, rng)
        text = _typo(text, cfg, rng)
    if kinds.case and rng.random() < cfg.case:
        text = _case(text, rng)
    if kinds.space and rng.random() < cfg.space:
        text = _space(text, rng)
    return text


def resolve_kinds(pairs: Sequence[tuple[str, str]], cfg: AugmentConfig) -> NoiseKinds:
    if cfg.policy == "all":
        return NoiseKinds(True, True, True, True, True)
    if cfg.policy == "none":
        return NoiseKinds(False, False, False, False, False)
    if cfg.policy == "auto":
        return evidence(pairs)
    raise ValueError(f"augmentation policy must be auto, all or none, not {cfg.policy!r}")


def augment(
    pairs: Sequence[tuple[str, str]],
    cfg: AugmentConfig,
    seed: int,
    kinds: NoiseKinds | None = None,
    protected: dict[str, str] | None = None,
    max_len: int | None = None,
) -> list[tuple[str, str]]:
    """The pairs, their noisy copies, identity pairs, recombined and digit-resampled copies.

    Every target is a real target, or a real target with copied digits changed (digit
    resampling) or with one unit's target swapped for another's of its slot (recombination).

    ``protected`` maps inputs to targets that must never be contradicted (by default the
    pairs themselves): a noisy input equal to a protected input with another target is dropped.
    Duplicates are removed; order is deterministic for a given ``seed``.
    """
    rng = random.Random(seed)
    kinds = resolve_kinds(pairs, cfg) if kinds is None else kinds
    lex = lexicon(pairs) if cfg.recombine else None
    values = LetterValues(pairs) if kinds.letters and cfg.letter_copies else None
    protected = dict(pairs) if protected is None else protected
    any_noise = kinds.typo or kinds.case or kinds.space
    out: dict[tuple[str, str], None] = {}

    def add(src: str, tgt: str) -> None:
        if not src or (max_len is not None and len(src) > max_len):
            return
        if protected.get(src, tgt) != tgt:
            return
        out[(src, tgt)] = None

    for src, tgt in pairs:
        add(src, tgt)
        if cfg.identity:
            add(tgt, tgt)
        for _ in range(cfg.recombine):
            swapped = recombine(src, tgt, lex, rng)
            if swapped:
                add(noisy(swapped[0], kinds, cfg, rng) if any_noise else swapped[0], swapped[1])
        if kinds.digits:
            for _ in range(cfg.digit_copies):
                new_src, new_tgt = resample_digits(src, tgt, rng)
                add(noisy(new_src, kinds, cfg, rng) if any_noise else new_src, new_tgt)
        if values is not None and values.runs(src, tgt):
            for _ in range(cfg.letter_copies):
                new_src, new_tgt = resample_letters(src, tgt, values, rng)
                add(noisy(new_src, kinds, cfg, rng) if any_noise else new_src, new_tgt)
        if not any_noise:
            continue
        for _ in range(cfg.copies):
            add(noisy(src, kinds, cfg, rng), tgt)
        if cfg.identity:
            for _ in range(cfg.identity_copies):
                add(noisy(tgt, kinds, cfg, rng), tgt)
    return list(out)
