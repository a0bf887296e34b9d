"""Copied spans resampled: digits and value words replaced the same on both sides of a pair."""

from __future__ import annotations

import random
import re

import pytest

from strseq_tasks.core.augment import AugmentConfig, augment, evidence
from strseq_tasks.core.resample import LetterValues, resample_digits, resample_letters


def _digits_masked(text: str) -> str:
    return "".join("#" if c in "0123456789" else c for c in text)


@pytest.mark.parametrize(
    "src, tgt",
    [("Sep 29, 1957", "1957-09-29"), ("19.7.2015", "2015-07-19"), ("+44 20 7946 0958", "+442079460958"),
     ("(201) 555-0123", "+12015550123"), ("Jan 20, 2020", "2020-01-20")],
)
def test_resampled_digits_stay_consistent_between_input_and_target(src, tgt):
    rng = random.Random(3)
    for _ in range(20):
        new_src, new_tgt = resample_digits(src, tgt, rng)
        assert _digits_masked(new_src) == _digits_masked(src)
        assert _digits_masked(new_tgt) == _digits_masked(tgt)
        # the digits that changed in the input changed identically in the target
        changed = [(a, b) for a, b in zip(src, new_src) if a != b]
        assert all(b in new_tgt for _, b in changed)


def test_ambiguous_digits_are_left_alone():
    # "20" occurs three times in the target: which one is copied is ambiguous, so it stays
    new_src, new_tgt = resample_digits("Jan 20, 2020", "2020-01-20", random.Random(0))
    assert new_src.startswith("Jan 20, ") and new_tgt.endswith("-01-20")
    # generated month digits ("09" for "Sep") are never touched
    for seed in range(20):
        _, out = resample_digits("Sep 29, 1957", "1957-09-29", random.Random(seed))
        assert out[4:8] == "-09-"


def test_a_two_digit_year_keeps_its_century():
    # the century depends on the year ("'13" -> 2013, "'85" -> 1985): resampled alone, the pair
    # would say "'85" -> 2085, so the year stays while the day still changes
    days = set()
    for seed in range(30):
        src, tgt = resample_digits("JUN 23, '13", "2013-06-23", random.Random(seed))
        assert src.endswith("'13") and tgt.startswith("2013-06-")
        days.add(tgt[-2:])
    assert len(days) > 10
    # zero-padding is no such dependence: "4" -> "04" still resamples
    months = {resample_digits("4/11/2013", "2013-04-11", random.Random(seed))[1][5:7] for seed in range(30)}
    assert len(months) > 5 and all(m.startswith("0") for m in months)


ADDRESSES = [("2704 alexander sq", "2704 Alexander Sq"), ("31 E CARPENTER CT", "31 E Carpenter Ct"),
             ("9040 Hutchinson Street", "9040 Hutchinson St"), ("18 Mill St", "18 Mill St"),
             ("77 mill st", "77 Mill St"), ("5 Bennett Way", "5 Bennett Way")]


def test_value_words_are_replaced_in_each_sides_case_and_the_rest_is_kept():
    values = LetterValues(ADDRESSES)
    rng = random.Random(0)
    for src, tgt in ADDRESSES:
        for _ in range(10):
            new_src, new_tgt = resample_letters(src, tgt, values, rng)
            # digits, layout words and the words that recur ("mill", "st") are untouched
            assert re.sub(r"[^\W\d_]{3,}", "#", new_src.casefold()).count("#") == \
                re.sub(r"[^\W\d_]{3,}", "#", src.casefold()).count("#")
            assert new_src.split()[0] == src.split()[0] and new_tgt.split()[0] == tgt.split()[0]
            if "mill" in src.casefold():
                assert (new_src, new_tgt) == (src, tgt)
    src, tgt = resample_letters("31 E CARPENTER CT", "31 E Carpenter Ct", values, random.Random(1))
    word = src.split()[2]
    assert word.isupper() and word != "CARPENTER" and tgt == f"31 E {word.title()} Ct"
    src, tgt = resample_letters("2704 alexander sq", "2704 Alexander Sq", values, random.Random(2))
    assert src.split()[1].islower() and tgt.split()[1] == src.split()[1].title()
    # new words are made of the letters the pairs copy, nothing else
    copied = set("alexandercarpenterhutchinsonbennett")
    assert set(src.split()[1]) <= copied


def test_words_that_are_not_copied_whole_or_have_a_case_of_their_own_stay():
    values = LetterValues([("Dr. McDonald, Bo", "Bo McDonald"), ("Sept 5, 2001", "2001-09-05"),
                           ("smith-jones, bo", "Bo Smith-Jones")])
    assert resample_letters("Dr. McDonald, Bo", "Bo McDonald", values, random.Random(0)) == \
        ("Dr. McDonald, Bo", "Bo McDonald")  # "McDonald": mixed case; "Bo": too short; "Dr": not copied
    assert resample_letters("Sept 5, 2001", "2001-09-05", values, random.Random(0))[1] == "2001-09-05"


def test_letter_resampling_is_on_only_where_the_pairs_copy_words():
    assert evidence(ADDRESSES).letters
    assert not evidence([("Sept 5, 2001", "2001-09-05"), ("5.9.01", "2001-09-05"), ("jan 1 99", "1999-01-01")]).letters
    out = augment(ADDRESSES, AugmentConfig(), seed=0)
    assert len({t for _, t in out}) > len({t for _, t in ADDRESSES}) + 4  # new targets: the resampled words
    assert augment(ADDRESSES, AugmentConfig(letter_copies=0), seed=0) != out
