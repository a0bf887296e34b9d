"""Character LMs: targets, training, vocabulary extension and initialization of the normalizer."""

from __future__ import annotations

import random

import pytest
import torch

from strseq_tasks.core.vocab import EOS, PAD, UNK, CharVocab
from strseq_tasks.learn.lm import (
    build_lm,
    extend_vocab,
    initialize_from_lm,
    lm_vocab,
    next_targets,
    resize_lm,
    reverse_rows,
)
from strseq_tasks.learn.model import build_model
from strseq_tasks.learn.pretraining import PretrainConfig, evaluate_lm, fit_lm, split_corpus

DIMS = {"emb_dim": 16, "case_dim": 4, "enc_hidden": 24, "dec_hidden": 48}
MODEL_EXTRA = {"attn_dim": 24, "loc_filters": 4, "loc_kernel": 3, "max_len": 64}


def toy_corpus(n: int = 400, seed: int = 0) -> list[str]:
    """Strings with structure an LM can learn: 'ab-12'-like codes and a few words."""
    rng = random.Random(seed)
    words = ["alpha", "bravo", "charlie", "delta"]
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            out.append(rng.choice("ABC") + rng.choice("ABC") + "-" + "".join(rng.choice("0123") for _ in range(3)))
        else:
            out.append(rng.choice(words))
    return out


def test_next_targets_shift_left_end_with_eos_and_ignore_padding_and_unk():
    ids = torch.tensor([[5, 6, 7], [8, UNK, PAD]])
    targets = next_targets(ids, torch.tensor([3, 2]))
    assert targets.tolist() == [[6, 7, EOS], [PAD, EOS, PAD]]  # UNK is never a target


def test_reverse_rows_reverses_each_row_within_its_length():
    ids = torch.tensor([[5, 6, 7], [8, 9, PAD]])
    assert reverse_rows(ids, torch.tensor([3, 2])).tolist() == [[7, 6, 5], [9, 8, PAD]]


def test_lm_vocab_keeps_frequent_characters_both_cases_and_printable_ascii():
    vocab = lm_vocab(["été"] * 5 + ["ж"], min_count=3)
    assert "é" in vocab and "É" in vocab and "ж" not in vocab
    assert all(chr(c) in vocab for c in range(32, 127))


def test_extend_vocab_keeps_every_old_id_and_appends_new_characters():
    base = CharVocab.build(["abc"])
    grown = extend_vocab(base, ["abz", "Ñ"])
    assert grown.chars[: len(base.chars)] == base.chars
    assert {"z", "Z", "ñ", "Ñ"} <= set(grown.chars[len(base.chars):])
    assert all(grown.id(c) == base.id(c) for c in base.chars)
    assert extend_vocab(base, ["cab"]) == base


def test_split_corpus_keeps_repeats_on_one_side():
    texts = toy_corpus(400)
    train, heldout = split_corpus(texts, PretrainConfig())
    assert heldout and not set(train) & set(heldout)
    assert sorted(train + heldout) == sorted(texts)


def test_pretraining_lowers_heldout_bits_per_character():
    texts = toy_corpus(600)
    vocab = lm_vocab(texts)
    lm = build_lm(vocab, seed=0, **DIMS)
    result = fit_lm(lm, vocab, texts, PretrainConfig(minutes=None, max_epochs=15, batch_size=32, eval_every=50,
                                                     threads=1, warmup_steps=10))
    assert result.heldout_strings > 0
    for head in ("forward", "backward", "decoder"):
        assert result.heldout_bpc[head] < 0.5 * result.initial_bpc[head], head
    # the kept state is the best one seen, and it is what the returned LM scores
    _, heldout = split_corpus(texts, PretrainConfig())
    assert evaluate_lm(result.lm, vocab, heldout)["decoder"] == pytest.approx(result.heldout_bpc["decoder"], abs=1e-3)


def test_resize_keeps_old_rows_and_every_other_weight():
    old = CharVocab.build(["abc"])
    new = extend_vocab(old, ["xyz"])
    lm = build_lm(old, seed=0, **DIMS)
    grown = resize_lm(lm, old, new, seed=1)
    before, after = lm.state_dict(), grown.state_dict()
    n = len(old)
    for name in ("embedding.rows.weight", "out.weight", "out.bias", "forward_head.weight", "backward_head.bias"):
        assert torch.equal(after[name][:n], before[name]), name
        assert after[name].shape[0] == len(new)
    for name in ("forward_rnn.weight_ih_l0", "cell.weight_hh", "combine.weight", "embedding.case.weight"):
        assert torch.equal(after[name], before[name]), name
    assert after["embedding.fold"].shape[0] == len(new)  # recomputed for the new characters


