"""Pairs in, verified model bundle out: the whole ``strseq train`` job as one function.

Vocabulary -> model -> ``training.fit`` -> validation metrics -> ONNX export -> parity check
against onnxruntime -> bundle written atomically. The CLI and the Prefect tasks call this.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors.torch import save_model

from strseq_tasks import __version__
from strseq_tasks.core.augment import augment
from strseq_tasks.core.calibration import fit_calibration
from strseq_tasks.core.known import KnownValues
from strseq_tasks.core.metrics import jsonable, reliability_table, summarize
from strseq_tasks.core.vocab import SPECIALS, CharVocab
from strseq_tasks.errors import StrseqError
from strseq_tasks.learn.decoding_choices import predict_torch
from strseq_tasks.learn.export import ParityError, check_parity, describe_graphs, export_onnx
from strseq_tasks.learn.int8 import METHOD, judge_int8, quantize_graphs
from strseq_tasks.learn.lm import extend_vocab, initialize_from_lm
from strseq_tasks.learn.lm_bundle import load_lm
from strseq_tasks.learn.model import ModelConfig, Seq2Seq, build_model
from strseq_tasks.learn.training import EpochReport, FitResult, TrainConfig, fit
from strseq_tasks.learn.transfer import (
    default_pretrained_path,
    initialize_from_transducer,
    is_transducer,
    load_transducer,
    transfer_vocab,
)
from strseq_tasks.serve.bundle import (
    KEPT_FILES,
    KNOWN_FILE,
    PARITY_FILE,
    PARITY_ROWS,
    VOCAB_FILE,
    WEIGHTS_FILE,
    fingerprint_pairs,
    write_bundle,
)
from strseq_tasks.serve.bundle_copy import write_card
from strseq_tasks.serve.bundle_schema import MAX_KNOWN_DISTANCE, UNEXPORTED_FORMAT, check_model_config
from strseq_tasks.serve.runtime import OrtStepper, decode_folder, open_sessions

log = logging.getLogger("strseq")


DEFAULT_LM = "default"  # train_bundle(pretrained=...) / train --pretrained default: the model shipped with strseq
# Where training starts unless told otherwise: the pretrained encoder-decoder (transfer.py). The
# evidence decides (benchmarks/column_accuracy.py, docs/benchmarks.md "Pretrained encoder-decoder"):
# on the column benchmark's 7 families it beat training from scratch at 50 and at 200 pairs.
DEFAULT_PRETRAINED: str | None = DEFAULT_LM


class TrainingDataError(StrseqError, ValueError):
    """Pairs that cannot train a model (too few, or nothing to learn from)."""


INT8_GATE_ROWS = 2000  # at least this many rows (when the pairs allow) compare int8 with fp32


@dataclass(frozen=True)
class TrainOutcome:
    path: Path
    manifest: dict


def _median_rate(history: Sequence[EpochReport]) -> float:
    """Median training samples/s over the epochs (forward, backward and update only)."""
    rates = sorted(r.samples_per_s for r in history)
    return round(rates[len(rates) // 2], 1) if rates else 0.0


def _history_row(r: EpochReport) -> dict:
    return {"epoch": r.epoch, "train_loss": round(r.train_loss, 5), "val_loss": round(r.val_loss, 5),
            "val_exact": round(r.val_exact, 5), "lr": r.lr, "seconds": round(r.seconds, 2),
            "samples": r.samples, "samples_per_s": round(r.samples_per_s, 1)}


def int8_gate_rows(result: FitResult, pairs: Sequence[tuple[str, str]], cfg: TrainConfig,
                   max_len: int) -> list[tuple[str, str]]:
    """The rows int8 is judged on: the validation rows (first), then the pairs with noisy copies
    (label-consistent augmentation) up to about ``INT8_GATE_ROWS``."""
    copies = min(20, max(1, math.ceil(INT8_GATE_ROWS / max(len(pairs), 1))))
    extra = augment(pairs, replace(cfg.augment, copies=copies, identity=True), seed=cfg.seed + 20_000,
                    kinds=result.kinds, protected=dict(pairs), max_len=max_len)
    seen = set(result.val_set)
    return [*result.val_set, *(p for p in extra if p not in seen)]


def add_int8(folder: Path, vocab: CharVocab, result: FitResult, pairs: Sequence[tuple[str, str]], cfg: TrainConfig,
             known: KnownValues | None) -> dict:
    """Quantize ``folder``'s graphs and keep them only if ``judge_int8`` accepts them; the
    manifest's ``precision`` entry (with int8's own calibration, fitted on its validation outputs)."""
    started = time.monotonic()
    max_len = result.model.cfg.max_len
    decoding = {"identity_margin": result.identity_margin, "known": known, "known_prior": result.known_prior}
    # calibrated on the pairs as they are (inputs and targets), judged on their noisy copies and validation
    files = quantize_graphs(folder, list(dict.fromkeys(t for pair in pairs for t in pair)), max_len, **decoding)
    rows = int8_gate_rows(result, pairs, cfg, max_len)
    inputs, targets = [a for a, _ in rows], [b for _, b in rows]
    fp32 = decode_folder(folder, vocab, max_len, inputs, "fp32", **decoding)
    int8 = decode_folder(folder, vocab, max_len, inputs, "int8", **decoding)
    verdict = judge_int8(targets, fp32[0], int8[0], cfg.int8_max_changed, cfg.int8_max_exact_drop)
    seconds = round(time.monotonic() - started, 1)
    if not verdict.accepted:
        for name in files:
            (folder / name).unlink()
        log.warning("int8 graphs refused: %s; the bundle serves fp32", verdict.reason)
        return {"default": "fp32", "int8": None, "int8_refused": verdict.to_dict()}
    n_val = len(result.val_set)
    outputs, logprob, distance = int8[0][:n_val], int8[1][:n_val], int8[2][:n_val]
    calibration = (fit_calibration(logprob, [o == t for o, t in zip(outputs, targets[:n_val])], distance=distance,
                                   **result.familiar.flags(inputs[:n_val], outputs), **cfg.calibration_settings())
                   if n_val else result.calibration)
    log.info("int8 graphs accepted: %d of %d outputs differ from fp32 (%.2f%%), exact match %.2f%% vs %.2f%% "
             "(%.1f s); the bundle serves int8", verdict.changed, verdict.rows, 100 * verdict.changed_share,
             100 * verdict.exact_int8, 100 * verdict.exact_fp32, seconds)
    by_input = dict(zip(inputs, zip(int8[0], int8[1], int8[2])))
    val_inputs = [a for a, _ in result.val_pairs]
    val_out = [by_input[a] for a in val_inputs]
    metrics = summarize(val_inputs, [b for _, b in result.val_pairs], [o for o, _, _ in val_out],
                        calibration.confidence([lp for _, lp, _ in val_out], [d for _, _, d in val_out],
                                               **result.familiar.flags(val_inputs, [o for o, _, _ in val_out])))
    return {"default": "int8", "int8": {"files": files, "method": METHOD, "gate": verdict.to_dict(),
                                        "calibration": calibration.to_dict(),
                                        "metrics": {"validation": jsonable(metrics)}, "seconds": seconds}}


class ExportFailed(StrseqError, RuntimeError):
    """Training finished, its export failed; the training is kept in ``kept``."""

    exit_code = 1  # the job ran and failed

    def __init__(self, cause: BaseException, kept: Path, out_dir: Path):
        self.cause, self.kept, self.out_dir = cause, kept, out_dir
        reason = (str(cause).splitlines() or [type(cause).__name__])[0]
        super().__init__(f"the model was trained but not exported ({reason}). The training is kept in {kept} "
                         f"(weights, vocabulary, configs, metrics); export it with: "
                         f"strseq export --from {kept} --out {out_dir}")


class ExportRefused(ExportFailed, ParityError):
    """The parity check refused the export (a ``ParityError`` too); the training is kept."""


def export_checked(folder: Path, model: Seq2Seq, vocab: CharVocab, known: KnownValues | None,
                   texts: list[str]) -> dict:
    """Write a model's files into a bundle folder (graphs, vocabulary, weights, known values), and
    prove the graphs against PyTorch on ``texts``; the parity report (``ParityError`` if refused)."""
    export_onnx(model, vocab, folder)
    (folder / VOCAB_FILE).write_text(vocab.to_json(), encoding="utf-8")
    save_model(model, str(folder / WEIGHTS_FILE))
    if known is not None:
        (folder / KNOWN_FILE).write_text(known.to_json(), encoding="utf-8")
    encoder, decoder = open_sessions(folder)
    parity = check_parity(model, vocab, lambda s: OrtStepper(encoder, decoder, s), texts)
    log.info("ONNX parity with PyTorch on %d rows (%d steps): %d near ties, no other output differs; token "
             "probabilities within %.1e of float64 (PyTorch fp32: %.1e; allowed %.1e)", parity["rows"],
             parity["steps"], parity["near_ties"], parity["onnx_error"], parity["fp32_noise"], parity["bound"])
    return parity


def keep_training(out_dir: Path, model: Seq2Seq, vocab: CharVocab, known: KnownValues | None, record: dict,
                  texts: list[str], error: BaseException, keep_dir: Path | None = None) -> Path | None:
    """Write a trained model whose export failed beside ``out_dir`` (or in ``keep_dir``), as
    ``unexported.py`` describes; its folder, or None when even that failed (logged)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    kept = Path(keep_dir or out_dir.parent) / f"{out_dir.name}.unexported-{stamp}"
    for n in range(2, 100):  # never over an earlier one
        if not kept.exists():
            break
        kept = kept.with_name(f"{out_dir.name}.unexported-{stamp}-{n}")

    def build(folder: Path) -> dict:
        (folder / VOCAB_FILE).write_text(vocab.to_json(), encoding="utf-8")
        save_model(model, str(folder / WEIGHTS_FILE))
        if known is not None:
            (folder / KNOWN_FILE).write_text(known.to_json(), encoding="utf-8")
        (folder / PARITY_FILE).write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        return {**record, "export_error": f"{type(error).__name__}: {error}"[:4000], "meant_for": str(out_dir)}

    try:
        write_bundle(kept, build, overwrite=True, fmt=UNEXPORTED_FORMAT, required=KEPT_FILES)
    except Exception as exc:  # a full disk fails this too: the original error is what to report
        log.error("could not keep the training in %s either: %s", kept, exc)
        return None
    log.info("the export failed; the training is kept in %s", kept)  # the error that follows says so too
    return kept


