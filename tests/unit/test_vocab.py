"""CharVocab: NFC, encode/decode, UNK, case tables, JSON."""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strseq_tasks.core.vocab import (
    BOS,
    CASE_LOWER,
    CASE_NONE,
    CASE_UPPER,
    EOS,
    PAD,
    SPECIALS,
    UNK,
    CharVocab,
    case_class,
    lower_char,
    normalize_text,
    upper_char,
)

NAMES = ["Zoë Müller", "José Álvarez-Núñez", "O'Brien, Seán", "Łukasz Żółć", "straße 12", "Ægir Ørsted"]


@pytest.fixture(scope="module")
def vocab() -> CharVocab:
    return CharVocab.build(NAMES)


def test_decomposed_and_precomposed_accents_encode_alike(vocab):
    decomposed = "Jose\u0301"
    assert decomposed != "José"
    assert vocab.encode(decomposed) == vocab.encode("José")
    assert UNK not in vocab.encode(decomposed)
    assert vocab.decode(vocab.encode(decomposed)) == "José"


def test_build_normalizes_to_nfc():
    built = CharVocab.build(["e\u0301"])
    assert "\u0301" not in built.chars  # no lone combining mark
    assert set(built.chars) == {"é", "É"}


def test_specials_come_first_and_len_counts_them(vocab):
    assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)
    assert len(vocab) == len(SPECIALS) + len(vocab.chars)
    assert vocab.id(vocab.chars[0]) == len(SPECIALS)
    assert [vocab.token(i) for i in range(4)] == list(SPECIALS)


# Latin code points never compose with each other under NFC, so any string over them is stable.
LATIN = st.characters(
    max_codepoint=0x24F, categories=("Lu", "Ll", "Nd", "Po", "Pd", "Zs", "Sc"), exclude_characters="\x00"
)


@settings(max_examples=60, deadline=None)
@given(corpus=st.lists(st.text(LATIN, min_size=1, max_size=12), min_size=1, max_size=5), data=st.data())
def test_encode_decode_round_trip(corpus, data):
    vocab = CharVocab.build(corpus)
    text = "".join(data.draw(st.lists(st.sampled_from(vocab.chars), max_size=30), label="text"))
    ids = vocab.encode(text)
    assert len(ids) == len(text)
    assert UNK not in ids and all(len(SPECIALS) <= i < len(vocab) for i in ids)
    assert vocab.decode(ids) == text
    assert vocab.decode(ids + [EOS] + ids) == text  # decoding stops at EOS


def test_decode_skips_pad_bos_unk(vocab):
    ids = [BOS, vocab.id("Z"), PAD, UNK, vocab.id("o"), EOS, vocab.id("e")]
    assert vocab.decode(ids) == "Zo"


def test_unknown_characters_become_unk(vocab):
    ids = vocab.encode("Zq😀")
    assert ids == [vocab.id("Z"), UNK, UNK]
    assert vocab.id("😀") == UNK
    assert "😀" not in vocab


def test_build_adds_both_cases_of_every_letter():
    built = CharVocab.build(["ab", "Ç", "ø"])
    for char in "abABçÇøØ":
        assert char in built, char
    assert " " not in built
    assert len(built.chars) == len(set(built.chars))


def test_build_is_sorted_and_deterministic():
    assert CharVocab.build(["ba", "c"]) == CharVocab.build(["c", "ab"])
    assert list(CharVocab.build(["ba"]).chars) == sorted("abAB")


def test_sharp_s_has_no_single_char_upper_case_and_is_kept():
    assert "ß".upper() == "SS"
    assert upper_char("ß") == "ß"
    built = CharVocab.build(["Straße"])
    assert "ß" in built
    assert all(len(c) == 1 for c in built.chars)
    assert built.decode(built.encode("STRAßE")) == "STRAßE"
    assert built.fold_table()[built.id("ß")] == built.id("ß")


