"""ONNX export of the encoder and of one decoder step, and a parity check against PyTorch.

We use the TorchScript-based exporter (``dynamo=False``): measured with torch 2.13 it exports
``nn.GRU`` over packed sequences with dynamic batch and length axes exactly (max abs diff ~3e-7),
while the dynamo exporter failed on packed sequences, froze the time axis of a bare ``nn.GRU``
in several tests and, with onnxscript < 0.7.1, wrote GRU gates with the wrong formula.
``check_parity`` proves every export: same predictions, log-probabilities within 1e-4.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .batching import encode_sources, max_output_lengths
from .bundle import DECODER_FILE, ENCODER_FILE
from .decoding import greedy_search
from .folding import FoldedDecoderStep
from .model import Seq2Seq, TorchStepper
from .vocab import BOS, EOS, CharVocab

log = logging.getLogger("strseq")

OPSET = 17
# torch.onnx.export keeps its state in module globals: two exports at once (the demo and
# `strseq retrain-all` train several fields on threads) fail with "GLOBALS.in_onnx_export must
# be False". One export at a time; each takes about a second.
_EXPORT_LOCK = threading.Lock()
ENCODER_INPUTS = ("src_ids", "src_lengths")
ENCODER_OUTPUTS = ("enc_out", "enc_keys", "src_mask", "hidden")
DECODER_INPUTS = ("prev_ids", "hidden", "prev_attn", "feed", "enc_out", "enc_keys", "src_mask", "copy_map")
DECODER_OUTPUTS = ("log_probs", "next_hidden", "attn", "next_feed")


class _EncoderGraph(nn.Module):
    # Export it in eval mode: the exporter restores the wrapper's training flag on every
    # submodule afterwards, and a fresh wrapper would switch the model's dropout back on.
    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.model = model

    def forward(self, src_ids, lengths):
        return self.model.encode(src_ids, lengths)


@contextlib.contextmanager
def _native_stderr_to_log():
    """Route what C++ code prints on file descriptor 2 during export (shape-inference warnings
    about PackPadded that do not affect the graph; the parity check proves it) to the debug log."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                log.debug("onnx export: %s", line)


def export_onnx(model: Seq2Seq, vocab: CharVocab, folder: Path) -> None:
    """Write ``encoder.onnx`` and ``decoder_step.onnx`` (``folding.FoldedDecoderStep``) into
    ``folder`` (dynamic batch/length axes)."""
    model.eval()
    sample = encode_sources(vocab, ["example text", "abc"])
    src, lengths = torch.from_numpy(sample.ids), torch.from_numpy(sample.lengths)
    with torch.no_grad():
        enc_out, keys, src_mask, hidden = model.encode(src, lengths)
    hidden, attn, feed = model.initial_state(hidden, src.shape[1])
    prev = torch.full((2,), BOS, dtype=torch.long)
    batch_time = {0: "batch", 1: "src_len"}
    with _EXPORT_LOCK, warnings.catch_warnings(), _native_stderr_to_log():
        warnings.simplefilter("ignore")  # exporter chatter about GRU batch sizes and tracing
        torch.onnx.export(
            _EncoderGraph(model).eval(), (src, lengths), str(folder / ENCODER_FILE),
            input_names=list(ENCODER_INPUTS), output_names=list(ENCODER_OUTPUTS),
            dynamic_axes={"src_ids": batch_time, "src_lengths": {0: "batch"}, "enc_out": batch_time,
                          "enc_keys": batch_time, "src_mask": batch_time, "hidden": {0: "batch"}},
            opset_version=OPSET, dynamo=False,
        )
        # the step with its weights folded for inference (folding.py): same function, fewer operations
        step_inputs = (prev, hidden, attn, feed, enc_out, keys, src_mask, torch.from_numpy(sample.copy_map))
        torch.onnx.export(
            FoldedDecoderStep(model.step).eval(), step_inputs,
            str(folder / DECODER_FILE),
            input_names=list(DECODER_INPUTS), output_names=list(DECODER_OUTPUTS),
            dynamic_axes={
                "prev_ids": {0: "batch"}, "hidden": {0: "batch"}, "prev_attn": batch_time, "feed": {0: "batch"},
                "enc_out": batch_time, "enc_keys": batch_time, "src_mask": batch_time,
                "copy_map": {0: "batch", 1: "copy_len", 2: "ext_vocab"},
                "log_probs": {0: "batch", 1: "ext_vocab"}, "next_hidden": {0: "batch"},
                "attn": batch_time, "next_feed": {0: "batch"},
            },
            opset_version=OPSET, dynamo=False,
        )


