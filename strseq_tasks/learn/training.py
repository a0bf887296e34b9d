"""Fine-tune a ``Seq2Seq`` on a few pairs: augmentation, regularization, early stopping.

``fit`` does no file I/O; it reports through an optional ``on_epoch`` callback (the CLI draws
a progress bar from it).
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TypeVar

import numpy as np
import torch

from strseq_tasks.core.augment import AugmentConfig, NoiseKinds, augment, resolve_kinds
from strseq_tasks.core.batching import encode_sources, encode_targets
from strseq_tasks.core.calibration import Calibration, fit_calibration
from strseq_tasks.core.known import KnownValues
from strseq_tasks.core.shapes import Familiar, ShapeLog
from strseq_tasks.core.vocab import SPACES_KEEP, CharVocab, lower_char, read_text, spaces_rule, upper_char
from strseq_tasks.learn.decoding_choices import choose_identity_margin, choose_known_prior, predict_torch
from strseq_tasks.learn.model import Seq2Seq, sequence_loss
from strseq_tasks.params import INT8_MAX_CHANGED, MAX_EPOCHS, SEED, TRAIN_PRECISION, TRAIN_THREADS

Pair = tuple[str, str]
T = TypeVar("T")



@dataclass(frozen=True)
class TrainConfig:
    seed: int = SEED.default
    max_epochs: int = MAX_EPOCHS.default
    batch_size: int = 32
    lr: float = 3e-3  # AdamW peak learning rate (after a short linear warm-up)
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    clip: float = 1.0  # gradient norm clipping
    warmup_epochs: int = 2  # linear warm-up, then cosine decay to 5% over max_epochs
    patience: int = 8  # epochs without improvement of the smoothed validation score (see keeps_patience)
    smoothing: float = 0.5  # EMA factor on validation exact match (tiny splits are noisy)
    val_fraction: float = 0.15  # share of pairs held out (decided by a hash of the input)
    min_val: int = 8  # hold out at least this many pairs (when there are 2x as many)
    val_copies: int = 3  # noisy copies of each held-out pair added to the validation set
    unk_rate: float = 0.05  # per batch, share of letters presented as unknown (learn to copy unseen ones)
    max_minutes: float | None = None  # stop after this much training time, keeping the best
    # choosing the identity margin, a clean input changed costs as much as this many wrong outputs
    harm_cost: float = 5.0
    threads: int = TRAIN_THREADS.default  # torch intra-op threads: these small GRUs train faster on 1 than on 2
    # the bundle also gets int8 graphs, served by default, unless they change more than
    # int8_max_changed of the outputs or lose more than int8_max_exact_drop of exact match (int8.py)
    # "int8": int8 graphs when they pass that gate, else fp32; "fp32": fp32 only
    precision: str = TRAIN_PRECISION.default
    int8_max_changed: float = INT8_MAX_CHANGED.default
    int8_max_exact_drop: float = 0.002
    # starting from a pretrained encoder-decoder, each weight is this share pretrained, the rest fresh
    # (transfer.initialize_from_transducer: shrink and perturb, so that pretraining's habits yield to the pairs)
    pretrained_keep: float = 0.7
    # priors of the confidence shifts (core/calibration.py: a layout never learned from, a character no training
    # input held, a word treated unlike the pairs, an output lacking a letter no input held; chosen on dev draws)
    novel_prior: float = -3.0
    unseen_char_prior: float = -2.0
    disagree_prior: float = -2.0
    lost_char_prior: float = -12.0
    # the least weight calibration may give the model's certainty (fit_calibration's scale_floor: validation rows
    # whose few errors are all near-certain fit it at ~0 and every row gets the same confidence; chosen on dev draws)
    calibration_scale_floor: float = 0.25
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.precision not in ("int8", "fp32"):
            raise ValueError(f"precision must be int8 or fp32, not {self.precision!r}")

    def calibration_settings(self) -> dict:
        """The terms' prior means and the scale's floor, as fit_calibration takes them."""
        priors = ("novel_prior", "unseen_char_prior", "disagree_prior", "lost_char_prior")
        return {**{k: getattr(self, k) for k in priors}, "scale_floor": self.calibration_scale_floor}

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpochReport:
    epoch: int
    train_loss: float
    val_loss: float
    val_exact: float
    val_smoothed: float
    lr: float
    seconds: float  # the whole epoch: augmentation, training steps and validation
    best: bool
    samples: int = 0  # training rows (augmented) seen this epoch
    step_seconds: float = 0.0  # of ``seconds``, in the training steps (forward, backward, update)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.step_seconds if self.step_seconds > 0 else 0.0


@dataclass
class FitResult:
    model: Seq2Seq
    history: list[EpochReport]
    best_epoch: int
    calibration: Calibration
    kinds: NoiseKinds
    val_pairs: list[Pair]
    stopped: str  # why training ended: "patience", "max_epochs" or "time"
    identity_margin: float  # chosen on validation: keep the input unless the answer beats it by this (nats)
    known_prior: float = 0.0  # chosen on validation: weight of the known values' list-order prior
    val_set: list[Pair] = field(default_factory=list)  # the validation rows decoded (val_pairs and noisy copies)
    spaces: str = SPACES_KEEP  # how the model reads whitespace (vocab.spaces_rule), as serving must
    # the shapes (core/shapes.py) and characters of the inputs the model learned from
    familiar: Familiar = field(default_factory=Familiar)


def hash_unit(text: str, seed: int) -> float:
    """A stable pseudo-random number in [0, 1) for ``text``: decides which side of a split it is on."""
    digest = hashlib.sha256(f"{seed}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_pairs(pairs: Sequence[Pair], fraction: float, min_val: int, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """Train / validation split decided by a hash of each input: stable as the data grows.

    At least ``min_val`` pairs are held out when there are at least twice as many pairs.
    """
    scored = sorted(pairs, key=lambda p: hash_unit(p[0], seed))
    n_val = sum(hash_unit(p[0], seed) < fraction for p in pairs)
    if len(pairs) >= 2 * min_val:
        n_val = max(n_val, min_val)
    n_val = min(n_val, len(pairs) - 1)
    return scored[n_val:], scored[:n_val]


def _tensors(vocab: CharVocab, pairs: Sequence[Pair], hidden: frozenset[str] = frozenset()):
    source = encode_sources(vocab, [a for a, _ in pairs], hidden)
    targets = encode_targets(vocab, [b for _, b in pairs], source, hidden)
    return (
        torch.from_numpy(source.ids),
        torch.from_numpy(source.lengths),
        torch.from_numpy(source.copy_map),
        torch.from_numpy(targets),
    )


def length_batches(items: Sequence[T], batch_size: int, rng: random.Random, length: Callable[[T], object],
                   window: int = 16) -> list[list[T]]:
    """Shuffled batches of similar length (less padding, same randomness): items are shuffled,
    sorted by ``length`` within windows of ``window`` batches, cut into batches, and the batches shuffled."""
    items = list(items)
    rng.shuffle(items)
    chunk = batch_size * window
    batches = []
    for start in range(0, len(items), chunk):
        block = sorted(items[start : start + chunk], key=length)
        batches += [block[i : i + batch_size] for i in range(0, len(block), batch_size)]
    rng.shuffle(batches)
    return batches


def hide_characters(batch: Sequence[Pair], rate: float, rng: random.Random) -> frozenset[str]:
    """Letters (both cases) to present as unknown in this batch, so that the model learns to copy
    characters it has no embedding for, the way it must copy a new accented name at run time.
    Only letters that every target in the batch could copy from its own input are eligible."""
    if rate <= 0:
        return frozenset()
    eligible = {lower_char(c) for src, _ in batch for c in src if c.isalpha()}
    for src, tgt in batch:
        folded = {lower_char(c) for c in src}
        eligible -= {lower_char(c) for c in tgt if lower_char(c) not in folded}
    chosen = {c for c in sorted(eligible) if rng.random() < rate}
    return frozenset(chosen | {upper_char(c) for c in chosen})


# with every validation row right, smaller rises of the smoothed exact match are its EMA converging
SATURATED_RISE = 0.001


def keeps_patience(score: tuple[float, float], best: tuple[float, float], exact: float) -> bool:
    """Whether an epoch with ``score`` (smoothed exact match, -loss) and raw validation ``exact``
    match resets early stopping's patience, against the ``best`` score so far.

    Any improvement does, as long as validation has rows left to get right. Once this epoch got
    every one right, only a real rise of the smoothed exact match does: a falling loss still
    picks the epoch kept, but buys no more epochs (phones, 200 pairs: 40 epochs at 100% instead
    of stopping).
    """
    if exact < 1.0:
        return score > best
    return score[0] > best[0] + SATURATED_RISE


def _lr_factor(epoch: float, cfg: TrainConfig) -> float:
    if epoch < cfg.warmup_epochs:
        return (epoch + 1) / (cfg.warmup_epochs + 1)
    progress = (epoch - cfg.warmup_epochs) / max(1, cfg.max_epochs - cfg.warmup_epochs)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _val_loss(model: Seq2Seq, vocab: CharVocab, pairs: Sequence[Pair], batch_size: int) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(pairs), batch_size):
            src, lengths, copy_map, targets = _tensors(vocab, pairs[start : start + batch_size])
            n = int((targets != 0).sum())
            total += float(sequence_loss(model(src, lengths, copy_map, targets), targets)) * n
            count += n
    return total / max(count, 1)


def fit(
    model: Seq2Seq,
    vocab: CharVocab,
    pairs: Sequence[Pair],
    cfg: TrainConfig,
    on_epoch: Callable[[EpochReport], None] | None = None,
    known: KnownValues | None = None,
) -> FitResult:
    """Train on ``pairs`` (holding out a validation split) and return the best model found.

    Early stopping watches the model's own validation exact match; the identity margin and the
    calibration are chosen on validation decoded as prediction will decode (with ``known``).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _fit(model, vocab, pairs, cfg, on_epoch, known)
    finally:
        torch.set_num_threads(threads)


