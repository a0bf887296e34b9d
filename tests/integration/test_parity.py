"""The ONNX graphs in a bundle compute what its PyTorch weights compute.

The weights are loaded from ``weights.safetensors`` into a fresh ``Seq2Seq``; the graphs run in
onnxruntime. Greedy decoding must give identical outputs, with every next-token probability as
close to the float64 result as PyTorch's own fp32 rounding allows (``export.check_parity``), on
any batch size and on characters the model never saw; beam search must give identical outputs
too. The check tells an export bug from rounding: other weights, perturbed weights and a graph
with a wrong operation are refused; noise where no output is decoded (past EOS) and near ties
are not.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_model

from strseq_tasks.core.vocab import EOS, CharVocab, read_text
from strseq_tasks.learn.decoding_choices import predict_torch
from strseq_tasks.learn.export import ParityError, check_parity, export_onnx
from strseq_tasks.learn.model import ModelConfig, Seq2Seq, TorchStepper
from strseq_tasks.serve.runtime import Normalizer, OrtStepper, open_sessions

UNSEEN = [
    "Ødegård, Åse", "ŞAHİN, Çağrı", "Łukasz Żółć", "Zoë Brontë", "José 😀 Müller", "李小龙", "Nguyễn Văn Ánh",
    "ǅemal Ǆuzel", "Straße ß", "İstanbul", "ΑΘΗΝΑ Παπαδοπούλου", "Москва, Иван", "Jose\u0301 Mu\u0308ller",
    "O’Brien – “Tom”", "ﬁnn ﬂynn", "👨‍👩‍👧 family", "\u00a0nbsp\u2009thin", "tab\there", "Ærø Ørsted",
]
SEEN = [
    "SMITH, John", "dr. mary k jones", "sally o'connor", "Mrs. Giovanna H. Budig", "  Mieszko  Kłosiewicz ",
    "Holger Boström", "mr. leonard m morley", "Roosenboom, Fem C.", "OSKARSSON, ÅKE B", "a", "Z", ".", " ",
    "ab", "Ann", "LEE", "van der Berg, Jan-Willem", "prof. dr. hab. Maria Skłodowska-Curie",
    "ms. prudencia p peralta", "de la Cruz", "mcdonald", "O'NEIL, MARY", "bob", "Kim", "x y z",
    "Jean-Luc Picard", "Abcdefghijklmnopqrstuvwxyz Abcdefghijklmnopqrstuvwxyz Abcdefghij",  # 64 characters
    "aaaaaaaa", "Anna  Maria", "ó é í á",
]
TEXTS = UNSEEN + SEEN


@pytest.fixture(scope="module")
def torch_model(tiny_bundle) -> tuple[Seq2Seq, CharVocab]:
    """The bundle's PyTorch weights, loaded the way fine-tuning would load them."""
    manifest = json.loads((tiny_bundle / "manifest.json").read_text(encoding="utf-8"))
    vocab = CharVocab.from_json((tiny_bundle / "vocab.json").read_text(encoding="utf-8"))
    model = Seq2Seq(vocab, ModelConfig(**manifest["model_config"]))
    missing, unexpected = load_model(model, str(tiny_bundle / "weights.safetensors"))
    assert not missing and not unexpected
    return model.eval(), vocab


@pytest.fixture(scope="module")
def ort_factory(tiny_bundle):
    encoder, decoder = open_sessions(tiny_bundle)
    return lambda source: OrtStepper(encoder, decoder, source)


def test_texts_cover_what_parity_must_hold_on(torch_model, tiny_bundle):
    _, vocab = torch_model
    max_len = Normalizer(tiny_bundle).max_len
    assert len(TEXTS) >= 45
    assert all(any(c not in vocab for c in t) for t in UNSEEN)
    assert max(len(t) for t in TEXTS) == max_len and min(len(t) for t in TEXTS) == 1


