"""The torch-free runtime: load a verified bundle and normalize strings with onnxruntime.

Imports numpy and onnxruntime only (``tests/integration/test_torch_free.py`` proves it), so a
CPU server installs strseq without torch and predicts.

    from strseq_tasks.serve.runtime import Normalizer
    normalizer = Normalizer("models/names")
    for p in normalizer.normalize(["SMITH, John", "mary o'neil"]):
        print(p.text, p.confidence, p.status)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnxruntime as ort

from strseq_tasks.core.batching import SourceBatch
from strseq_tasks.core.calibration import Calibration
from strseq_tasks.core.decoding import State
from strseq_tasks.core.known import KnownValues
from strseq_tasks.core.program_book import MAP_CONFIRM, ProgramBook, pick_rows
from strseq_tasks.core.shapes import Familiar, lost_chars, unseen_chars
from strseq_tasks.core.transduce import transduce
from strseq_tasks.core.vocab import SPACES_KEEP, CharVocab, lower_char, read_text, upper_char
from strseq_tasks.core.words import WordTreatment
from strseq_tasks.serve.bundle import GRAPH_FILES, KNOWN_FILE, BundleError, read_manifest
from strseq_tasks.serve.bundle_schema import read_known, read_vocab
from strseq_tasks.serve.identity import left_out

STATUS_OK = "ok"  # the model's output
STATUS_EMPTY = "empty"  # empty input: returned unchanged, not normalized
STATUS_TOO_LONG = "too_long"  # longer than the model's limit: returned unchanged, confidence 0
PROGRAM_ROUNDS = 8  # sampling rounds per call for layout programs (a map that learns keys may need more than one)
BY_MODEL, BY_PROGRAM = "model", "program"
BATCH_BYTES = 64 << 20  # copy maps per decoded batch, at most (a batch of 64 names takes ~1 MB)


@dataclass(frozen=True)
class Prediction:
    text: str
    confidence: float
    status: str
    by: str = BY_MODEL  # BY_MODEL: decoded; BY_PROGRAM: a verified layout program's output (core/programs.py)


PRECISIONS = ("fp32", "int8")
# onnxruntime's MatMul+Add -> Gemm fusion runs before its int8 fusions and would leave those
# MatMuls as fp32 Gemms that dequantize their weights on every call (slower than fp32 itself in a
# throwaway A/B on the names model): int8 sessions turn it off
INT8_DISABLED_OPTIMIZERS = ("MatMulAddFusion",)


def resolve_precision(manifest: dict, requested: str | None) -> str:
    """The graphs to serve: ``requested`` ('fp32', 'int8'), or with None / 'auto' the bundle's
    default (int8 when its int8 graphs passed the gate, else fp32; fp32 for bundles from before)."""
    info = manifest.get("precision") or {}
    default = info.get("default", "fp32")
    if requested in (None, "auto"):
        return default
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be auto, fp32 or int8, not {requested!r}")
    if any(name in left_out(manifest) for name in GRAPH_FILES[requested]):
        raise BundleError(f"this is a runtime copy that holds only the {default} graphs it serves (strseq models "
                          f"export --runtime-only); use precision {default} or auto, or the full bundle")
    if requested == "int8" and not info.get("int8"):
        refused = (info.get("int8_refused") or {}).get("reason")
        why = f": they were refused at training ({refused})" if refused else " (trained with precision fp32, or " \
              "before int8 bundles existed)"
        raise BundleError(f"this bundle has no int8 graphs{why}; use precision fp32 or auto")
    return requested


def session_options(threads: int | None = None) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    # one thread unless asked: these small per-step GEMMs gain nothing from a second thread (the
    # default names model: 1,100 rows/s on one thread, 999 on two; benchmarks/clean_throughput.py),
    # and the encoder's and decoder's pools would fight over the cores. Use the cores with
    # processes or partitions (`strseq clean --partitions`) instead.
    opts.intra_op_num_threads = threads or 1
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if "torch" in sys.modules and sys.modules["torch"] is not None:
        # spinning ORT threads starve torch ops in the same process (~50x slower; ORT #13808)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


def open_sessions(folder: Path, threads: int | None = None,
                  precision: str = "fp32") -> tuple[ort.InferenceSession, ort.InferenceSession]:
    """onnxruntime sessions for a bundle's encoder and decoder step (CPU), fp32 or int8 graphs."""
    opts = session_options(threads)
    providers = ["CPUExecutionProvider"]
    encoder_file, decoder_file = GRAPH_FILES[precision]
    disabled = list(INT8_DISABLED_OPTIMIZERS) if precision == "int8" else None
    encoder, decoder = (ort.InferenceSession(str(Path(folder) / name), opts, providers=providers,
                                             disabled_optimizers=disabled) for name in (encoder_file, decoder_file))
    return encoder, decoder


