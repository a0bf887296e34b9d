"""Characters never seen in training are copied, never replaced by a placeholder.

The model can only write vocabulary characters or copy a source character (as written,
lower-cased or upper-cased), so every output character is in the vocabulary or is a case
form of an input character; "<unk>" and a "?" that the input did not have never appear.
"""

from __future__ import annotations

import numpy as np
import pytest

from strseq_tasks.core.batching import encode_sources
from strseq_tasks.core.vocab import BOS, UNK, lower_char, normalize_text, upper_char
from strseq_tasks.serve.runtime import Normalizer

UNSEEN_INPUTS = [
    "Ødegård, Åse", "ŞAHİN, Çağrı", "Zoë Brontë", "José 😀 Müller", "李小龙", "Nguyễn Văn Ánh", "ǅemal",
    "Straße", "ΑΘΗΝΑ", "Москва, Иван", "Ste\u0304fan", "O’Brien “Tom”", "ﬁnn", "👨‍👩‍👧", "¿Qué?", "x\u00a0y",
    "Ærø", "Þór", "ĳssel", "dr. 王 伟",
]


@pytest.fixture(scope="module")
def normalizer(tiny_bundle) -> Normalizer:
    return Normalizer(tiny_bundle)


def allowed_characters(text: str, normalizer: Normalizer) -> set[str]:
    text = normalize_text(text)
    return set(normalizer.vocab.chars) | set(text) | {lower_char(c) for c in text} | {upper_char(c) for c in text}


def test_inputs_really_hold_unseen_characters(normalizer):
    assert "?" not in normalizer.vocab  # else "?" could be generated legitimately
    assert all(any(c not in normalizer.vocab for c in normalize_text(t)) for t in UNSEEN_INPUTS)


@pytest.mark.parametrize("beam", [1, 3])
def test_outputs_hold_only_vocabulary_or_input_characters(normalizer, beam):
    predictions = normalizer.normalize(UNSEEN_INPUTS, beam=beam)
    for text, prediction in zip(UNSEEN_INPUTS, predictions, strict=True):
        assert prediction.status == "ok"
        assert "<unk>" not in prediction.text and "\ufffd" not in prediction.text
        if "?" not in text:
            assert "?" not in prediction.text, (text, prediction.text)
        extra = set(prediction.text) - allowed_characters(text, normalizer)
        assert not extra, (text, prediction.text, extra)


def test_unseen_characters_can_be_copied_and_unk_never_written(normalizer):
    # At the first step, every unseen source character has a real (copy) probability on
    # its extended id, and UNK sits at the floor of the distribution.
    source = encode_sources(normalizer.vocab, UNSEEN_INPUTS)
    stepper = normalizer.stepper(source)
    rows = np.arange(source.size)
    log_probs, _ = stepper(np.full(source.size, BOS, dtype=np.int64), stepper.state, rows)
    size = len(normalizer.vocab)
    for row, text in enumerate(UNSEEN_INPUTS):
        unseen = [c for c in normalize_text(text) if c not in normalizer.vocab]
        for char in unseen:
            assert log_probs[row, source.ext_index[row][char]] > -50.0, (text, char)  # the floor is -69
        assert log_probs[row, UNK] <= -68.9, text
        assert np.all(log_probs[row, size + len(source.oov[row]):] <= -68.9), text  # other rows' extras
