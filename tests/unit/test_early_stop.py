"""Early stopping's patience (``training.keeps_patience``)."""

from __future__ import annotations

from strseq_tasks.learn.training import SATURATED_RISE, keeps_patience


def test_any_improvement_keeps_patience_while_rows_are_wrong():
    assert keeps_patience((0.90, -0.30), (0.89, -0.20), exact=0.9)  # exact match rose
    assert keeps_patience((0.90, -0.20), (0.90, -0.30), exact=0.9)  # same exact match, lower loss
    assert not keeps_patience((0.90, -0.40), (0.90, -0.30), exact=0.9)
    assert keeps_patience((0.0, -1.0), (0.0, -1.2), exact=0.0)  # nothing right yet, but learning


def test_with_every_row_right_a_falling_loss_buys_no_more_epochs():
    assert not keeps_patience((0.999, -0.01), (0.999, -0.02), exact=1.0)
    # the smoothed exact match converging on 1.0 is no rise either
    assert not keeps_patience((0.9995, -0.01), (0.999, -0.02), exact=1.0)
    assert keeps_patience((0.99 + 2 * SATURATED_RISE, -0.5), (0.99, -0.02), exact=1.0)
