"""Benchmark tasks built offline from data shipped in PyPI packages (no hub downloads).

Each task returns ``(train, test)`` lists of ``(input, target)`` pairs, deterministic under a
seed, with **test targets never seen in training** (and a share of already-clean test inputs,
so that harm is measured):

- ``typos``: English words (wordfreq's word list) with generated typos (keyboard neighbours,
  swaps, drops, doubled letters, sound-alike spellings; often several per word) -> the word;
- ``misspellings``: real misspellings of the same words, as people typed them (codespell's
  dictionary of misspellings collected from real text, e.g. "recieve" -> "receive") -> the word;
- ``spelling``: the dictionary case: real misspellings and right words (some missing from the
  160,000-word list decoding gets), in three cases -> the word in its case;
- ``names``, ``dates``, ``phones``: realistic dirty records (``strseq_tasks.demo.synthetic``, which
  ``strseq demo`` uses too).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from functools import cache
from pathlib import Path

from strseq_tasks.core.augment import AugmentConfig, NoiseKinds, noisy
from strseq_tasks.demo.synthetic import Pair, dates, names, phones, split_by_target

__all__ = ["TASKS", "KNOWN_VALUES", "Pair", "benchmark_model", "dates", "names", "phones", "typos", "misspellings",
           "typo_words"]


def benchmark_model(model: str | None, train: list[Pair], folder: Path, label: str) -> Path:
    """The model a speed benchmark measures: ``model`` (a folder or REGISTRY/NAME@alias) when
    given, else one trained with the defaults on ``train`` into ``folder`` (``label`` says what,
    e.g. "a names model on 200 pairs")."""
    if model:
        from strseq_tasks.serve.loading import resolve_model

        return Path(resolve_model(model)[0])
    from strseq_tasks.learn.build import train_bundle
    from strseq_tasks.learn.training import TrainConfig

    print(f"training {label} ...", flush=True)
    return Path(train_bundle(train, Path(folder) / "model", TrainConfig(seed=0)).path)


def typo_words() -> list[str]:
    """The dictionary the typos task draws from: wordfreq's 30,000 most frequent English words
    (letters only, 4-12 long), most frequent first. Also the task's known values: a spell
    checker's dictionary is what a data team correcting words would have."""
    from wordfreq import top_n_list

    return [w for w in top_n_list("en", 30000) if w.isalpha() and 4 <= len(w) <= 12]


def typos(n_train: int, n_test: int, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    words = typo_words()
    kinds = NoiseKinds(typo=True, case=False, space=False)
    cfg = AugmentConfig(swap=0.04, insert=0.03, delete=0.03, keyboard=0.04, double=0.03, phonetic=0.5)

    def make(rng: random.Random) -> Pair:
        word = rng.choice(words)
        for _ in range(10):
            typo = noisy(word, kinds, cfg, rng)
            if typo != word:
                return typo, word
        return word[1:] + word[0] if len(word) > 1 else word, word

    return split_by_target(make, n_train, n_test, seed, clean_share=0.2)


def real_misspellings() -> dict[str, list[str]]:
    """codespell's dictionary of real misspellings, as {word: [misspellings]}: entries with one
    unambiguous correction that is a word of the typos task's dictionary (so both tasks share a
    word list), letters only, lower case."""
    from importlib.resources import files

    known = set(typo_words())
    by_word: dict[str, list[str]] = {}
    text = files("codespell_lib").joinpath("data", "dictionary.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        wrong, _, fixes = line.partition("->")
        fixes = [f.strip() for f in fixes.split(",") if f.strip()]
        if len(fixes) != 1 or not wrong.isalpha() or not wrong.islower():
            continue
        if fixes[0] in known and fixes[0] != wrong:
            by_word.setdefault(fixes[0], []).append(wrong)
    return by_word


def misspellings(n_train: int, n_test: int, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    by_word = real_misspellings()
    words = sorted(by_word)

    def make(rng: random.Random) -> Pair:
        word = rng.choice(words)
        return rng.choice(by_word[word]), word

    return split_by_target(make, n_train, n_test, seed, clean_share=0.2)


SPELLING_LIST_SIZE = 160_000  # words in the spelling task's list (wordfreq's English, most frequent first)
UNLISTED_SHARE = 0.05  # of the list's words past the 5,000 most frequent: right words a list lacks


def _unlisted(word: str) -> bool:
    digest = hashlib.sha256(f"strseq-spelling-unlisted:{word}".encode()).digest()
    return digest[0] < 256 * UNLISTED_SHARE


@cache
def _spelling_words() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the list, the right words it lacks): wordfreq's most frequent English words (letters only,
    lower case), with a hashed 5% of those past rank 5,000 left out of the list."""
    from wordfreq import top_n_list

    words = [w for w in top_n_list("en", SPELLING_LIST_SIZE) if w.isalpha() and w.islower() and len(w) > 1]
    listed = tuple(w for i, w in enumerate(words) if i < 5000 or not _unlisted(w))
    return listed, tuple(w for i, w in enumerate(words) if i >= 5000 and _unlisted(w) and len(w) >= 4)


def spelling_list() -> list[str]:
    return list(_spelling_words()[0])


def _as_typed(word: str, rng: random.Random) -> Callable[[str], str]:
    roll = rng.random()
    return str.upper if roll < 0.1 else str.capitalize if roll < 0.3 else str.lower


def spelling(n_train: int, n_test: int, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """Real misspellings (codespell) of listed words, and right words, a fifth of them missing from
    the list ("crystallisation" when the list spells it with a z): in lower case (70%),
    capitalized (20%) or upper case (10%), the target in the same case. Decoded with
    ``spelling_list()`` as known values, this is the dictionary case: a model must fix the
    misspellings, keep the right words the list lacks, and keep each word's case."""
    from importlib.resources import files

    listed, unlisted = _spelling_words()
    known = set(listed)
    by_word: dict[str, list[str]] = {}
    text = files("codespell_lib").joinpath("data", "dictionary.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        wrong, _, fixes = line.partition("->")
        fixes = [f.strip() for f in fixes.split(",") if f.strip()]
        if len(fixes) == 1 and wrong.isalpha() and wrong.islower() and fixes[0] in known and fixes[0] != wrong:
            by_word.setdefault(fixes[0], []).append(wrong)
    misspelt = sorted(by_word)
    frequent = listed[:40_000]

    def make(rng: random.Random) -> Pair:
        case = _as_typed("", rng)
        roll = rng.random()
        if roll < 0.75:
            word = rng.choice(misspelt)
            return case(rng.choice(by_word[word])), case(word)
        word = rng.choice(unlisted) if roll < 0.8 else rng.choice(frequent)
        return case(word), case(word)

    return split_by_target(make, n_train, n_test, seed, clean_share=0.0)


TASKS: dict[str, Callable[[int, int, int], tuple[list[Pair], list[Pair]]]] = {
    "typos": typos,
    "names": names,
    "dates": dates,
    "phones": phones,
    "misspellings": misspellings,
    "spelling": spelling,
}

# tasks whose valid outputs form a list a user would have (see strseq_tasks.core.known)
KNOWN_VALUES: dict[str, Callable[[], list[str]]] = {"typos": typo_words, "misspellings": typo_words,
                                                   "spelling": spelling_list}