def split_for_training(pairs: Sequence[Pair], cfg: TrainConfig, max_len: int):
    """What ``fit`` trains and validates on: (whitespace rule, the pairs as read, training pairs,
    validation pairs, noise kinds, validation rows: the validation pairs and their noisy copies)."""
    spaces = spaces_rule(pairs)
    pairs = _read_as(spaces, pairs)  # the model learns on inputs as it will read them
    train, val = split_pairs(pairs, cfg.val_fraction, cfg.min_val, cfg.seed)
    kinds = resolve_kinds(pairs, cfg.augment)
    val_aug = replace(cfg.augment, copies=cfg.val_copies, identity=True, recombine=0)
    val_set = _read_as(spaces, augment(val, val_aug, seed=cfg.seed + 10_000, kinds=kinds, protected=dict(pairs),
                                       max_len=max_len), dict(pairs))
    return spaces, pairs, train, val, kinds, val_set


def _fit(model, vocab, pairs, cfg, on_epoch, known) -> FitResult:
    # long: the training loop: epochs, validation, keeping the best state, early stopping and the time budget share
    # the loop's state
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    spaces, pairs, train, val, kinds, val_set = split_for_training(pairs, cfg, model.cfg.max_len)
    protected = dict(pairs)
    val_inputs, val_targets = [a for a, _ in val_set], [b for _, b in val_set]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    history: list[EpochReport] = []
    best_score, best_state, best_epoch = (-1.0, 0.0), copy.deepcopy(model.state_dict()), 0
    smoothed, stale, stopped = None, 0, "max_epochs"
    shapes = ShapeLog(a for a, _ in train)  # the shapes of the inputs trained on: the pairs, then each epoch's
    started = time.monotonic()
    for epoch in range(cfg.max_epochs):
        t0 = time.monotonic()
        data = _read_as(spaces, augment(train, cfg.augment, seed=cfg.seed + epoch, kinds=kinds,
                                        protected=protected, max_len=model.cfg.max_len), protected)
        shapes.add(a for a, _ in data)
        batches = length_batches(data, cfg.batch_size, rng, lambda p: (len(p[0]), len(p[1])))
        model.train()
        losses = []
        t_steps = time.monotonic()
        for i, batch in enumerate(batches):
            for group in opt.param_groups:
                group["lr"] = cfg.lr * _lr_factor(epoch + i / len(batches), cfg)
            src, lengths, copy_map, targets = _tensors(vocab, batch, hide_characters(batch, cfg.unk_rate, rng))
            loss = sequence_loss(model(src, lengths, copy_map, targets), targets)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            losses.append(loss.item())
        step_seconds = time.monotonic() - t_steps
        val_loss = _val_loss(model, vocab, val_set, 128) if val_set else float("nan")
        outputs = predict_torch(model, vocab, val_inputs)[0] if val_set else []
        exact = float(np.mean([o == t for o, t in zip(outputs, val_targets)])) if val_set else 0.0
        smoothed = exact if smoothed is None else cfg.smoothing * smoothed + (1 - cfg.smoothing) * exact
        score = (round(smoothed, 6), -val_loss if val_set else 0.0)
        improved = score > best_score
        stale = 0 if keeps_patience(score, best_score, exact) else stale + 1
        if improved:
            best_score, best_state, best_epoch = score, copy.deepcopy(model.state_dict()), epoch
        report = EpochReport(epoch + 1, float(np.mean(losses)), val_loss, exact, smoothed,
                             opt.param_groups[0]["lr"], time.monotonic() - t0, improved, len(data), step_seconds)
        history.append(report)
        if on_epoch is not None:
            on_epoch(report)
        if stale >= cfg.patience:
            stopped = "patience"
            break
        if cfg.max_minutes is not None and time.monotonic() - started > 60 * cfg.max_minutes:
            stopped = "time"
            break
    model.load_state_dict(best_state)
    model.eval()
    familiar = Familiar.of(shapes.upto(best_epoch + 2), train)
    calibration, margin, prior = Calibration(), None, 0.0
    if val_set:
        prior = choose_known_prior(model, vocab, val_inputs, val_targets, known) if known else 0.0
        margin, outputs, logprob, distance = choose_identity_margin(model, vocab, val_inputs, val_targets,
                                                                    cfg.harm_cost, known, prior)
        calibration = fit_calibration(logprob, np.array([o == t for o, t in zip(outputs, val_targets)]),
                                      distance=distance, **familiar.flags(val_inputs, outputs),
                                      **cfg.calibration_settings())
    return FitResult(model, history, best_epoch + 1, calibration, kinds, val, stopped, margin, prior, val_set,
                     spaces, familiar)


def _read_as(spaces: str, pairs: Sequence[Pair], protected: dict[str, str] | None = None) -> list[Pair]:
    """The pairs with their inputs as a model with this whitespace rule reads them, each once;
    a noisy copy that now reads as a ``protected`` input with another target is dropped."""
    if spaces == SPACES_KEEP:
        return list(pairs)
    read = ((read_text(a, spaces), b) for a, b in pairs)
    return list(dict.fromkeys((a, b) for a, b in read if a and (protected or {}).get(a, b) == b))
