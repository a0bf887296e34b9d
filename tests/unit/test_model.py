"""The torch model on toy sizes: golden loss, proper distributions, padding, copying, decoding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from strseq_tasks.core.batching import decode_row, encode_sources, encode_targets, max_output_lengths
from strseq_tasks.core.decoding import beam_search, greedy_search
from strseq_tasks.core.vocab import BOS, CASE_LOWER, CASE_UPPER, EOS, PAD, UNK, CharVocab
from strseq_tasks.learn.model import ModelConfig, Seq2Seq, TorchStepper, build_model, sequence_loss

TOY = dict(emb_dim=8, case_dim=2, enc_hidden=8, dec_hidden=16, attn_dim=8, loc_filters=2, loc_kernel=3)
PAIRS = [("SMITH, john", "John Smith"), ("dr. jørgen", "Jørgen")]  # "ø", "g", "e" are out of vocabulary
GOLDEN_LOSS = 3.2023  # teacher-forced loss of the seed-0 toy model on PAIRS (eval mode)


@pytest.fixture(scope="module")
def vocab() -> CharVocab:
    return CharVocab.build(["SMITH, john John Smith dr."])


@pytest.fixture(scope="module")
def model(vocab) -> Seq2Seq:
    return build_model(vocab, seed=0, **TOY).eval()


def _batch(vocab, pairs):
    source = encode_sources(vocab, [a for a, _ in pairs])
    targets = encode_targets(vocab, [b for _, b in pairs], source)
    return source, targets


def _teacher_forced(model, source, targets) -> torch.Tensor:
    with torch.no_grad():
        return model(
            torch.from_numpy(source.ids),
            torch.from_numpy(source.lengths),
            torch.from_numpy(source.copy_map),
            torch.from_numpy(targets),
        )


def test_golden_teacher_forced_loss(vocab, model):
    source, targets = _batch(vocab, PAIRS)
    log_probs = _teacher_forced(model, source, targets)
    assert log_probs.shape == (2, targets.shape[1], source.copy_map.shape[2])
    loss = sequence_loss(log_probs, torch.from_numpy(targets)).item()
    assert round(loss, 4) == GOLDEN_LOSS


def test_training_unroll_is_the_exported_step_applied_step_by_step(vocab, model):
    # training batches everything but the recurrence over the target steps (teacher_forced);
    # decoding and ONNX run DecoderStep.forward one step at a time: the same function
    source, targets = _batch(vocab, PAIRS)
    src, lengths, copy_map = (torch.from_numpy(a) for a in (source.ids, source.lengths, source.copy_map))
    with torch.no_grad():
        enc_out, keys, src_mask, hidden = model.encode(src, lengths)
        state = model.initial_state(hidden, src.shape[1])
        prev, steps = torch.full((len(PAIRS),), BOS, dtype=torch.long), []
        for t in range(targets.shape[1]):
            log_probs, *state = model.step(prev, *state, enc_out, keys, src_mask, copy_map)
            steps.append(log_probs)
            prev = torch.from_numpy(targets[:, t])
    stepped = torch.stack(steps, dim=1)
    assert torch.allclose(_teacher_forced(model, source, targets), stepped, atol=1e-5)


def test_build_model_is_deterministic_under_its_seed(vocab, model):
    same = build_model(vocab, seed=0, **TOY).state_dict()
    other = build_model(vocab, seed=1, **TOY).state_dict()
    reference = model.state_dict()
    assert all(torch.equal(reference[k], same[k]) for k in reference)
    assert not all(torch.equal(reference[k], other[k]) for k in reference)


def test_build_model_rejects_a_config_for_another_vocabulary(vocab):
    with pytest.raises(ValueError, match="vocab_size"):
        Seq2Seq(vocab, ModelConfig(vocab_size=len(vocab) + 1, **TOY))


def test_each_step_is_a_probability_distribution_over_the_extended_vocabulary(vocab, model):
    source, targets = _batch(vocab, PAIRS)
    log_probs = _teacher_forced(model, source, targets).double()
    assert torch.isfinite(log_probs).all()
    total = log_probs.exp().sum(dim=-1)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-5), total


def test_sequence_loss_ignores_padding(vocab, model):
    source, targets = _batch(vocab, PAIRS)
    log_probs = _teacher_forced(model, source, targets)
    mask = targets != PAD
    picked = log_probs.gather(2, torch.from_numpy(targets).unsqueeze(2)).squeeze(2).numpy()
    expected = -picked[mask].mean()
    assert sequence_loss(log_probs, torch.from_numpy(targets)).item() == pytest.approx(expected, rel=1e-5)


def test_pad_bos_unk_are_never_generated(vocab, model):
    source, targets = _batch(vocab, PAIRS)
    probs = _teacher_forced(model, source, targets).exp()
    assert probs[:, :, [PAD, BOS, UNK]].max().item() < 1e-20
    assert probs[:, :, EOS].min().item() > 1e-6  # ... while EOS can be


def test_unseen_source_characters_can_be_copied(vocab, model):
    source, targets = _batch(vocab, PAIRS)
    log_probs = _teacher_forced(model, source, targets)
    v = len(vocab)
    oslash = source.ext_index[1]["ø"]
    assert oslash >= v
    assert log_probs[1, :, oslash].min().item() > -30.0  # row 1 can copy its "ø"
    assert log_probs[0, :, v:].max().item() <= -68.0  # row 0 has no such characters: probability ~0


def test_encoder_outputs_do_not_depend_on_padding(vocab, model):
    alone = encode_sources(vocab, ["john"])
    batch = encode_sources(vocab, ["SMITH, john", "john", "jo"])
    with torch.no_grad():
        out_a, keys_a, mask_a, hidden_a = model.encode(torch.from_numpy(alone.ids), torch.from_numpy(alone.lengths))
        out_b, keys_b, mask_b, hidden_b = model.encode(torch.from_numpy(batch.ids), torch.from_numpy(batch.lengths))
    n = 4
    torch.testing.assert_close(out_b[1, :n], out_a[0, :n], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(keys_b[1, :n], keys_a[0, :n], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(hidden_b[1], hidden_a[0], atol=1e-6, rtol=1e-5)  # backward GRU skips padding
    assert out_b[1, n:].abs().max().item() == 0.0
    assert mask_b[1].tolist() == [1.0] * n + [0.0] * (batch.ids.shape[1] - n)


def test_decoder_step_output_does_not_depend_on_padding(vocab, model):
    """Teacher-forced log-probabilities of a row are the same alone and next to a longer row."""
    pairs = [("john", "John")]
    alone_src, alone_tgt = _batch(vocab, pairs)
    batch_src, batch_tgt = _batch(vocab, pairs + [("SMITH, john smith", "John Smith")])
    alone = _teacher_forced(model, alone_src, alone_tgt)[0]
    batched = _teacher_forced(model, batch_src, batch_tgt)[0, : alone.shape[0], : alone.shape[1]]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)


def test_upper_and_lower_case_share_an_embedding_row(vocab, model):
    emb = model.embedding
    fold, case = vocab.fold_table(), vocab.case_table()
    assert fold[vocab.id("J")] == vocab.id("j") and case[vocab.id("J")] == CASE_UPPER
    assert case[vocab.id("j")] == CASE_LOWER
    with torch.no_grad():
        e = {c: emb(torch.tensor([vocab.id(c)]))[0] for c in "JjSs"}
        ext = emb(torch.tensor([len(vocab) + 2]))[0]
        unk = emb(torch.tensor([UNK]))[0]
    # the difference between cases is the same case feature for every letter
    torch.testing.assert_close(e["J"] - e["j"], e["S"] - e["s"])
    assert not torch.allclose(e["J"], e["j"])
    torch.testing.assert_close(ext, unk)  # copied out-of-vocabulary ids are read as UNK


def _score_with_teacher_forcing(model, source, rows_ids) -> np.ndarray:
    texts_ids = [list(map(int, ids)) + [EOS] for ids in rows_ids]
    targets = np.full((len(texts_ids), max(map(len, texts_ids))), PAD, dtype=np.int64)
    for b, ids in enumerate(texts_ids):
        targets[b, : len(ids)] = ids
    log_probs = _teacher_forced(model, source, targets).double().numpy()
    picked = np.take_along_axis(log_probs, targets[:, :, None], axis=2)[:, :, 0]
    return np.where(targets != PAD, picked, 0.0).sum(axis=1)


@pytest.mark.parametrize("search", ["greedy", "beam"])
def test_torch_stepper_decodes_to_text(vocab, model, search):
    texts = ["dr. jørgen", "SMITH, john", "j"]
    source = encode_sources(vocab, texts)
    stepper = TorchStepper(model, source.ids, source.lengths, source.copy_map)
    max_lengths = max_output_lengths(source.lengths, limit=12)
    if search == "greedy":
        result = greedy_search(stepper, stepper.state, max_lengths)
    else:
        result = beam_search(stepper, stepper.state, max_lengths, beam=3)
    ext_size = source.copy_map.shape[2]
    assert len(result.ids) == len(texts)
    for row, ids in enumerate(result.ids):
        assert ids.dtype == np.int64
        assert len(ids) < max_lengths[row]
        assert all(EOS < i < ext_size and i != UNK for i in ids.tolist())
        text = decode_row(vocab, ids, source.oov[row])
        assert isinstance(text, str) and len(text) == len(ids)
    assert np.all(np.isfinite(result.logprob)) and np.all(result.logprob <= 0.0)
    # the decoder's score of each output equals the teacher-forced score of the same ids
    np.testing.assert_allclose(result.logprob, _score_with_teacher_forcing(model, source, result.ids), atol=1e-4)


def test_torch_stepper_state_has_the_hypothesis_axis_first(vocab, model):
    source = encode_sources(vocab, ["john", "SMITH"])
    stepper = TorchStepper(model, source.ids, source.lengths, source.copy_map)
    hidden, attn, feed = stepper.state
    assert hidden.shape == (2, TOY["dec_hidden"]) and feed.shape == (2, TOY["dec_hidden"])
    assert attn.shape == (2, source.ids.shape[1])
    rows = np.array([1, 1, 0])
    log_probs, state = stepper(np.full(3, BOS), tuple(s[rows] for s in stepper.state), rows)
    assert log_probs.shape == (3, source.copy_map.shape[2])
    np.testing.assert_allclose(log_probs[0], log_probs[1], rtol=1e-6)  # float32: batch rows may differ in the last bit
    assert all(s.shape[0] == 3 for s in state)
