"""Batching: padded ids, per-row copy maps over an extended vocabulary, and back to text."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strseq_tasks.core.batching import (
    COPY_MODES,
    decode_row,
    encode_sources,
    encode_targets,
    max_output_lengths,
)
from strseq_tasks.core.vocab import EOS, PAD, UNK, CharVocab, normalize_text


@pytest.fixture(scope="module")
def vocab() -> CharVocab:
    return CharVocab.build(["John Smith, Jr.", "dr 42"])


def _copied(source, row: int, pos: int, mode: int) -> int:
    """The extended id that copying position ``pos`` of ``row`` in ``mode`` emits."""
    one_hot = source.copy_map[row, COPY_MODES * pos + mode]
    assert one_hot.sum() == 1.0 and set(np.unique(one_hot)) <= {0.0, 1.0}
    return int(one_hot.argmax())


def test_ids_lengths_and_padding(vocab):
    source = encode_sources(vocab, ["Jo", "Smith"])
    assert source.size == 2
    assert source.ids.shape == (2, 5) and source.ids.dtype == np.int64
    assert list(source.lengths) == [2, 5]
    assert list(source.ids[0]) == [vocab.id("J"), vocab.id("o"), PAD, PAD, PAD]
    assert list(source.ids[1]) == vocab.encode("Smith")
    assert source.copy_map.shape == (2, COPY_MODES * 5, len(vocab))
    assert source.copy_map.dtype == np.float32


def test_copy_map_has_one_hot_rows_for_three_modes(vocab):
    source = encode_sources(vocab, ["Jo 4,"])
    for pos, char in enumerate("Jo 4,"):
        assert _copied(source, 0, pos, 0) == vocab.id(char)
        assert _copied(source, 0, pos, 1) == vocab.id(char.lower())
        assert _copied(source, 0, pos, 2) == vocab.id(char.upper())
    assert _copied(source, 0, 0, 1) == vocab.id("j")
    assert _copied(source, 0, 1, 2) == vocab.id("O")
    assert _copied(source, 0, 3, 2) == vocab.id("4")  # caseless: all three modes copy it as is


def test_padded_positions_have_empty_copy_rows(vocab):
    source = encode_sources(vocab, ["Jo", "Smith"])
    assert source.copy_map[0, COPY_MODES * 2 :].sum() == 0.0
    assert np.all(source.copy_map[0, : COPY_MODES * 2].sum(axis=1) == 1.0)
    assert np.all(source.copy_map[1].sum(axis=1) == 1.0)


def test_out_of_vocabulary_characters_get_extended_ids(vocab):
    assert "ø" not in vocab and "Ø" not in vocab
    source = encode_sources(vocab, ["Jø", "dr"])
    assert source.ids[0, 1] == UNK  # the model reads it as UNK ...
    ext = _copied(source, 0, 1, 0)
    upper = _copied(source, 0, 1, 2)
    assert ext >= len(vocab) and upper >= len(vocab) and ext != upper  # ... but can copy it
    assert _copied(source, 0, 1, 1) == ext
    assert source.oov[0][ext - len(vocab)] == "ø"
    assert source.oov[0][upper - len(vocab)] == "Ø"
    assert source.oov[1] == ()
    assert source.copy_map.shape[2] == len(vocab) + len(source.oov[0])


def test_extended_ids_are_per_row(vocab):
    source = encode_sources(vocab, ["😀", "ñ"])
    assert source.oov[0] == ("😀",)
    assert source.oov[1] == ("ñ", "Ñ")
    assert source.ext_index[0]["😀"] == len(vocab) == source.ext_index[1]["ñ"]


@pytest.mark.parametrize(
    ("src", "tgt"),
    [("jørgen", "Jørgen"), ("JØRGEN", "Jørgen"), ("hi 😀", "Hi 😀"), ("ßtraße", "ßTRAßE"), ("e\u0301", "É")],
)
def test_unseen_characters_round_trip_through_targets(vocab, src, tgt):
    source = encode_sources(vocab, [src])
    targets = encode_targets(vocab, [tgt], source)
    assert UNK not in targets[0]
    row = [int(i) for i in targets[0]]
    assert row[-1] == EOS
    assert decode_row(vocab, row, source.oov[0]) == tgt


def test_target_characters_neither_in_vocab_nor_source_become_unk(vocab):
    source = encode_sources(vocab, ["John"])
    targets = encode_targets(vocab, ["Jøhn"], source)
    assert list(targets[0]) == [vocab.id("J"), UNK, vocab.id("h"), vocab.id("n"), EOS]
    # an UNK is never written out as a placeholder
    assert decode_row(vocab, targets[0], source.oov[0]) == "Jhn"


def test_targets_are_eos_terminated_and_pad_padded(vocab):
    source = encode_sources(vocab, ["a", "b"])
    targets = encode_targets(vocab, ["Jo", "Smith"], source)
    assert targets.shape == (2, 6)
    assert list(targets[0]) == [vocab.id("J"), vocab.id("o"), EOS, PAD, PAD, PAD]
    assert list(targets[1]) == vocab.encode("Smith") + [EOS]


def test_decode_row_stops_at_eos_and_skips_specials(vocab):
    ids = [vocab.id("J"), PAD, 1, UNK, len(vocab), EOS, vocab.id("o")]
    assert decode_row(vocab, ids, ["ø"]) == "Jø"
    assert decode_row(vocab, np.array([EOS, vocab.id("J")]), []) == ""


def test_empty_source_is_one_pad_step(vocab):
    source = encode_sources(vocab, ["", "Jo"])
    assert list(source.lengths) == [1, 2]
    assert list(source.ids[0]) == [PAD, PAD]
    assert source.copy_map[0].sum() == 0.0
    assert source.oov[0] == ()
    alone = encode_sources(vocab, [""])
    assert alone.ids.shape == (1, 1) and list(alone.lengths) == [1]
    targets = encode_targets(vocab, [""], alone)
    assert list(targets[0]) == [EOS]


def test_sources_are_nfc_normalized(vocab):
    decomposed = encode_sources(vocab, ["Jose\u0301"])
    precomposed = encode_sources(vocab, ["José"])
    assert np.array_equal(decomposed.ids, precomposed.ids)
    assert decomposed.oov == precomposed.oov == (("é", "É"),)


def test_max_output_lengths_caps_at_limit_plus_one():
    lengths = np.array([1, 5, 30, 200])
    out = max_output_lengths(lengths, limit=64)
    assert out.dtype == np.int64
    assert list(out) == [12, 20, 65, 65]


LETTERS = st.characters(categories=("Lu", "Ll", "Nd", "Po", "Zs", "So"), exclude_characters="\x00")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(LETTERS, min_size=1, max_size=10), min_size=1, max_size=4))
def test_any_source_copied_as_is_round_trips(texts):
    """Copying every position as written reproduces the source, whatever its characters."""
    vocab = CharVocab.build(["abc ABC 123"])
    source = encode_sources(vocab, texts)
    targets = encode_targets(vocab, texts, source)
    for row, text in enumerate(normalize_text(t) for t in texts):
        ids = [_copied(source, row, pos, 0) for pos in range(len(text))] + [EOS]
        assert decode_row(vocab, ids, source.oov[row]) == text
        assert decode_row(vocab, targets[row], source.oov[row]) == text


def test_hidden_characters_are_encoded_as_unknown_but_still_copyable():
    vocab = CharVocab.build(["raul perales"])
    hidden = frozenset({"u", "U"})
    source = encode_sources(vocab, ["raul"], hidden)
    assert source.ids[0, 2] == UNK
    assert source.oov[0] and "u" in source.oov[0]
    targets = encode_targets(vocab, ["Raul"], source, hidden)
    assert targets[0, 2] >= len(vocab)  # reachable only by copying
    assert decode_row(vocab, targets[0], source.oov[0]) == "Raul"