# the sizes a pretrained model's weights fix (dropout and max_len are the fine-tuning's own)
SHAPE_SIZES = ("emb_dim", "case_dim", "enc_hidden", "dec_hidden", "attn_dim", "loc_filters", "loc_kernel")


def initial_model(texts: Sequence[str], seed: int, model_overrides: dict | None, pretrained: Path | str | None,
                  keep: float = 1.0):
    """Vocabulary and model to fine-tune: fresh, from a pretrained encoder-decoder (``transfer.py``)
    or from a pretrained LM; also what the manifest records about where it started. Model sizes
    other than the shipped model's train from random weights (said in the log); other than a
    named pretrained folder's, they are refused."""
    if pretrained is None:
        vocab = CharVocab.build(texts)
        return vocab, build_model(vocab, seed, **(model_overrides or {})), None
    folder = default_pretrained_path() if pretrained == DEFAULT_LM else Path(pretrained)
    transducer = is_transducer(folder)
    if transducer:
        loaded = load_transducer(folder)
        dims = {k: v for k, v in loaded.model.cfg.to_dict().items() if k in SHAPE_SIZES}
        vocab = transfer_vocab(texts)  # the pairs' characters, not the pretrained list (prediction's cost)
    else:
        loaded = load_lm(folder)
        dims = loaded.lm.cfg.model_dims()
        vocab = extend_vocab(loaded.vocab, texts)  # the LM's whole vocabulary, extended
    clashes = {k: v for k, v in (model_overrides or {}).items() if k in dims and dims[k] != v}
    if clashes and pretrained == DEFAULT_LM:  # sizes of one's own choosing: the shipped model cannot have them
        log.info("model sizes %s differ from the pretrained model's: training from random weights", clashes)
        return initial_model(texts, seed, model_overrides, None)
    if clashes:
        raise ValueError(f"model sizes {clashes} differ from the pretrained model's "
                         f"{ {k: dims[k] for k in clashes} }; train with --no-pretrained to choose other sizes")
    model = build_model(vocab, seed, **{**(model_overrides or {}), **dims})
    if transducer:
        copied = initialize_from_transducer(model, vocab, loaded.model, loaded.vocab, keep)
    else:
        copied = len(initialize_from_lm(model, vocab, loaded.lm, loaded.vocab))
    added = sum(c not in loaded.vocab for c in vocab.chars)
    log.info("starting from the %s %s (%d tensors copied; %d of the pairs' characters are new to it)",
             "pretrained encoder-decoder" if transducer else "pretrained LM", loaded.path, copied, added)
    return vocab, model, {**loaded.summary(), "added_characters": added, "initialized_tensors": copied,
                          **({"kept": keep} if transducer else {})}