class ParityError(RuntimeError):
    """onnxruntime does not reproduce PyTorch: the export is wrong and must not be used."""


def check_parity(model: Seq2Seq, vocab: CharVocab, stepper_factory, texts: Sequence[str], tol: float = 1e-4,
                 min_prob: float = 1e-3) -> dict:
    """Compare PyTorch with another engine (``stepper_factory(source_batch)``, e.g. onnxruntime).

    Held to ``tol``: both engines decode ``texts`` greedily through the shared decoder to
    identical outputs with sequence log-probabilities (what confidence is built from) within
    ``tol``; and along the PyTorch path every next-token probability agrees within ``tol``.
    Reported only: the largest log-probability difference among tokens with probability >=
    ``min_prob``, and among all tokens. Recurrent state drifts by ~1e-6 per step between the
    engines, and small attention weights and tail probabilities carry that drift in relative
    terms: log-probabilities of unlikely tokens differ by up to ~1e-3 after many steps while
    their probabilities agree to ~1e-6.
    Raises ``ParityError`` on a mismatch; returns the measured differences.
    """
    model.eval()
    source = encode_sources(vocab, texts)
    limits = max_output_lengths(source.lengths, model.cfg.max_len)
    torch_step = TorchStepper(model, source.ids, source.lengths, source.copy_map)
    other_step = stepper_factory(source)
    ref = greedy_search(torch_step, torch_step.state, limits)
    got = greedy_search(other_step, other_step.state, limits)
    mismatched = [t for t, a, b in zip(texts, ref.ids, got.ids, strict=True) if not np.array_equal(a, b)]
    seq_diff = float(np.abs(ref.logprob - got.logprob).max())
    rows = np.arange(len(texts))
    state_t, state_o = torch_step.state, other_step.state
    tokens = np.full(len(texts), BOS, dtype=np.int64)
    prob_diff = token_diff = tail_diff = 0.0
    for t in range(int(max(len(r) for r in ref.ids)) + 1):
        lp_t, state_t = torch_step(tokens, state_t, rows)
        lp_o, state_o = other_step(tokens, state_o, rows)
        prob_diff = max(prob_diff, float(np.abs(np.exp(lp_t) - np.exp(lp_o)).max()))
        diff = np.abs(lp_t - lp_o)
        likely = np.maximum(lp_t, lp_o) >= np.log(min_prob)
        token_diff = max(token_diff, float(diff[likely].max(initial=0.0)))
        tail_diff = max(tail_diff, float(diff.max()))
        tokens = np.array([r[t] if t < len(r) else EOS for r in ref.ids], dtype=np.int64)
    report = {"rows": len(texts), "mismatched_outputs": len(mismatched), "max_seq_logprob_diff": seq_diff,
              "max_token_prob_diff": prob_diff, "max_likely_token_logprob_diff": token_diff,
              "max_tail_logprob_diff": tail_diff, "min_prob": min_prob, "tolerance": tol}
    if mismatched or seq_diff > tol or prob_diff > tol:
        raise ParityError(f"ONNX export differs from PyTorch: {report} (first mismatched input: "
                             f"{mismatched[:1]})")
    return report
