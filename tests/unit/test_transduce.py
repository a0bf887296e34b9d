"""transduce: order, empty inputs, and the identity margin (keep the input unless clearly beaten)."""

from __future__ import annotations

import numpy as np
import pytest

from strseq_tasks.core.transduce import FREE, transduce
from strseq_tasks.core.vocab import EOS, CharVocab

VOCAB = CharVocab(tuple("abxy"))


class PreferX:
    """Emits "x" for every source character with log-probability ``log_x`` and copies with the rest.

    The identity output ("ab" for "ab") then scores n * log(1 - p_x) + log p(EOS), the answer
    "xx" scores n * log p_x + log p(EOS): the gap is set by ``p_x``.
    """

    def __init__(self, source, p_x: float):
        self.source, self.p_x = source, p_x
        self.state = (np.zeros((source.size, 1), dtype=np.int64),)  # position in the source

    def __call__(self, tokens, state, rows):
        (pos,) = state
        ext = self.source.copy_map.shape[2]
        out = np.full((len(rows), ext), -50.0)
        for k, (row, p) in enumerate(zip(rows, pos[:, 0])):
            length = int(self.source.lengths[row])
            if p >= length:
                out[k, EOS] = 0.0
                continue
            out[k, VOCAB.id("x")] = np.log(self.p_x)
            out[k, int(self.source.ids[row, p])] = np.log(1 - self.p_x)
        return out, (pos + 1,)


@pytest.mark.parametrize("p_x, margin, expected", [
    (0.9, None, "xx"),   # no identity check: the best output wins
    (0.6, 0.0, "xx"),    # "xx" is more probable than "ab"
    (0.6, 1.0, "ab"),    # ... but by 2 * log(0.6 / 0.4) = 0.81 nats < 1: keep the input
    (0.9, 1.0, "xx"),    # 2 * log(9) = 4.4 nats > 1: change
    (0.9, 8.0, "ab"),
])
def test_identity_margin_keeps_the_input_unless_clearly_beaten(p_x, margin, expected):
    outputs, logprob, distance = transduce(["ab"], VOCAB, lambda s: PreferX(s, p_x), max_len=10, identity_margin=margin)
    assert distance.tolist() == [FREE]
    assert outputs == [expected]
    p_char = p_x if expected == "xx" else 1 - p_x
    assert logprob[0] == pytest.approx(2 * np.log(p_char), abs=1e-6)


def test_order_is_kept_and_empty_inputs_come_back_empty():
    texts = ["abab", "", "a", "bb"]
    outputs, logprob, _ = transduce(texts, VOCAB, lambda s: PreferX(s, 0.1), max_len=10, batch_size=2)
    assert outputs == ["abab", "", "a", "bb"]
    assert logprob[1] == 0.0


def test_known_values_keep_known_inputs_and_snap_near_ones():
    from strseq_tasks.core.known import KnownValues

    # the model wants "xx..." everywhere; known values override it where one is near
    known = KnownValues(["ab", "bab", "abba"])
    texts = ["ab", "bb", "abbb", "yyyyyy", ""]
    outputs, logprob, distance = transduce(texts, VOCAB, lambda s: PreferX(s, 0.9), max_len=10, known=known,
                                           batch_size=2)
    assert outputs == ["ab", "ab", "abba", "xxxxxx", ""]   # "bb": 1 edit from "ab" and "bab"; the model prefers
    assert distance.tolist() == [0, 1, 1, FREE, FREE]  # kept, snapped, snapped, decoded freely, empty
    assert logprob[0] == pytest.approx(2 * np.log(0.1), abs=1e-6)  # the known value's own log-prob


def test_the_model_breaks_ties_between_equally_near_values():
    from strseq_tasks.core.known import KnownValues

    # "ay" and "xb" are both one edit from "ab"; PreferX(0.9) makes "x" likelier than copying "a"
    outputs, *_ = transduce(["ab"], VOCAB, lambda s: PreferX(s, 0.9), max_len=10,
                           known=KnownValues(["zz", "ay", "xb"], max_distance=1))
    # "ay": log .1 + (y unlikely: -50); "xb": log .9 + log .1 -> "xb"
    assert outputs == ["xb"]


class Unigram:
    """Emits a, b, x with fixed probabilities whatever the source, then EOS at the source length."""

    PROBS = {"a": 0.5, "b": 0.3, "x": 0.2}

    def __init__(self, source):
        self.source = source
        self.state = (np.zeros((source.size, 1), dtype=np.int64),)

    def __call__(self, tokens, state, rows):
        (pos,) = state
        out = np.full((len(rows), self.source.copy_map.shape[2]), -50.0)
        for k, (row, p) in enumerate(zip(rows, pos[:, 0])):
            if p >= int(self.source.lengths[row]):
                out[k, EOS] = 0.0
            else:
                for char, prob in self.PROBS.items():
                    out[k, VOCAB.id(char)] = np.log(prob)
        return out, (pos + 1,)


@pytest.mark.parametrize("weight, expected", [(0.0, "aa"), (1.0, "aa"), (2.0, "bb"), (4.0, "bb")])
def test_the_list_order_prior_can_overrule_a_small_model_preference(weight, expected):
    from strseq_tasks.core.known import KnownValues

    # "bb" (listed first) and "aa" are both one edit from "ab"; the model prefers "aa" by
    # 2 log(.5/.3) = 1.02 nats, the prior prefers "bb" by weight * log 2 = 0.69 * weight nats
    known = KnownValues(["bb", "aa"], max_distance=1)
    outputs, logprob, _ = transduce(["ab"], VOCAB, Unigram, max_len=10, known=known, known_prior=weight)
    assert outputs == [expected]
    assert logprob[0] == pytest.approx(2 * np.log(Unigram.PROBS[expected[0]]), abs=1e-6)  # the model's own