def train_bundle(
    pairs: Sequence[tuple[str, str]],
    out_dir: Path | str,
    train_cfg: TrainConfig,
    model_overrides: dict | None = None,
    name: str | None = None,
    overwrite: bool = False,
    data_info: dict | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    pretrained: Path | str | None = DEFAULT_PRETRAINED,
    known: KnownValues | None = None,
    keep_dir: Path | None = None,
    training_inputs: dict | None = None,
) -> TrainOutcome:
    """Train on ``pairs`` and write a verified bundle to ``out_dir`` (nothing is written there on failure).

    A failure after training (the export refused by its parity check, say) keeps the training
    beside ``out_dir`` (or in ``keep_dir``) and raises ``ExportFailed`` naming the folder, from
    which ``strseq export`` writes the bundle (``unexported.py``).

    ``pretrained`` names what training starts from: ``DEFAULT_LM`` (the pretrained encoder-decoder
    shipped with strseq, ``transfer.py``), another pretrained model folder, or an LM bundle
    (``lm_bundle``); the model takes its sizes, its vocabulary (extended with the pairs' new
    characters) and its weights (a pretrained model's mixed with fresh ones,
    ``TrainConfig.pretrained_keep``). ``None`` trains from scratch (``DEFAULT_PRETRAINED`` says
    which is the default, and why).

    ``known`` values (``known.KnownValues``) are stored in the bundle and used whenever it
    predicts; validation metrics, identity margin and calibration are measured with them.

    ``training_inputs`` (a retrain's fingerprint of what decides the model,
    ``jobs/retrain_inputs.py``) is recorded in the manifest as it is.
    """
    # long: the job's steps in their order (vocabulary, model, fit, metrics, int8, export and parity check, bundle),
    # each a call, sharing the run's record
    out_dir = Path(out_dir)
    if len(pairs) < 4:
        raise TrainingDataError(f"need at least 4 pairs to train (and hold some out), got {len(pairs)}")
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists (pass --force to replace it)")
    # what training writes must load (bundle_schema): sizes and max_len before the model is built,
    # the vocabulary's size after
    check_model_config(ModelConfig(vocab_size=len(SPECIALS) + 1, **(model_overrides or {})).to_dict())
    if known is not None and known.max_distance > MAX_KNOWN_DISTANCE:
        raise ValueError(f"known values' max_distance must be at most {MAX_KNOWN_DISTANCE}, not {known.max_distance}")
    started = time.monotonic()
    vocab, model, lm_info = initial_model([t for pair in pairs for t in pair], train_cfg.seed, model_overrides,
                                          pretrained, train_cfg.pretrained_keep)
    check_model_config(model.cfg.to_dict())
    log.info("training on %d pairs: %d characters in the vocabulary, %d parameters",
             len(pairs), len(vocab), sum(p.numel() for p in model.parameters()))
    result = fit(model, vocab, pairs, train_cfg, on_epoch=on_epoch, known=known)
    val_inputs = [a for a, _ in result.val_pairs]
    val_targets = [b for _, b in result.val_pairs]
    outputs, logprob, distance = predict_torch(result.model, vocab, val_inputs, identity_margin=result.identity_margin,
                                     known=known, known_prior=result.known_prior)
    confidence = result.calibration.confidence(logprob, distance, **result.familiar.flags(val_inputs, outputs))
    metrics = summarize(val_inputs, val_targets, outputs, confidence)
    train_seconds = time.monotonic() - started

    record = {
        "name": name or out_dir.name,
        "strseq_version": __version__,
        "torch_version": torch.__version__,
        "model_config": result.model.cfg.to_dict(),
        "pretrained": lm_info,
        "training_config": train_cfg.to_dict(),
        "augmentation_kinds": vars(result.kinds),
        "data": {"pairs": len(pairs), "train_pairs": len(pairs) - len(result.val_pairs),
                 "validation_pairs": len(result.val_pairs), "fingerprint": fingerprint_pairs(pairs),
                 **(data_info or {})},
        "training": {"epochs": len(result.history), "best_epoch": result.best_epoch,
                     "stopped": result.stopped, "seconds": round(train_seconds, 1),
                     "samples_per_s": _median_rate(result.history),
                     "history": [_history_row(r) for r in result.history]},
        "metrics": {"validation": jsonable(metrics)},
        "reliability": reliability_table([o == t for o, t in zip(outputs, val_targets)], confidence),
        "calibration": result.calibration.to_dict(),
        "decoding": {"beam": 1, "identity_margin": result.identity_margin, "spaces": result.spaces,
                     "known_values": None if known is None else {
                         "file": KNOWN_FILE, "values": len(known), "max_distance": known.max_distance,
                         "fingerprint": known.fingerprint(), "prior_weight": result.known_prior},
                     **({} if result.familiar.shapes is None else {"shapes": sorted(result.familiar.shapes)}),
                     "input_chars": result.familiar.chars,
                     **({} if result.familiar.words is None else result.familiar.words.manifest())},
        **({} if training_inputs is None else {"training_inputs": training_inputs}),
    }
    parity_texts = (val_inputs or [a for a, _ in pairs])[:PARITY_ROWS]

    def build(folder: Path) -> dict:
        parity = export_checked(folder, result.model, vocab, known, parity_texts)
        precision = (add_int8(folder, vocab, result, pairs, train_cfg, known) if train_cfg.precision == "int8"
                     else {"default": "fp32", "int8": None})
        describe_graphs(folder, record)  # the graphs are final (parity and int8 are proven)
        body = {**record, "onnx_parity": parity, "precision": precision}
        write_card(folder, body)  # last: it lists the bundle's files
        return body

    try:
        manifest = write_bundle(out_dir, build, overwrite=overwrite)
    except Exception as exc:  # the training is done: whatever failed since, it is not thrown away
        kept = keep_training(out_dir, result.model, vocab, known, record, parity_texts, exc, keep_dir)
        if kept is None:
            raise
        raise (ExportRefused if isinstance(exc, ParityError) else ExportFailed)(exc, kept, out_dir) from exc
    log.info("wrote %s (best epoch %d of %d, validation exact match %.3f; serves %s)", out_dir, result.best_epoch,
             len(result.history), metrics["exact_match"], manifest["precision"]["default"])
    return TrainOutcome(out_dir, manifest)
