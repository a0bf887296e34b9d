"""Greedy and beam search, written once over a step function. numpy only.

Both PyTorch evaluation (``model.TorchStepper``) and the ONNX runtime (``runtime.OrtStepper``)
decode through these two functions, so the two paths cannot drift apart.

A step function has the signature ``step(tokens, state, rows) -> (log_probs, state)``:

- ``tokens``: hypotheses, int64, the previous output id of each hypothesis;
- ``state``: a tuple of arrays whose first axis is the hypothesis axis;
- ``rows``: hypotheses, int64, the source row each hypothesis belongs to (the step uses it
  to pick that row's encoder outputs);
- ``log_probs``: hypotheses x ext_vocab, float, log-probabilities of the next id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .vocab import BOS, EOS

State = tuple[np.ndarray, ...]
StepFn = Callable[[np.ndarray, State, np.ndarray], tuple[np.ndarray, State]]


@dataclass(frozen=True)
class Decoded:
    ids: list[np.ndarray]  # per row: output ids without EOS
    logprob: np.ndarray  # per row: log-probability of the output including its EOS


def _take(state: State, index: np.ndarray) -> State:
    return tuple(s[index] for s in state)


def greedy_search(step: StepFn, state: State, max_lengths: np.ndarray) -> Decoded:
    """Most likely next id at each step; finished rows leave the batch (early exit).

    ``max_lengths[b]`` counts output ids including EOS; a row reaching it is forced to end.
    """
    n_rows = len(max_lengths)
    rows = np.arange(n_rows)
    tokens = np.full(n_rows, BOS, dtype=np.int64)
    outputs: list[list[int]] = [[] for _ in range(n_rows)]
    logprob = np.zeros(n_rows, dtype=np.float64)
    t = 0
    while len(rows):
        log_probs, state = step(tokens, state, rows)
        best = log_probs.argmax(axis=1)
        best = np.where(t + 1 >= max_lengths[rows], EOS, best)
        logprob[rows] += log_probs[np.arange(len(rows)), best]
        for r, idx in zip(rows, best, strict=True):
            if idx != EOS:
                outputs[r].append(int(idx))
        alive = best != EOS
        if not alive.all():
            rows, best, state = rows[alive], best[alive], _take(state, alive)
        tokens = best.astype(np.int64)
        t += 1
    return Decoded([np.asarray(o, dtype=np.int64) for o in outputs], logprob)


def beam_search(
    step: StepFn, state: State, max_lengths: np.ndarray, beam: int, length_penalty: float = 0.0
) -> Decoded:
    """Keep the ``beam`` best hypotheses per row; return the best finished one per row.

    Scores are summed log-probabilities; with ``length_penalty`` alpha > 0 the final choice
    divides by ((5 + length) / 6) ** alpha (Wu et al., 2016). ``beam == 1`` is greedy search.
    """
    if beam < 1:
        raise ValueError("beam must be >= 1")
    n_rows = len(max_lengths)
    n_hyp = n_rows * beam
    rows = np.repeat(np.arange(n_rows), beam)
    state = _take(state, rows)
    tokens = np.full(n_hyp, BOS, dtype=np.int64)
    scores = np.zeros(n_hyp, dtype=np.float64)
    scores.reshape(n_rows, beam)[:, 1:] = -np.inf  # start from one live hypothesis per row
    finished = np.zeros(n_hyp, dtype=bool)
    lengths = np.zeros(n_hyp, dtype=np.int64)
    history = np.zeros((n_hyp, 0), dtype=np.int64)
    limit = max_lengths[rows]
    t = 0
    while not finished.all():
        log_probs, state = step(tokens, state, rows)
        ext = log_probs.shape[1]
        cand = scores[:, None] + log_probs.astype(np.float64)
        forced = ~finished & (t + 1 >= limit)
        cand[forced] = np.where(np.arange(ext) == EOS, cand[forced], -np.inf)
        # a finished hypothesis continues with EOS at no cost, so it keeps its place
        cand[finished] = -np.inf
        cand[finished, EOS] = scores[finished]
        flat = cand.reshape(n_rows, beam * ext)
        top = np.argsort(-flat, axis=1, kind="stable")[:, :beam]
        origin = (top // ext + np.arange(n_rows)[:, None] * beam).reshape(-1)
        token = (top % ext).reshape(-1)
        scores = np.take_along_axis(flat, top, axis=1).reshape(-1)
        was_finished = finished[origin]
        lengths = lengths[origin] + ~was_finished
        history = np.concatenate([history[origin], token[:, None]], axis=1)
        finished = was_finished | (token == EOS)
        state = _take(state, origin)
        tokens = token.astype(np.int64)
        t += 1
    final = scores / (((5.0 + lengths) / 6.0) ** length_penalty) if length_penalty else scores
    best = final.reshape(n_rows, beam).argmax(axis=1) + np.arange(n_rows) * beam
    ids = [history[h][: lengths[h] - 1] for h in best]  # drop the EOS (and trailing no-ops)
    return Decoded(ids, scores[best])


def score(step: StepFn, state: State, sequences: list[np.ndarray], source_rows: np.ndarray | None = None,
          floor: np.ndarray | None = None) -> np.ndarray:
    """Log-probability of given output sequences (each followed by EOS), teacher-forced.

    ``sequences[k]`` is scored against source row ``source_rows[k]`` (by default row ``k``), so
    one source row can score several candidates; rows leave the batch at their EOS. With
    ``floor``, a sequence also leaves as soon as its log-probability falls below ``floor[k]``
    (it can only fall further): its result is then some value below the floor, not its score.
    """
    n_seq = len(sequences)
    if n_seq == 0:
        return np.zeros(0, dtype=np.float64)
    sources = np.arange(n_seq) if source_rows is None else np.asarray(source_rows, dtype=np.int64)
    if source_rows is not None:
        state = _take(state, sources)
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    padded = np.full((n_seq, int(lengths.max(initial=0)) + 1), EOS, dtype=np.int64)
    for b, seq in enumerate(sequences):
        padded[b, : len(seq)] = seq
    alive_seq = np.arange(n_seq)
    tokens = np.full(n_seq, BOS, dtype=np.int64)
    logprob = np.zeros(n_seq, dtype=np.float64)
    t = 0
    while len(alive_seq):
        log_probs, state = step(tokens, state, sources[alive_seq])
        target = padded[alive_seq, t]
        logprob[alive_seq] += log_probs[np.arange(len(alive_seq)), target]
        alive = lengths[alive_seq] > t
        if floor is not None:
            alive &= logprob[alive_seq] >= floor[alive_seq]
        alive_seq, state, tokens = alive_seq[alive], _take(state, alive), target[alive]
        t += 1
    return logprob


def decode(step: StepFn, state: State, max_lengths: np.ndarray, beam: int = 1) -> Decoded:
    """Greedy search for ``beam == 1``, beam search otherwise."""
    if beam == 1:
        return greedy_search(step, state, max_lengths)
    return beam_search(step, state, max_lengths, beam)