def decode_folder(folder: Path, vocab: CharVocab, max_len: int, texts: Sequence[str], precision: str = "fp32",
                  batch_size: int = 64, **decoding) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``transduce`` with a folder's graphs, before it is a bundle (training's int8 gate).
    ``decoding``: ``identity_margin``, ``known``, ``known_prior``."""
    encoder, decoder = open_sessions(folder, 1, precision)
    return transduce(texts, vocab, lambda source: OrtStepper(encoder, decoder, source), max_len,
                     batch_size=batch_size, **decoding)


class OrtStepper:
    """Runs the encoder once per batch; then one decoder step per call (shared decoding API)."""

    def __init__(self, encoder: ort.InferenceSession, decoder: ort.InferenceSession, source: SourceBatch):
        self.decoder = decoder
        enc_out, keys, src_mask, hidden = encoder.run(None, {"src_ids": source.ids, "src_lengths": source.lengths})
        self.context = (enc_out, keys, src_mask, source.copy_map)
        batch, src_len = source.ids.shape
        self.state: State = (
            hidden,
            np.zeros((batch, src_len), dtype=np.float32),
            np.zeros((batch, hidden.shape[1]), dtype=np.float32),
        )
        self._rows: np.ndarray | None = None
        self._gathered: tuple[np.ndarray, ...] = self.context

    def _context_for(self, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        if self._rows is None or not np.array_equal(self._rows, rows):
            identity = len(rows) == len(self.context[0]) and np.array_equal(rows, np.arange(len(rows)))
            self._gathered = self.context if identity else tuple(c[rows] for c in self.context)
            self._rows = rows.copy()
        return self._gathered

    def __call__(self, tokens: np.ndarray, state: State, rows: np.ndarray):
        enc_out, keys, src_mask, copy_map = self._context_for(rows)
        hidden, attn, feed = state
        log_probs, hidden, attn, feed = self.decoder.run(None, {
            "prev_ids": tokens, "hidden": hidden, "prev_attn": attn, "feed": feed,
            "enc_out": enc_out, "enc_keys": keys, "src_mask": src_mask, "copy_map": copy_map,
        })
        return log_probs, (hidden, attn, feed)


def copy_map_bytes(text: str, vocab: CharVocab) -> int:
    """Bytes of one row's copy map (``batching.encode_sources``): 3 modes x length x (vocabulary
    + the row's characters it lacks) float32s. It is what a long row costs: 14 MB at 1,024
    characters of a script the vocabulary lacks (a names model), 20 kB for a name."""
    chars = set(text)
    unseen = () if chars <= vocab.closed else {v for c in chars for v in (c, lower_char(c), upper_char(c))
                                                if v not in vocab}
    return 4 * 3 * len(text) * (len(vocab) + len(unseen))


def batch_groups(texts: Sequence[str], vocab: CharVocab, batch_size: int,
                 copies: int = 1) -> dict[int, list[str]]:
    """``texts`` grouped by the batch size each may be decoded at: ``batch_size``, or fewer rows
    (a power of two) where a batch of them would hold more than ``BATCH_BYTES`` of copy maps
    (``copies`` of each row's). One batch of 64 values of 1,024 characters of an unseen script
    otherwise took 1.2 GB."""
    groups: dict[int, list[str]] = {}
    for text in texts:
        fits = BATCH_BYTES // (copies * copy_map_bytes(text, vocab))
        size = batch_size if fits >= batch_size else 1 << max(fits.bit_length() - 1, 0)
        groups.setdefault(size, []).append(text)
    return groups


class Normalizer:
    """A loaded model bundle. Verifies every file's sha256 before creating any session.

    ``known`` replaces the bundle's known values (``known.KnownValues``; an empty list turns
    them off); by default the bundle's own list, if it has one, is used.

    ``precision`` picks the graphs: 'auto' (default) serves the bundle's int8 graphs when they
    passed training's int8 gate (``learn/int8.py``), else fp32; 'fp32' or 'int8' force one.
    Each precision has its own confidence calibration, fitted on that engine's outputs.
    """

    def __init__(self, bundle: str | Path, threads: int | None = None, known: KnownValues | None = None,
                 precision: str | None = "auto", programs: bool = True):
        self.path = Path(bundle)
        self.manifest = read_manifest(self.path)  # with every value this reads checked (bundle_schema)
        self.vocab = read_vocab(self.path, self.manifest["model_config"]["vocab_size"])
        try:
            self.precision = resolve_precision(self.manifest, precision)
        except BundleError as exc:
            raise BundleError(f"{self.path}: {exc}") from None
        int8 = (self.manifest.get("precision") or {}).get("int8") or {}
        calibration = int8.get("calibration") if self.precision == "int8" else None
        self.calibration = Calibration(**(calibration or self.manifest.get("calibration", {})))
        self.max_len = int(self.manifest["model_config"]["max_len"])
        decoding = self.manifest.get("decoding", {})
        self.default_beam = int(decoding.get("beam", 1))
        self.spaces = decoding.get("spaces", SPACES_KEEP)  # whitespace as the model learned to read it
        # keep an input unless the model's answer is this much (nats) more probable; None: off
        self.identity_margin = decoding.get("identity_margin")
        self.known = known if known is not None else self._bundle_known(decoding.get("known_values"))
        # weight of the known values' list-order prior, chosen in training (also applied to a list given here)
        self.known_prior = float((decoding.get("known_values") or {}).get("prior_weight", 0.0))
        # the shapes, characters and words' treatment of the inputs the model learned from: rows unlike
        # them get calibration's novel_shift, unseen_char_shift, disagree_shift and lost_char_shift
        self.familiar = Familiar(frozenset(decoding["shapes"]) if "shapes" in decoding else None,
                                 decoding.get("input_chars"), WordTreatment.from_manifest(decoding))
        # layout programs (core/programs.py): on by default where the bundle knows its pairs' words
        words = self.familiar.words
        # a word's answer repeats across a column's rows: asked once
        self.programs = (ProgramBook(lru_cache(maxsize=1 << 16)(words.may_program),
                                     lambda text, output: not words.disagrees(text, output),
                                     mark=words.mark) if programs and words is not None else None)
        try:
            self.encoder, self.decoder = open_sessions(self.path, threads, self.precision)
        except Exception as exc:  # onnxruntime's own error types: a graph it cannot load
            raise BundleError(f"{self.path}: onnxruntime cannot load its {self.precision} graphs: "
                              f"{str(exc).splitlines()[0]}") from None

    def _bundle_known(self, info: dict | None) -> KnownValues | None:
        if not info:
            return None
        if KNOWN_FILE not in self.manifest["files"]:
            raise BundleError(f"{self.path}: the manifest names known values but does not list {KNOWN_FILE}")
        return read_known(self.path, info)

    def predict_distinct(self, values: Sequence[str], beam: int | None = None, batch_size: int = 64,
                         on_batch: Callable[[int], None] | None = None) -> dict[str, Prediction]:
        """The prediction of each of ``values`` (distinct, as the model reads them, none empty or too
        long): by the layout programs where one covers a value, else by the model."""
        beam = beam or self.default_beam

        def decode(texts: Sequence[str]) -> dict[str, tuple[Prediction, float]]:
            return self.decode(texts, beam, batch_size, on_batch)

        if not self.uses_programs(beam):
            return {t: p for t, (p, _) in decode(values).items()}
        answer = self.program_pass(values, decode, on_batch)
        decoded = decode([v for v in values if v not in answer])
        for text, (prediction, logprob) in decoded.items():  # every model output keeps checking the programs
            self.programs.observe(text, prediction.text, logprob)
        answer.update((t, p) for t, (p, _) in decoded.items())
        return answer

    def decode(self, texts: Sequence[str], beam: int, batch_size: int,
                on_batch: Callable[[int], None] | None) -> dict[str, tuple[Prediction, float]]:
        """The model's prediction and log-probability for each of ``texts``."""
        # a hypothesis or a known value scored for a row each gather a copy of its copy map
        copies = max(beam, 1 + self.known.max_candidates if self.known else 1)
        answer = {}
        for size, group in batch_groups(texts, self.vocab, batch_size, copies).items():
            outputs, logprob, distance = transduce(
                group, self.vocab, self.stepper, self.max_len, beam=beam, batch_size=size, on_batch=on_batch,
                identity_margin=self.identity_margin, known=self.known or None, known_prior=self.known_prior,
                spaces=self.spaces,
            )
            confidence = self.calibration.confidence(logprob, distance, **self.familiar.flags(group, outputs))
            answer.update((t, (Prediction(o, float(c), STATUS_OK), float(lp)))
                          for t, o, c, lp in zip(group, outputs, confidence, logprob))
        return answer

    def uses_programs(self, beam: int | None = None) -> bool:
        """Layout programs serve greedy decoding without known values (a known value is a per-value
        decision no layout describes)."""
        return self.programs is not None and (beam or self.default_beam) == 1 and not self.known

    def program_pass(self, values: Sequence[str], decode: Callable[[Sequence[str]], dict],
                     on_batch: Callable[[int], None] | None = None,
                     keys: dict[str, tuple[str | None, str]] | None = None) -> dict[str, Prediction]:
        """Predictions for the ``values`` the layout programs answer, and for the rows the model
        decoded (``decode``) to read and verify programs for the shapes with many values."""
        book = self.programs
        answer: dict[str, Prediction] = {}
        keys = keys or {value: book.keys(value) for value in values}  # read once; the shapes they make may change
        for _ in range(PROGRAM_ROUNDS):  # a round decodes samples; a map still learning keys may want another
            by_shape: dict[str, list[str]] = {}  # again each round: a layout found without a program is split
            for value in values:
                if value not in answer:
                    by_shape.setdefault(book.shape(value, keys[value]), []).append(value)
            answer.update(self._by_programs(by_shape, answer, keys, on_batch))
            sample = [v for shape, group in by_shape.items() for v in self._to_learn_from(shape, group, answer)]
            if not sample:
                break
            decoded = decode(sample)
            for text in sample:  # in the sample's order, however ``decode`` ran it: what a program is read off
                prediction, logprob = decoded[text]
                book.observe(text, prediction.text, logprob)
                answer[text] = prediction
        return answer

    def _to_learn_from(self, shape: str, group: list[str], answered: dict) -> list[str]:
        """The rows of ``shape`` worth the model's time to learn its program: the rows a program is
        read off and verified on, where the shape has enough rows left to repay them; for a program
        already accepted, ``MAP_CONFIRM`` rows for each map key (or year) it lacks that more rows need
        (a row lacking several teaches them all)."""
        book = self.programs
        pending = [v for v in group if v not in answered]
        need = book.needed(shape)
        if book.learning(shape) or (need and len(pending) < need + book.min_saved):
            return pick_rows(pending, need) if need and len(pending) >= need + book.min_saved else []
        if not (need or book.accepted(shape)):
            return []
        by_key: dict[str, list[str]] = {}
        answerable = []  # rows whose map keys are confirmed: what verification counts
        for value in pending:
            missing = book.missing(value, shape)
            if missing == ():
                answerable.append(value)
            for key in missing or ():
                by_key.setdefault(key, []).append(value)
        teach = [v for rows in by_key.values() if len(rows) > MAP_CONFIRM for v in pick_rows(rows, MAP_CONFIRM)]
        return list(dict.fromkeys([*pick_rows(answerable, need), *teach]))

    def _by_programs(self, by_shape: dict[str, list[str]], answered: dict, keys: dict[str, tuple[str | None, str]],
                     on_batch: Callable[[int], None] | None) -> dict[str, Prediction]:
        texts, outputs, logprob, novel = [], [], [], []
        for shape, group in by_shape.items():
            if not self.programs.accepted(shape):
                continue
            shape_logprob = self.programs.logprob(group[0])
            # the model's shapes (core/shapes.py) are coarser than a program's exact shape (programs.shape_of),
            # finer than its any-length digits (programs.both_shapes): rows of one exact shape are all novel or none is
            novel_of: dict[str, bool] = {}
            for text in group:
                output = None if text in answered else self.programs.apply(text, shape)
                if output is not None:
                    exact = keys[text][1]
                    if exact not in novel_of:
                        novel_of[exact] = (self.familiar.flags([text])["novel"] or [False])[0]
                    texts.append(text)
                    outputs.append(output)
                    logprob.append(shape_logprob)
                    novel.append(novel_of[exact])
        if not texts:
            return {}
        # no row here treats a word unlike the pairs (``ProgramBook.agrees`` refused those): no disagree term
        confidence = self.calibration.confidence(np.array(logprob), None, novel=novel,
                                                 unseen=unseen_chars(texts, self.familiar.chars),
                                                 lost=lost_chars(texts, outputs, self.familiar.chars))
        if on_batch is not None:
            on_batch(len(texts))
        return {t: Prediction(o, float(c), STATUS_OK, BY_PROGRAM) for t, o, c in zip(texts, outputs, confidence)}

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.path.name))

    def stepper(self, source: SourceBatch) -> OrtStepper:
        return OrtStepper(self.encoder, self.decoder, source)

    def normalize(
        self,
        texts: Sequence[str],
        beam: int | None = None,
        batch_size: int = 64,
        on_batch: Callable[[int], None] | None = None,
    ) -> list[Prediction]:
        """Predictions in input order. Empty inputs (also whitespace-only ones, for a model that
        reads whitespace collapsed) and over-long ones come back unchanged (byte for byte, not
        even NFC-normalized), flagged."""
        given = list(texts)
        read = {t: read_text(t, self.spaces) for t in dict.fromkeys(given)}  # what the model reads of each value
        texts = [read[t] for t in given]
        ok = [i for i, t in enumerate(texts) if t and len(t) <= self.max_len]
        unique = list(dict.fromkeys(texts[i] for i in ok))  # a repeated value is predicted once
        answer = self.predict_distinct(unique, beam, batch_size, on_batch)
        result = [  # blank (what the model would read is empty) or too long: returned as given
            Prediction(t, 1.0, STATUS_EMPTY) if not read else Prediction(t, 0.0, STATUS_TOO_LONG)
            for t, read in zip(given, texts)
        ]
        for i in ok:
            result[i] = answer[texts[i]]
        if on_batch is not None and len(unique) < len(texts):
            on_batch(len(texts) - len(unique))  # repeats, empty and over-long rows: not decoded themselves
        return result
