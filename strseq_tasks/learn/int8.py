"""int8 graphs for a bundle, and the gate that decides whether they may serve it.

onnxruntime's static quantization stores the weights of every MatMul as int8 with one scale per
output channel, and their inputs as uint8 with ranges measured on the training pairs
(``quantize_graphs``); their outputs stay fp32. The encoder's ``GRU`` operator is not covered by
it and stays fp32; the decoder step's products are MatMuls (``folding.py``), so they all become
int8. The decoder step is most of the work: the int8 graphs predicted 1.25x as many rows per
second as fp32 at batch 32 on a CPU with fast int8 instructions, 1.08x on an AVX2-only one
(``benchmarks/inference.py``).

Quantization changes a few predictions, so it is never taken on trust: ``judge_int8`` compares
the int8 outputs with the fp32 ones on rows drawn from the training pairs, and refuses the int8
graphs when more than ``max_changed`` of the outputs differ or exact match falls by more than
``max_exact_drop``. A refused bundle serves fp32, and its manifest says why.

Torch-free. Quantizing needs the ``onnx`` package (the ``train`` extra); serving the int8 graphs
needs onnxruntime only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from strseq_tasks.errors import StrseqError
from strseq_tasks.params import INT8_MAX_CHANGED
from strseq_tasks.serve.bundle import GRAPH_FILES, VOCAB_FILE

log = logging.getLogger("strseq")

DEFAULT_MAX_CHANGED = INT8_MAX_CHANGED.default  # refuse int8 when more than 0.5% of the gate's outputs differ from fp32
DEFAULT_MAX_EXACT_DROP = 0.002  # ... or its exact match is more than 0.2 points below fp32's
METHOD = ("onnxruntime quantize_static (QDQ): MatMul weights int8 per output channel, their inputs uint8 with "
          "ranges calibrated on the training pairs, outputs fp32")
# one quantization at a time (fields trained on threads): onnxruntime's quantizer is not
# documented as thread-safe
_QUANTIZE_LOCK = threading.Lock()


def _quantizer_advice(record: logging.LogRecord) -> bool:
    """Drop what onnxruntime's quantizer logs below ERROR on the root logger (advice to pre-process
    the graph, which calibration does not need); a filter on the root logger sees only records
    logged on it, so every other logger's messages pass."""
    return record.levelno >= logging.ERROR or "onnxruntime" not in record.pathname
CALIBRATION_STEPS = 200  # decoder-step batches the activation ranges are measured on


class QuantizationUnavailable(StrseqError, RuntimeError):
    """The packages that write int8 graphs are not installed."""

    exit_code = 1  # the job ran and failed


