"""Train a ``CharLM`` on unlabeled strings: held-out bits per character, time budget, best kept.

No file I/O; progress goes to an optional ``on_eval`` callback (the CLI draws a bar from it).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from strseq_tasks.core.vocab import PAD, CharVocab
from strseq_tasks.learn.lm import HEADS, CharLM, bits_per_char
from strseq_tasks.learn.training import hash_unit, length_batches


@dataclass(frozen=True)
class PretrainConfig:
    seed: int = 0
    minutes: float | None = 10.0  # time budget (best held-out state kept); None: run max_epochs (reproducible)
    max_epochs: int = 50  # passes over the corpus, if the time budget allows
    batch_size: int = 128
    lr: float = 2e-3  # AdamW peak learning rate (short warm-up, then cosine decay over the budget)
    weight_decay: float = 0.01
    clip: float = 1.0
    warmup_steps: int = 100
    heldout_fraction: float = 0.02  # share of distinct strings held out for bits per character
    max_heldout: int = 2000
    eval_every: int = 200  # optimizer steps between held-out evaluations
    threads: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EvalReport:
    step: int
    epoch: float
    train_bpc: float  # decoder LM, running mean since the last evaluation
    heldout_bpc: dict[str, float]  # per LM (forward, backward, decoder)
    seconds: float
    best: bool
    progress: float  # share of the time budget (or epochs) used, 0..1


@dataclass
class PretrainResult:
    lm: CharLM
    history: list[EvalReport]
    heldout_bpc: dict[str, float]  # of the kept state
    initial_bpc: dict[str, float]  # before training (from an existing LM: before adaptation)
    steps: int
    epochs: float
    seconds: float
    train_strings: int
    heldout_strings: int  # 0: the corpus was too small to hold any out; bpc is on training strings


def split_corpus(texts: Sequence[str], cfg: PretrainConfig) -> tuple[list[str], list[str]]:
    """Held-out slice chosen by a hash of the string: a value and its repeats stay on one side."""
    distinct = len(set(texts))
    # a small corpus holds out a larger share (up to 20%, aiming at 100 strings) so bpc means something
    fraction = max(cfg.heldout_fraction, min(0.2, 100 / max(distinct, 1)))
    fraction = min(fraction, cfg.max_heldout / max(distinct, 1))
    if distinct < 20:
        fraction = 0.0  # too few to hold any out: report training bits per character instead
    train, heldout = [], []
    for text in texts:
        (heldout if hash_unit(text, cfg.seed) < fraction else train).append(text)
    return train, heldout


def encode_batch(vocab: CharVocab, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = [max(1, len(t)) for t in texts]
    ids = np.full((len(texts), max(lengths)), PAD, dtype=np.int64)
    for i, text in enumerate(texts):
        ids[i, : len(text)] = vocab.encode(text)
    return torch.from_numpy(ids), torch.tensor(lengths, dtype=torch.int64)


def evaluate_lm(lm: CharLM, vocab: CharVocab, texts: Sequence[str], batch_size: int = 256) -> dict[str, float]:
    """Bits per character of each LM on ``texts`` (EOS counts as a character)."""
    was_training = lm.training
    lm.eval()
    totals = {name: [0.0, 0] for name in HEADS}
    ordered = sorted(texts, key=len)
    with torch.no_grad():
        for start in range(0, len(ordered), batch_size):
            ids, lengths = encode_batch(vocab, ordered[start : start + batch_size])
            for name, (nll, count) in lm(ids, lengths).items():
                totals[name][0] += float(nll)
                totals[name][1] += count
    lm.train(was_training)
    return {name: round(bits_per_char(*totals[name]), 4) for name in HEADS}


def fit_lm(lm: CharLM, vocab: CharVocab, texts: Sequence[str], cfg: PretrainConfig,
           on_eval: Callable[[EvalReport], None] | None = None) -> PretrainResult:
    """Train all three LMs of ``lm`` on ``texts``; keep the state with the best held-out decoder bpc."""
    if not texts:
        raise ValueError("the corpus is empty")
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _fit_lm(lm, vocab, list(texts), cfg, on_eval)
    finally:
        torch.set_num_threads(threads)


def _fit_lm(lm, vocab, texts, cfg, on_eval) -> PretrainResult:
    # long: the training loop: steps, held-out evaluation, keeping the best state and the time budget share the loop's
    # state
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    train, heldout = split_corpus(texts, cfg)
    scoring = heldout or train[: cfg.max_heldout]
    initial = evaluate_lm(lm, vocab, scoring)
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.max_epochs
    budget = 60.0 * cfg.minutes if cfg.minutes is not None else math.inf
    opt = torch.optim.AdamW(lm.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best_bpc, best_state, best = initial, copy.deepcopy(lm.state_dict()), initial["decoder"]
    history: list[EvalReport] = []
    started = time.monotonic()
    step, running, done = 0, [0.0, 0], False

    def progress() -> float:
        return min(1.0, max((time.monotonic() - started) / budget, step / total_steps))

    def evaluate() -> None:
        nonlocal best, best_bpc, best_state, running
        scores = evaluate_lm(lm, vocab, scoring)
        improved = scores["decoder"] < best
        if improved:
            best, best_bpc, best_state = scores["decoder"], scores, copy.deepcopy(lm.state_dict())
        report = EvalReport(step, step / steps_per_epoch, bits_per_char(*running), scores,
                            time.monotonic() - started, improved, progress())
        history.append(report)
        running = [0.0, 0]
        if on_eval is not None:
            on_eval(report)

    lm.train()
    for _ in range(cfg.max_epochs):
        for batch in length_batches(train, cfg.batch_size, rng, len, window=32):
            # warm-up, then cosine decay to 5% over whichever runs out first: time or epochs
            warm = min(1.0, (step + 1) / cfg.warmup_steps)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress())))
            ids, lengths = encode_batch(vocab, batch)
            parts = lm(ids, lengths)
            count = sum(c for _, c in parts.values())
            loss = sum(nll for nll, _ in parts.values()) / max(count, 1)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lm.parameters(), cfg.clip)
            opt.step()
            step += 1
            running[0] += float(parts["decoder"][0].detach())
            running[1] += parts["decoder"][1]
            if step % cfg.eval_every == 0:
                evaluate()
            if time.monotonic() - started >= budget:
                done = True
                break
        if done:
            break
    if running[1]:
        evaluate()
    lm.load_state_dict(best_state)
    lm.eval()
    return PretrainResult(lm, history, best_bpc, initial, step, round(step / steps_per_epoch, 3),
                          round(time.monotonic() - started, 1), len(train), len(heldout))
