"""Augmentation: label consistency, protection, determinism, and which noise each policy allows."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strseq_tasks.core.augment import (
    AugmentConfig,
    NoiseKinds,
    augment,
    evidence,
    noisy,
    resolve_kinds,
)

ALL = NoiseKinds(typo=True, case=True, space=True, digits=True, letters=True)
ALL_BUT_RESAMPLING = NoiseKinds(typo=True, case=True, space=True, digits=False, letters=False)
TYPO = NoiseKinds(typo=True, case=False, space=False)

# Characters whose lower() keeps the length (so not "İ"; see the dotted-capital-I test below).
TEXT_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéÉøÖß0123456789 .,-'/()#"
texts = st.text(alphabet=TEXT_CHARS, min_size=1, max_size=16)

# A small alphabet and short strings make noisy copies collide with other inputs often.
SHORT_CHARS = "abAB1 ,"
short_texts = st.text(alphabet=SHORT_CHARS, min_size=1, max_size=4)


def _pairs(inputs, targets):
    """Pairs with unique inputs (a curated pair file never maps one input to two targets)."""
    return st.lists(st.tuples(inputs, targets), min_size=1, max_size=6, unique_by=lambda p: p[0])


NOISY = AugmentConfig(copies=4, identity_copies=2, swap=0.2, insert=0.2, delete=0.2, keyboard=0.2,
                      phonetic=0.8, double=0.2, case=0.8, space=0.8, policy="all")


def _non_letters(text: str) -> list[str]:
    return [c for c in text if not c.isalpha()]


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(c in it for c in small)


def _masked(text: str) -> str:
    return "".join("#" if c in "0123456789" else "@" if c.isalpha() else c for c in text)


@settings(max_examples=80, deadline=None)
@given(pairs=_pairs(short_texts, short_texts), seed=st.integers(0, 2**16))
def test_every_target_is_a_real_target_and_protected_inputs_are_never_contradicted(pairs, seed):
    protected = dict(pairs)
    out = augment(pairs, NOISY, seed=seed)
    targets = {t for _, t in pairs}
    # resampling makes new targets, but only by changing digits or letters of a real target
    shapes = {_masked(t) for t in targets}
    for src, tgt in out:
        assert tgt in targets or _masked(tgt) in shapes
        assert protected.get(src, tgt) == tgt, (src, tgt)
    assert len(out) == len(set(out))  # no duplicates


@settings(max_examples=60, deadline=None)
@given(pairs=_pairs(short_texts, short_texts), seed=st.integers(0, 2**16))
def test_without_resampling_every_target_is_a_real_target(pairs, seed):
    out = augment(pairs, NOISY, seed=seed, kinds=ALL_BUT_RESAMPLING)
    targets = {t for _, t in pairs}
    assert all(tgt in targets for _, tgt in out)


@settings(max_examples=40, deadline=None)
@given(pairs=_pairs(short_texts, short_texts), extra=_pairs(short_texts, short_texts), seed=st.integers(0, 99))
def test_explicit_protected_inputs_are_never_contradicted(pairs, extra, seed):
    protected = dict(extra)
    out = augment(pairs, NOISY, seed=seed, protected=protected)
    assert all(protected.get(src, tgt) == tgt for src, tgt in out)


@settings(max_examples=40, deadline=None)
@given(pairs=_pairs(texts, texts), seed=st.integers(0, 2**16))
def test_same_seed_gives_same_output(pairs, seed):
    assert augment(pairs, NOISY, seed=seed) == augment(pairs, NOISY, seed=seed)


def test_different_seeds_give_different_noise():
    pairs = [("Jonathan Smithers", "Jonathan Smithers"), ("Katherine O'Neill", "Katherine O'Neill")]
    outputs = {tuple(augment(pairs, NOISY, seed=s)) for s in range(5)}
    assert len(outputs) == 5


@settings(max_examples=40, deadline=None)
@given(pairs=_pairs(texts, texts), seed=st.integers(0, 99))
def test_identity_pairs_present_when_enabled(pairs, seed):
    protected = dict(pairs)
    out = set(augment(pairs, NOISY, seed=seed))
    for src, tgt in pairs:
        assert (src, tgt) in out
        if protected.get(tgt, tgt) == tgt:
            assert (tgt, tgt) in out


def test_identity_pair_is_dropped_when_it_would_contradict_another_pair():
    pairs = [("Smith John", "John Smith"), ("John Smith", "J. Smith")]
    out = augment(pairs, AugmentConfig(policy="none"), seed=0)
    assert ("John Smith", "John Smith") not in out
    assert ("J. Smith", "J. Smith") in out


@settings(max_examples=40, deadline=None)
@given(pairs=_pairs(texts, texts), seed=st.integers(0, 99), max_len=st.integers(1, 12))
def test_max_len_is_respected(pairs, seed, max_len):
    out = augment(pairs, NOISY, seed=seed, max_len=max_len)
    assert all(0 < len(src) <= max_len for src, _ in out)
    for src, tgt in pairs:
        if len(src) <= max_len:
            assert (src, tgt) in out


@settings(max_examples=60, deadline=None)
@given(text=texts, seed=st.integers(0, 2**16))
def test_typo_noise_never_drops_changes_or_moves_digits_and_punctuation(text, seed):
    cfg = AugmentConfig(swap=0.2, delete=0.2, double=0.2, phonetic=1.0, keyboard=0.2, insert=0.2)
    out = noisy(text, TYPO, cfg, random.Random(seed))
    assert _is_subsequence(_non_letters(text), _non_letters(out))


@settings(max_examples=60, deadline=None)
@given(text=texts, seed=st.integers(0, 2**16))
def test_phonetic_and_doubling_noise_keep_non_letters_exactly(text, seed):
    # swap/delete/keyboard/insert stay at 0: those may drop or reorder letters
    cfg = AugmentConfig(swap=0.0, delete=0.0, double=0.5, phonetic=1.0, keyboard=0.0, insert=0.0)
    out = noisy(text, TYPO, cfg, random.Random(seed))
    assert _non_letters(out) == _non_letters(text)


def test_keyboard_noise_never_invents_digits():
    cfg = AugmentConfig(swap=0.0, delete=0.0, double=0.0, phonetic=0.0, keyboard=0.5, insert=0.5)
    for seed in range(10):
        out = noisy("quote 42", TYPO, cfg, random.Random(seed))
        assert _non_letters(out) == _non_letters("quote 42"), out


def test_phonetic_noise_never_drops_a_digit_after_dotted_capital_i():
    cfg = AugmentConfig(swap=0.0, delete=0.0, double=0.0, phonetic=1.0, keyboard=0.0, insert=0.0)
    for seed in range(10):
        out = noisy("İx1", TYPO, cfg, random.Random(seed))
        assert _non_letters(out) == ["1"], out


@pytest.mark.parametrize(
    ("text", "rates"),
    [
        ("abc", {"swap": 0.5}),  # the last letter cannot swap: its swap draw deletes it instead
        ("ab", {"delete": 0.5}),  # too short to delete: the delete draw substitutes a keyboard neighbour
    ],
)
def test_a_zero_rate_disables_that_noise_kind(text, rates):
    zero = dict(swap=0.0, delete=0.0, double=0.0, phonetic=0.0, keyboard=0.0, insert=0.0)
    cfg = AugmentConfig(**{**zero, **rates})
    for seed in range(10):
        out = noisy(text, TYPO, cfg, random.Random(seed))
        # swaps only reorder letters; a refused deletion leaves the letter as it is
        assert sorted(out) == sorted(text), out


TYPO_PAIRS = [("Jon", "John"), ("Smithh", "Smith"), ("Wiliam", "William"), ("Marry", "Mary")]
CASE_PAIRS = [("JOHN", "John"), ("smith", "Smith"), ("jANE dOE", "Jane Doe")]
FORMAT_PAIRS = [("SMITH, John", "John Smith"), ("DOE, Jane", "Jane Doe"), ("BROWN, Bob", "Bob Brown")]


def test_evidence_of_typo_pairs():
    kinds = evidence(TYPO_PAIRS)
    assert kinds.typo is True
    assert kinds.case is False


def test_evidence_of_case_only_pairs():
    kinds = evidence(CASE_PAIRS)
    assert kinds.case is True
    assert kinds.typo is False


def test_evidence_of_formatting_pairs_is_not_typo():
    assert evidence(FORMAT_PAIRS).typo is False


def test_evidence_for_space_noise_needs_clean_targets():
    assert evidence(CASE_PAIRS).space is True
    assert evidence(CASE_PAIRS + [("a  b", "a  b "), ("x", "y")]).space is False


def test_evidence_needs_more_than_one_example():
    assert evidence(TYPO_PAIRS[:1]).typo is False
    assert evidence([("a", "a"), ("b", "b")]) == NoiseKinds(False, False, False)


def test_typo_edits_touching_digits_are_not_typo_evidence():
    pairs = [("Apt 12", "Apt 13"), ("Unit 4", "Unit 5"), ("Flat 7", "Flat 8")]
    assert evidence(pairs).typo is False


def test_abbreviations_the_pairs_share_are_vocabulary_not_typos():
    # one-letter edits, letters only, yet the same words in pair after pair: the column's vocabulary
    shared = [("18 Charles Str", "18 Charles St"), ("17 Hood Str", "17 Hood St"), ("4 Oneal Str", "4 Oneal St"),
              ("5 Benton Tr", "5 Benton Trl"), ("9 Kline Tr", "9 Kline Trl"), ("496 gm", "496 g"),
              ("1981 gm", "1981 g")]
    assert evidence(shared).typo is False
    # a word only one pair has, becoming a word another pair has ("Terr" -> "Ter"): vocabulary too
    assert evidence([("1 Elm Terr", "1 Elm Ter"), ("2 Oak Ter", "2 Oak Ter"), ("3 Ash Tce", "3 Ash Ter"),
                     ("4 Fir Tr", "4 Fir Ter")]).typo is False
    # misspellings of words only one pair has are typos; of words the targets share, not counted
    assert evidence(shared + [("12 Wilow St", "12 Willow St"), ("3 Bemtley St", "3 Bentley St"),
                              ("7 Mapel St", "7 Maple St")]).typo is True
    assert evidence(shared + [("12 Chrles St", "12 Charles St"), ("3 Hoood St", "3 Hood St")]).typo is False


@settings(max_examples=30, deadline=None)
@given(pairs=_pairs(texts, texts), seed=st.integers(0, 99))
def test_policy_none_gives_only_originals_and_identities(pairs, seed):
    out = augment(pairs, AugmentConfig(policy="none", copies=5), seed=seed)
    protected = dict(pairs)
    expected = set(pairs) | {(t, t) for _, t in pairs if protected.get(t, t) == t}
    assert set(out) == expected
    assert out[0] == pairs[0]


def test_policy_none_without_identity_gives_originals_only():
    pairs = FORMAT_PAIRS
    assert augment(pairs, AugmentConfig(policy="none", identity=False), seed=3) == pairs


def test_auto_policy_adds_no_typos_to_case_only_pairs():
    out = augment(CASE_PAIRS, AugmentConfig(policy="auto", copies=20, case=1.0, space=1.0), seed=1)
    assert len(out) > len(CASE_PAIRS) * 2  # noisy copies were made ...
    assert all(" ".join(src.split()).lower() == tgt.lower() for src, tgt in out)  # ... of case and spacing only


def test_explicit_kinds_override_the_policy():
    out = augment(CASE_PAIRS, AugmentConfig(policy="all"), seed=0, kinds=NoiseKinds(False, False, False))
    assert set(out) == set(CASE_PAIRS) | {(t, t) for _, t in CASE_PAIRS}


def test_resolve_kinds():
    assert resolve_kinds(TYPO_PAIRS, AugmentConfig(policy="all")) == ALL
    assert resolve_kinds(TYPO_PAIRS, AugmentConfig(policy="none")) == NoiseKinds(False, False, False, False, False)
    assert resolve_kinds(TYPO_PAIRS, AugmentConfig(policy="auto")) == evidence(TYPO_PAIRS)
    with pytest.raises(ValueError, match="auto, all or none"):
        resolve_kinds(TYPO_PAIRS, AugmentConfig(policy="some"))


def test_hidden_letters_can_always_be_copied_from_each_input():
    from strseq_tasks.learn.training import hide_characters

    batch = [("SMITH, john", "John Smith"), ("dr. ann x", "Ann X"), ("bob", "Robert")]
    rng = random.Random(0)
    seen = set()
    for _ in range(200):
        hidden = hide_characters(batch, 0.5, rng)
        seen |= hidden
        # "r", "e", "t" of "Robert" are not all in "bob": never hidden
        assert not hidden & {"e", "t", "E", "T"}
        assert all(c.upper() in hidden for c in hidden if c.islower())
    assert {"s", "m", "j", "o"} <= seen
    assert hide_characters(batch, 0.0, rng) == frozenset()