def test_initialize_from_lm_copies_every_mapped_tensor():
    lm_chars = CharVocab.build(["hello world", "ABC-123"])
    lm = build_lm(lm_chars, seed=0, **DIMS)
    vocab = extend_vocab(lm_chars, ["héllo"])
    model = build_model(vocab, seed=1, **DIMS, **MODEL_EXTRA)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    copied = initialize_from_lm(model, vocab, lm, lm_chars)
    got, src = model.state_dict(), lm.state_dict()
    n, h = len(lm_chars), DIMS["dec_hidden"]
    pairs = {
        "embedding.rows.weight": "embedding.rows.weight", "embedding.case.weight": "embedding.case.weight",
        "embedding.case_proj.weight": "embedding.case_proj.weight",
        "encoder.gru.weight_ih_l0": "forward_rnn.weight_ih_l0", "encoder.gru.weight_hh_l0": "forward_rnn.weight_hh_l0",
        "encoder.gru.bias_ih_l0": "forward_rnn.bias_ih_l0", "encoder.gru.bias_hh_l0": "forward_rnn.bias_hh_l0",
        "encoder.gru.weight_ih_l0_reverse": "backward_rnn.weight_ih_l0",
        "encoder.gru.weight_hh_l0_reverse": "backward_rnn.weight_hh_l0",
        "encoder.gru.bias_ih_l0_reverse": "backward_rnn.bias_ih_l0",
        "encoder.gru.bias_hh_l0_reverse": "backward_rnn.bias_hh_l0",
        "step.cell.weight_ih": "cell.weight_ih", "step.cell.weight_hh": "cell.weight_hh",
        "step.cell.bias_ih": "cell.bias_ih", "step.cell.bias_hh": "cell.bias_hh",
        "step.combine.bias": "combine.bias", "step.out.weight": "out.weight", "step.out.bias": "out.bias",
    }
    for dst, name in pairs.items():
        assert torch.equal(got[dst][: src[name].shape[0]], src[name]), dst
    assert torch.equal(got["step.combine.weight"][:, :h], src["combine.weight"])
    assert not got["step.combine.weight"][:, h:].any()  # the context columns start at zero
    assert not got["encoder.init_state.weight"].any() and not got["encoder.init_state.bias"].any()
    assert torch.equal(got["embedding.rows.weight"][n:], fresh["embedding.rows.weight"][n:])  # new characters
    assert torch.equal(got["step.attention.query.weight"], fresh["step.attention.query.weight"])
    assert set(copied) == {*pairs, "step.combine.weight", "encoder.init_state.weight", "encoder.init_state.bias"}


def test_initialized_encoder_reproduces_the_lms_hidden_states_in_both_directions():
    """The mapping is right only if the encoder's two directions *are* the two LMs."""
    vocab = CharVocab.build(["hello", "world"])
    lm = build_lm(vocab, seed=0, **DIMS).eval()
    model = build_model(vocab, seed=1, **DIMS, **MODEL_EXTRA).eval()
    initialize_from_lm(model, vocab, lm, vocab)
    ids = torch.tensor([vocab.encode("hello")])
    with torch.no_grad():
        emb = lm.embedding(ids)
        both, _ = model.encoder.gru(model.embedding(ids))
        forward, _ = lm.forward_rnn(emb)
        backward, _ = lm.backward_rnn(emb.flip(1))
    torch.testing.assert_close(both[..., : DIMS["enc_hidden"]], forward)
    torch.testing.assert_close(both[..., DIMS["enc_hidden"]:], backward.flip(1))


def test_initialize_refuses_other_sizes_or_a_vocabulary_that_does_not_extend_the_lms():
    vocab = CharVocab.build(["abc"])
    lm = build_lm(vocab, seed=0, **DIMS)
    other = build_model(vocab, seed=0, **{**DIMS, "dec_hidden": 32}, **MODEL_EXTRA)
    with pytest.raises(ValueError, match="dec_hidden"):
        initialize_from_lm(other, vocab, lm, vocab)
    shuffled = CharVocab(tuple(reversed(vocab.chars)))
    model = build_model(shuffled, seed=0, **DIMS, **MODEL_EXTRA)
    with pytest.raises(ValueError, match="extend"):
        initialize_from_lm(model, shuffled, lm, vocab)


def test_pretraining_without_a_time_budget_is_reproducible():
    texts = toy_corpus(200)
    vocab = lm_vocab(texts)
    cfg = PretrainConfig(minutes=None, max_epochs=2, batch_size=32, eval_every=5, threads=1, warmup_steps=3)
    first = fit_lm(build_lm(vocab, seed=3, **DIMS), vocab, texts, cfg).lm.state_dict()
    second = fit_lm(build_lm(vocab, seed=3, **DIMS), vocab, texts, cfg).lm.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