def test_dotted_capital_i_whose_lower_is_two_chars_stays_itself():
    assert len("İ".lower()) == 2
    assert lower_char("İ") == "İ"
    built = CharVocab.build(["İstanbul"])
    assert built.decode(built.encode("İstanbul")) == "İstanbul"


def test_fold_table_maps_each_letter_to_its_lower_case_row(vocab):
    fold = vocab.fold_table()
    assert fold.shape == (len(vocab),) and fold.dtype == np.int64
    assert fold[vocab.id("A")] == vocab.id("a")
    assert fold[vocab.id("a")] == vocab.id("a")
    assert fold[vocab.id("Ø")] == vocab.id("ø")
    assert fold[vocab.id("1")] == vocab.id("1")
    assert fold[vocab.id(" ")] == vocab.id(" ")
    assert list(fold[: len(SPECIALS)]) == [PAD, BOS, EOS, UNK]
    # every row points at a lower-case or caseless character, and folding is idempotent
    assert np.array_equal(fold[fold], fold)


def test_case_table_classes(vocab):
    case = vocab.case_table()
    assert case[vocab.id("Z")] == CASE_UPPER
    assert case[vocab.id("z")] == CASE_LOWER
    assert case[vocab.id("É")] == CASE_UPPER
    assert case[vocab.id("é")] == CASE_LOWER
    assert case[vocab.id("1")] == CASE_NONE
    assert case[vocab.id("'")] == CASE_NONE
    assert list(case[: len(SPECIALS)]) == [CASE_NONE] * len(SPECIALS)
    # upper and lower forms of a letter share one row and differ by case only
    assert vocab.fold_table()[vocab.id("É")] == vocab.fold_table()[vocab.id("é")]


def test_case_class_of_single_characters():
    assert case_class("Q") == CASE_UPPER
    assert case_class("q") == CASE_LOWER
    assert case_class("-") == CASE_NONE
    assert case_class("ß") == CASE_NONE  # no one-character upper case: nothing to share with
    assert lower_char("Q") == "q" and upper_char("q") == "Q"


def test_json_round_trip(vocab):
    text = vocab.to_json()
    again = CharVocab.from_json(text)
    assert again == vocab
    assert again.encode("Zoë Müller") == vocab.encode("Zoë Müller")
    assert '"ë"' in text and "\\u" not in text  # stored as readable UTF-8, not escapes
    assert json.loads(text)["format"] == "strseq-charvocab/1"


@pytest.mark.parametrize(
    "payload",
    [
        {"format": "strseq-charvocab/2", "specials": list(SPECIALS), "chars": ["a"]},
        {"specials": list(SPECIALS), "chars": ["a"]},
        {"format": "strseq-charvocab/1", "specials": ["<pad>", "<s>", "</s>"], "chars": ["a"]},
        ["a", "b"],
        "strseq-charvocab/1",
    ],
)
def test_from_json_rejects_other_formats(payload):
    with pytest.raises(ValueError, match="strseq-charvocab/1"):
        CharVocab.from_json(json.dumps(payload))


@pytest.mark.parametrize("chars", ["abc", None, ["a", 7], ["a", ["b"]], ["a", "bc"], ["a", "a"]])
def test_from_json_rejects_chars_of_other_shapes(chars):
    with pytest.raises(ValueError):
        CharVocab.from_json(json.dumps({"format": "strseq-charvocab/1", "specials": list(SPECIALS), "chars": chars}))


def test_from_json_rejects_a_truncated_file(vocab):
    text = vocab.to_json()
    with pytest.raises(ValueError):
        CharVocab.from_json(text[: len(text) // 2])


def test_constructor_rejects_duplicates_and_multichar_entries():
    with pytest.raises(ValueError, match="unique"):
        CharVocab(("a", "a"))
    with pytest.raises(ValueError, match="single characters"):
        CharVocab(("a", "SS"))


def test_normalize_text_is_nfc():
    assert normalize_text("A\u030a") == "Å" == unicodedata.normalize("NFC", "A\u030a")
