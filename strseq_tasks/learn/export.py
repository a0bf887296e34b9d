"""ONNX export of the encoder and of one decoder step, and a parity check against PyTorch.

We use the TorchScript-based exporter (``dynamo=False``): measured with torch 2.13 it exports
``nn.GRU`` over packed sequences with dynamic batch and length axes exactly (max abs diff ~3e-7),
while the dynamo exporter failed on packed sequences, froze the time axis of a bare ``nn.GRU``
in several tests and, with onnxscript < 0.7.1, wrote GRU gates with the wrong formula.
``check_parity`` proves every export: the same outputs, and probabilities as close to the
exact (float64) result as PyTorch's own fp32 rounding allows.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
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

from strseq_tasks.core.batching import encode_sources, max_output_lengths
from strseq_tasks.core.decoding import greedy_search
from strseq_tasks.core.vocab import BOS, EOS, CharVocab
from strseq_tasks.errors import StrseqError
from strseq_tasks.learn.folding import FoldedDecoderStep
from strseq_tasks.learn.model import Seq2Seq, TorchStepper
from strseq_tasks.serve.bundle import (
    DECODER_FILE,
    ENCODER_FILE,
    FORMAT,
    INT8_DECODER_FILE,
    INT8_ENCODER_FILE,
    MANIFEST,
    VOCAB_FILE,
)

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


GRAPH_ROLES = {ENCODER_FILE: ("encoder", "fp32"), DECODER_FILE: ("decoder_step", "fp32"),
               INT8_ENCODER_FILE: ("encoder", "int8"), INT8_DECODER_FILE: ("decoder_step", "int8")}
GRAPH_DOCS = {
    "encoder": "strseq's character encoder: src_ids (batch x src_len character ids, vocab.json) and src_lengths "
               "in; enc_out, enc_keys, src_mask and the decoder's first hidden state out.",
    "decoder_step": "One step of strseq's attention-and-copy decoder: the previous character id, the state and "
                    "the encoder's outputs in; log_probs over the vocabulary extended by the source's characters "
                    "(copy_map) and the next state out. Greedy decoding, the identity margin and the confidence "
                    "calibration are in manifest.json and strseq_tasks.core.decoding.",
}


def describe_graphs(folder: Path, manifest: dict) -> list[str]:
    """Write what each ONNX graph in ``folder`` is into the graph itself, so that ``onnx.load``
    tells it outside strseq: ``doc_string``, ``model_version`` (the bundle format's number) and
    ``metadata_props`` (``strseq.*``: the graph's role and precision, strseq's version, the pairs'
    fingerprint, the model's sizes, the files beside it). Only what the training inputs decide
    goes in, nothing of when or where it ran: the graphs' bytes are part of the model's identity
    (``serve/identity.py``), and two trainings of the same pairs must stay one model. The names of
    the graphs described."""
    import onnx  # training extra, like torch

    config = manifest.get("model_config") or {}
    data = manifest.get("data") or {}
    described = []
    for name, (role, precision) in GRAPH_ROLES.items():
        path = folder / name
        if not path.is_file():
            continue
        graph = onnx.load(str(path))
        graph.doc_string = GRAPH_DOCS[role]
        graph.model_version = int(FORMAT.rsplit("/", 1)[1])
        props = {"strseq.graph": role, "strseq.precision": precision,
                 "strseq.version": str(manifest.get("strseq_version", "")), "strseq.bundle_format": FORMAT,
                 "strseq.pairs_fingerprint": str(data.get("fingerprint", "")),
                 "strseq.model_config": json.dumps(config, sort_keys=True),
                 "strseq.vocabulary": VOCAB_FILE, "strseq.manifest": MANIFEST}
        del graph.metadata_props[:]
        onnx.helper.set_model_props(graph, props)
        onnx.save(graph, str(path))
        described.append(name)
    return described


class ParityError(StrseqError, RuntimeError):
    """onnxruntime does not reproduce PyTorch: the export is wrong and must not be used."""

    exit_code = 1  # the job ran and failed


# ONNX's token probabilities may be this many times further from the float64 result than PyTorch
# fp32's are. Right exports measured 0.2 to 3.5 (tiny and default sizes; 0.5 on 500
# grapheme-to-phoneme-like pairs with outputs of up to 117 characters: benchmarks/parity_noise.py).
# Wrong ones, on the tiny test model: the output bias shifted as in test_parity 42,000; log-add-exp
# lowered as max 12,000; any one tensor moved by 1% of its mean size 24 or more (median 230). On
# the g2p model 25 of 32 such tensors were refused; the others moved no probability by more
# than 16 times rounding.
PARITY_FACTOR = 16.0
UNIT_ROUNDOFF = 2.0**-24  # float32
METHOD = ("greedy outputs of both engines; along PyTorch's path, every next-token probability of ONNX against "
          "the same weights in float64, held to PARITY_FACTOR times PyTorch fp32's own distance from float64 "
          "(at least unit roundoff x sqrt(steps)); a differing output is a near tie when PyTorch's margin between "
          "the two tokens at the first divergent step is within twice that bound")


class _Float64Stepper(TorchStepper):
    """``TorchStepper`` on a float64 copy of the model: what the fp32 engines round away from."""

    def __init__(self, model: Seq2Seq, source):
        super().__init__(copy.deepcopy(model).double().eval(), source.ids, source.lengths, source.copy_map)
        self.context = tuple(c.double() if c.is_floating_point() else c for c in self.context)


def _along(step, state, paths: list[np.ndarray]) -> list[np.ndarray]:
    """Per row, the next-token probabilities (steps x ext_vocab, float64) at each step of
    ``paths[row]`` and at its EOS, every engine fed the same tokens (rows leave at their EOS)."""
    rows = np.arange(len(paths))
    out: list[list[np.ndarray]] = [[] for _ in paths]
    tokens = np.full(len(paths), BOS, dtype=np.int64)
    t = 0
    while len(rows):
        log_probs, state = step(tokens, state, rows)
        for k, row in enumerate(rows):
            out[row].append(np.exp(log_probs[k].astype(np.float64)))
        alive = np.array([t < len(paths[r]) for r in rows])
        tokens = np.array([paths[r][t] for r in rows[alive]], dtype=np.int64)
        rows, state = rows[alive], tuple(s[alive] for s in state)
        t += 1
    return [np.stack(o) for o in out]


def _first_divergence(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int]:
    """The first step where two outputs differ, and the token each took there (EOS past its end)."""
    t = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    return t, int(a[t]) if t < len(a) else EOS, int(b[t]) if t < len(b) else EOS


def check_parity(model: Seq2Seq, vocab: CharVocab, stepper_factory, texts: Sequence[str],
                 factor: float = PARITY_FACTOR) -> dict:
    """Does another engine (``stepper_factory(source_batch)``, e.g. onnxruntime) compute what the
    PyTorch model computes, up to float32 rounding? Raises ``ParityError`` if not; returns what it
    measured (the manifest's ``onnx_parity``).

    A fixed tolerance cannot tell an export bug from rounding: over 100 decoding steps of a
    recurrent model, rounding alone moves a probability by 1e-4 (a finished training of long
    grapheme-to-phoneme outputs was refused for it). So the noise is measured on these rows: the
    model's next-token probabilities in fp32 against the same weights in float64, at every step
    of PyTorch's greedy outputs (and their EOS; never past it, where no output is decoded). The
    other engine, fed the same tokens, must stay within ``factor`` times that distance of float64
    (at least unit roundoff x sqrt(steps), should PyTorch happen to round exactly). Its greedy
    outputs must be PyTorch's, except near ties: at the first step where they part, PyTorch's own
    margin between the two tokens is within twice that bound (counted, reported).
    """
    if not texts:
        raise ValueError("parity needs at least one text to compare on")
    model.eval()
    source = encode_sources(vocab, texts)
    limits = max_output_lengths(source.lengths, model.cfg.max_len)
    torch_step, other_step = TorchStepper(model, source.ids, source.lengths, source.copy_map), stepper_factory(source)
    exact_step = _Float64Stepper(model, source)
    ref = greedy_search(torch_step, torch_step.state, limits)
    got = greedy_search(other_step, other_step.state, limits)
    fp32 = _along(torch_step, torch_step.state, ref.ids)
    exact = _along(exact_step, exact_step.state, ref.ids)
    other = _along(other_step, other_step.state, ref.ids)
    noise = max(float(np.abs(a - e).max()) for a, e in zip(fp32, exact))
    error = max(float(np.abs(o - e).max()) for o, e in zip(other, exact))
    steps = max(len(p) for p in fp32)
    bound = factor * max(noise, UNIT_ROUNDOFF * math.sqrt(steps))
    near_ties, mismatched = 0, []
    for row, (a, b) in enumerate(zip(ref.ids, got.ids, strict=True)):
        if np.array_equal(a, b):
            continue
        t, mine, theirs = _first_divergence(a, b)
        if fp32[row][t, mine] - fp32[row][t, theirs] <= 2 * bound:
            near_ties += 1
        else:
            mismatched.append(texts[row])
    same = [r for r, (a, b) in enumerate(zip(ref.ids, got.ids)) if np.array_equal(a, b)]
    report = {
        "rows": len(texts), "steps": sum(len(p) for p in fp32), "max_steps": steps,
        "mismatched_outputs": len(mismatched), "near_ties": near_ties,
        "fp32_noise": noise, "onnx_error": error, "bound": bound, "factor": factor,
        "error_to_noise": error / max(noise, UNIT_ROUNDOFF * math.sqrt(steps)),
        "max_token_prob_diff": max(float(np.abs(o - a).max()) for o, a in zip(other, fp32)),
        "max_seq_logprob_diff": float(np.abs(ref.logprob[same] - got.logprob[same]).max(initial=0.0)),
        "method": METHOD,
    }
    if mismatched or error > bound:
        why = (f"{len(mismatched)} of {len(texts)} outputs differ, not by a near tie (first: {mismatched[0]!r}); "
               if mismatched else "")
        raise ParityError(f"ONNX export differs from PyTorch beyond float32 rounding: {why}its token probabilities "
                          f"are up to {error:.2e} from float64's, PyTorch fp32's up to {noise:.2e} "
                          f"(allowed: {bound:.2e}, {factor:g} times that)")
    return report
