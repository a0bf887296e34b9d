"""The exported decoder step (weights folded for inference) computes what the training step does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from strseq_tasks.core.batching import encode_sources
from strseq_tasks.core.vocab import BOS, CharVocab
from strseq_tasks.learn.folding import FoldedDecoderStep
from strseq_tasks.learn.model import build_model

VOCAB = CharVocab.build(["SMITH, john John Smith dr. 0123"])


@pytest.mark.parametrize("seed, sizes", [
    (0, dict(emb_dim=8, case_dim=2, enc_hidden=8, dec_hidden=16, attn_dim=8, loc_filters=2, loc_kernel=3)),
    (1, dict(emb_dim=6, case_dim=3, enc_hidden=5, dec_hidden=12, attn_dim=7, loc_filters=4, loc_kernel=5)),
])
def test_folded_step_equals_the_training_step_over_several_steps(seed, sizes):
    model = build_model(VOCAB, seed=seed, **sizes).eval()
    with torch.no_grad():  # non-zero biases everywhere, so every folded bias is exercised
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    folded = FoldedDecoderStep(model.step).eval()
    # "ø" and "É" are outside the vocabulary: extended ids are fed back as previous characters
    source = encode_sources(VOCAB, ["SMITH, jøhn", "dr. É", "0"])
    with torch.no_grad():
        enc_out, keys, src_mask, hidden = model.encode(torch.from_numpy(source.ids), torch.from_numpy(source.lengths))
        state = model.initial_state(hidden, source.ids.shape[1])
        context = (enc_out, keys, src_mask, torch.from_numpy(source.copy_map))
        ext = source.copy_map.shape[2]
        assert ext > len(VOCAB)
        rng = np.random.default_rng(seed)
        # previous ids: BOS, then random ids with extended ones (>= len(VOCAB)) in every step
        feeds = [np.full(3, BOS)] + [np.append(rng.integers(0, ext, size=2), len(VOCAB) + t % (ext - len(VOCAB)))
                                     for t in range(6)]
        for prev in feeds:
            prev = torch.from_numpy(prev.astype(np.int64))
            want = model.step(prev, *state, *context)
            got = folded(prev, *state, *context)
            for w, g in zip(want, got, strict=True):
                torch.testing.assert_close(g, w, atol=2e-5, rtol=1e-5)
            state = want[1:]