def quantize_graphs(folder: Path, calibration_texts: Sequence[str], max_len: int, **decoding) -> list[str]:
    """Write int8 copies of ``folder``'s fp32 encoder and decoder step beside them; their names.

    Static quantization: the activations' int8 ranges are fixed from the fp32 graphs' own values
    while they decode ``calibration_texts`` (``decoding``: as ``transduce`` takes it). Fixed
    ranges keep a row's output independent of the other rows in its batch
    (``tests/integration/test_int8.py``); onnxruntime's dynamic quantization takes each range
    from the whole batch, so a row's output and confidence would move with its neighbours.
    """
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
    except ImportError as exc:  # onnxruntime.quantization imports onnx
        raise QuantizationUnavailable(f"writing int8 graphs needs the onnx package (pip install "
                                      f"'strseq[train]'), or train with precision fp32: {exc}") from None
    from strseq_tasks.core.transduce import transduce
    from strseq_tasks.core.vocab import CharVocab
    from strseq_tasks.serve.runtime import OrtStepper, open_sessions

    folder = Path(folder)
    if not calibration_texts:
        raise ValueError("int8 quantization needs texts to calibrate on")
    vocab = CharVocab.from_json((folder / VOCAB_FILE).read_text(encoding="utf-8"))
    feeds: dict[str, list[dict]] = {"encoder": [], "decoder": []}

    class Recorder:
        def __init__(self, session, store: list):
            self.session, self.store = session, store

        def run(self, outputs, inputs):
            self.store.append({k: v.copy() for k, v in inputs.items()})
            return self.session.run(outputs, inputs)

    encoder, decoder = open_sessions(folder, 1, "fp32")
    encoder, decoder = Recorder(encoder, feeds["encoder"]), Recorder(decoder, feeds["decoder"])
    transduce([t for t in calibration_texts if t and len(t) <= max_len], vocab,
              lambda source: OrtStepper(encoder, decoder, source), max_len, batch_size=64, **decoding)
    step = max(1, len(feeds["decoder"]) // CALIBRATION_STEPS)  # every step of a batch looks alike: a sample will do

    class Reader(CalibrationDataReader):
        def __init__(self, items: list[dict]):
            self.items = iter(items)

        def get_next(self):
            return next(self.items, None)

    root = logging.getLogger()  # the quantizer advises "pre-processing" on the root logger itself
    with _QUANTIZE_LOCK:
        root.addFilter(_quantizer_advice)
        try:
            for (source, target), items in zip(zip(GRAPH_FILES["fp32"], GRAPH_FILES["int8"]),
                                               (feeds["encoder"], feeds["decoder"][::step])):
                # the inputs of MatMuls with constant weights only, outputs left fp32: onnxruntime
                # runs each as one MatMulIntegerToFloat (with runtime.INT8_DISABLED_OPTIMIZERS)
                quantize_static(str(folder / source), str(folder / target), Reader(items),
                                quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"], per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=CalibrationMethod.MinMax,
                                extra_options={"MatMulConstBOnly": True,
                                               "OpTypesToExcludeOutputQuantization": ["MatMul"]})
        finally:
            root.removeFilter(_quantizer_advice)
    return list(GRAPH_FILES["int8"])


@dataclass(frozen=True)
class Int8Verdict:
    """int8 against fp32 on the same rows, decoded the same way."""

    rows: int
    changed: int  # outputs that differ between the two
    exact_fp32: float
    exact_int8: float
    max_changed: float
    max_exact_drop: float

    @property
    def changed_share(self) -> float:
        return self.changed / self.rows if self.rows else 0.0

    @property
    def reason(self) -> str | None:
        """Why the int8 graphs are refused; None when they pass."""
        if not self.rows:
            return "no rows to compare int8 with fp32 on"
        if self.changed_share > self.max_changed:
            return (f"int8 changed {self.changed} of {self.rows} outputs ({self.changed_share:.2%}), more than the "
                    f"{self.max_changed:.2%} allowed")
        drop = self.exact_fp32 - self.exact_int8
        if drop > self.max_exact_drop:
            return (f"int8 exact match {self.exact_int8:.2%} is {100 * drop:.2f} points below fp32's "
                    f"{self.exact_fp32:.2%} (at most {100 * self.max_exact_drop:.2f} allowed)")
        return None

    @property
    def accepted(self) -> bool:
        return self.reason is None

    def to_dict(self) -> dict:
        return {**asdict(self), "changed_share": round(self.changed_share, 6), "accepted": self.accepted,
                "reason": self.reason}


def judge_int8(targets: Sequence[str], fp32_outputs: Sequence[str], int8_outputs: Sequence[str],
               max_changed: float = DEFAULT_MAX_CHANGED, max_exact_drop: float = DEFAULT_MAX_EXACT_DROP) -> Int8Verdict:
    """Compare the two engines' outputs for the same inputs (``targets``: the wanted outputs)."""
    rows = len(targets)
    if not (len(fp32_outputs) == len(int8_outputs) == rows):
        raise ValueError("targets and both engines' outputs must be the same length")
    changed = sum(a != b for a, b in zip(fp32_outputs, int8_outputs))
    exact_fp32 = sum(o == t for o, t in zip(fp32_outputs, targets)) / rows if rows else 0.0
    exact_int8 = sum(o == t for o, t in zip(int8_outputs, targets)) / rows if rows else 0.0
    return Int8Verdict(rows, changed, round(exact_fp32, 6), round(exact_int8, 6), max_changed, max_exact_drop)
