"""What training stores about the inputs it learned from (core/shapes.Familiar), end to end in ``fit``."""

from __future__ import annotations

import pytest

import strseq_tasks.core.shapes as shapes
from strseq_tasks.core.shapes import text_shape
from strseq_tasks.learn.build import initial_model
from strseq_tasks.learn.training import TrainConfig, fit

PAIRS = [(f"SMITH{i % 7}, john", f"John Smith{i % 7}") for i in range(30)] + [("mary ann jones", "Mary Ann Jones")]
TINY = {"emb_dim": 8, "enc_hidden": 8, "dec_hidden": 16, "attn_dim": 8}


def _fit(cfg: TrainConfig):
    vocab, model, _ = initial_model([t for p in PAIRS for t in p], 0, TINY, None, 0.7)
    return fit(model, vocab, PAIRS, cfg, known=None)


@pytest.mark.slow
def test_fit_keeps_the_shapes_and_characters_of_its_inputs_and_calibrates_with_them():
    result = _fit(TrainConfig(max_epochs=2))
    train_inputs = {a for a, _ in PAIRS} - {a for a, _ in result.val_pairs}
    assert {text_shape(a) for a in train_inputs} <= result.familiar.shapes  # augmented copies add more
    assert set(result.familiar.chars) == set().union(*train_inputs)
    assert result.calibration.novel_shift != 0.0 and result.calibration.unseen_char_shift != 0.0


@pytest.mark.slow
def test_a_column_of_more_shapes_than_a_bundle_keeps_turns_the_layout_term_off(monkeypatch):
    monkeypatch.setattr(shapes, "MAX_SHAPES", 3)  # as free text would exceed the real bound
    result = _fit(TrainConfig(max_epochs=2))
    assert result.familiar.shapes is None and result.calibration.novel_shift == 0.0
    assert result.familiar.chars  # the character term does not depend on it