@pytest.mark.parametrize("batch", [1, 7, 16, len(TEXTS)])
def test_greedy_onnx_matches_torch(batch, torch_model, ort_factory):
    model, vocab = torch_model
    for start in range(0, len(TEXTS), batch):
        report = check_parity(model, vocab, ort_factory, TEXTS[start : start + batch])
        assert report["mismatched_outputs"] == report["near_ties"] == 0
        assert report["onnx_error"] <= report["bound"] and report["error_to_noise"] < 4
        assert report["max_token_prob_diff"] <= 1e-5  # holds on this small, briefly trained model
        assert report["max_seq_logprob_diff"] <= 1e-4


def test_parity_check_notices_different_weights(torch_model, ort_factory, tiny_bundle):
    # The comparison has teeth: a model with one perturbed weight no longer matches the graphs.
    model, vocab = torch_model
    other = Seq2Seq(vocab, model.cfg)
    load_model(other, str(tiny_bundle / "weights.safetensors"))
    other.eval()
    with torch.no_grad():
        other.step.out.bias += 0.01 * torch.arange(other.cfg.vocab_size, dtype=other.step.out.bias.dtype)
    with pytest.raises(ParityError, match="differs"):
        check_parity(other, vocab, ort_factory, TEXTS[:16])


def test_beam_search_onnx_matches_torch(torch_model, tiny_bundle):
    model, vocab = torch_model
    normalizer = Normalizer(tiny_bundle, precision="fp32")  # the exported graphs; int8: test_int8.py
    outputs, logprob, _ = predict_torch(model, vocab, TEXTS, beam=4, identity_margin=normalizer.identity_margin,
                                        spaces=normalizer.spaces)
    greedy, greedy_logprob, _ = predict_torch(model, vocab, TEXTS, beam=1)
    assert outputs != greedy or not np.allclose(logprob, greedy_logprob)  # beam 4 matters on these texts
    predictions = normalizer.normalize(TEXTS, beam=4)
    read = [i for i, p in enumerate(predictions) if p.status == "ok"]  # blank rows come back as given
    assert len(read) >= len(TEXTS) - 2
    assert [predictions[i].text for i in read] == [outputs[i] for i in read]
    flags = normalizer.familiar.flags([read_text(TEXTS[i], normalizer.spaces) for i in read],
                                      [outputs[i] for i in read])
    assert any(flags["novel"]) and not all(flags["novel"])  # the texts hold layouts the model learned and others
    assert flags["unseen"] is not None and flags["disagree"] is not None and flags["lost"] is not None
    assert normalizer.calibration.lost_char_shift < -5  # the bundle carries the term (prior -12)
    expected = normalizer.calibration.confidence(logprob[read], **flags)
    np.testing.assert_allclose([predictions[i].confidence for i in read], expected, atol=1e-4)


def test_a_bundle_knows_which_words_its_pairs_showed(tiny_bundle, name_pairs):
    """The manifest stores every word of the training inputs, as keys: the review queue's new words."""
    words = Normalizer(tiny_bundle, precision="fp32").familiar.words
    assert words is not None and words.shown
    inputs = [a for a, _ in name_pairs[:80]]
    shown = sum(words.new_words(a) == [] for a in inputs)  # the validation pairs' words may be new
    assert 0.7 * len(inputs) <= shown < len(inputs)
    assert words.new_words(f"{inputs[0]} Qzxwv") == ["qzxwv"]
    assert "qzxwv" not in (tiny_bundle / "manifest.json").read_text() and len(next(iter(words.shown))) == 16



def _fresh(tiny_bundle, vocab, cfg) -> Seq2Seq:
    model = Seq2Seq(vocab, cfg)
    load_model(model, str(tiny_bundle / "weights.safetensors"))
    return model.eval()


@pytest.mark.parametrize("name", ["embedding.rows.weight", "encoder.gru.weight_ih_l0", "step.cell.weight_hh",
                                  "step.attention.query.weight", "step.out.weight", "step.gate.weight"])
