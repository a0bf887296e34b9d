"""The ONNX graphs in a bundle compute what its PyTorch weights compute.

The weights are loaded from ``weights.safetensors`` into a fresh ``Seq2Seq``; the graphs run in
onnxruntime. Greedy decoding must give identical outputs with log-probabilities of every likely
token within 1e-4 (``export.check_parity``), on any batch size and on characters the model
never saw; beam search must give identical outputs too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_model

from strseq_tasks.export import ParityError, check_parity
from strseq_tasks.model import ModelConfig, Seq2Seq
from strseq_tasks.runtime import Normalizer, OrtStepper, open_sessions
from strseq_tasks.training import predict_torch
from strseq_tasks.vocab import CharVocab

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
        report = check_parity(model, vocab, ort_factory, TEXTS[start : start + batch], tol=1e-4)
        assert report["mismatched_outputs"] == 0
        assert report["max_token_prob_diff"] <= 1e-4
        assert report["max_likely_token_logprob_diff"] <= 1e-4  # holds on this small, briefly trained model
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
    outputs, logprob, _ = predict_torch(model, vocab, TEXTS, beam=4, identity_margin=normalizer.identity_margin)
    greedy, greedy_logprob, _ = predict_torch(model, vocab, TEXTS, beam=1)
    assert outputs != greedy or not np.allclose(logprob, greedy_logprob)  # beam 4 matters on these texts
    predictions = normalizer.normalize(TEXTS, beam=4)
    assert [p.text for p in predictions] == outputs
    expected = normalizer.calibration.confidence(logprob)
    np.testing.assert_allclose([p.confidence for p in predictions], expected, atol=1e-4)