def test_parity_check_refuses_weights_perturbed_by_one_percent(name, torch_model, ort_factory, tiny_bundle):
    # The graphs hold the bundle's weights; PyTorch holds them with one tensor moved by 1% of its
    # mean size (benchmarks/parity_noise.py: 1% of any one tensor is refused, 0.1% of half of them).
    model, vocab = torch_model
    other = _fresh(tiny_bundle, vocab, model.cfg)
    weight = dict(other.named_parameters())[name]
    with torch.no_grad():
        weight += 0.01 * weight.abs().mean() * torch.randn(weight.shape, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ParityError, match="beyond float32 rounding"):
        check_parity(other, vocab, ort_factory, TEXTS)


def test_parity_check_refuses_a_graph_with_a_wrong_operation(torch_model, tmp_path, monkeypatch):
    import strseq_tasks.learn.model as model_module

    model, vocab = torch_model
    # an exporter that lowers log-add-exp wrongly (as max): the copy and generate mixture is off
    monkeypatch.setattr(model_module, "_log_add", lambda a, b: torch.maximum(a, b))
    export_onnx(model, vocab, tmp_path)
    monkeypatch.undo()
    encoder, decoder = open_sessions(tmp_path)
    with pytest.raises(ParityError, match="beyond float32 rounding"):
        check_parity(model, vocab, lambda s: OrtStepper(encoder, decoder, s), TEXTS)


class _NoisyPastEos:
    """onnxruntime, with its next-token probabilities scrambled wherever it is fed EOS: a state no
    decoding uses (greedy stops a row at its EOS; beam search ignores what follows a finished
    hypothesis). The old check compared probabilities there, for every row up to the longest
    output, and refused a good export of long outputs for float noise grown chaotic past EOS."""

    def __init__(self, inner: OrtStepper):
        self.inner, self.state = inner, inner.state
        self.rng = np.random.default_rng(0)

    def __call__(self, tokens, state, rows):
        log_probs, state = self.inner(tokens, state, rows)
        past = tokens == EOS
        if past.any():
            log_probs = log_probs.copy()
            noisy = log_probs[past] + self.rng.normal(0, 0.5, log_probs[past].shape).astype(np.float32)
            log_probs[past] = noisy - np.log(np.exp(noisy).sum(axis=1, keepdims=True))
        return log_probs, state


def test_parity_check_ignores_what_no_output_decodes(torch_model, ort_factory):
    model, vocab = torch_model
    report = check_parity(model, vocab, lambda s: _NoisyPastEos(ort_factory(s)), TEXTS)
    assert report["mismatched_outputs"] == report["near_ties"] == 0 and report["onnx_error"] <= report["bound"]


class _Nudged:
    """PyTorch, with token ``id``'s log-probability raised by ``nats``."""

    def __init__(self, inner: TorchStepper, id: int, nats: float):
        self.inner, self.state, self.id, self.nats = inner, inner.state, id, nats

    def __call__(self, tokens, state, rows):
        log_probs, state = self.inner(tokens, state, rows)
        log_probs = log_probs.copy()
        log_probs[:, self.id] += np.float32(self.nats)
        return log_probs, state


def test_near_ties_are_counted_not_refused(torch_model, tiny_bundle):
    model, vocab = torch_model
    tied = _fresh(tiny_bundle, vocab, model.cfg)
    x, q = vocab.id("x"), vocab.id("q")
    with torch.no_grad():  # generate, not copy; x and q the likeliest characters, exactly tied
        tied.step.out.weight[x] = tied.step.out.weight[q]
        tied.step.out.bias[x] = tied.step.out.bias[q] = tied.step.out.bias.max() + 12
        tied.step.gate.bias += 20
    texts = ["ab", "Ann", "bob", "Mary Smith"]  # no x or q to copy

    def nudged(nats):
        return lambda s: _Nudged(TorchStepper(tied, s.ids, s.lengths, s.copy_map), x, nats)

    report = check_parity(tied, vocab, nudged(1e-7), texts)  # x wins the tie by a rounding error
    assert report["near_ties"] == len(texts) and report["mismatched_outputs"] == 0
    with pytest.raises(ParityError, match="beyond float32 rounding"):
        check_parity(tied, vocab, nudged(0.1), texts)  # by more than rounding: refused
