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

from strseq_tasks.core.vocab import BOS, EOS

State = tuple[np.ndarray, ...]
StepFn = Callable[[np.ndarray, State, np.ndarray], tuple[np.ndarray, State]]


@dataclass(frozen=True)
class Decoded:
    ids: list[np.ndarray]  # per row: output ids without EOS
    logprob: np.ndarray  # per row: log-probability of the output including its EOS
    diverged: Divergence | None = None  # greedy_search(follow=...) only


def _take(state: State, index: np.ndarray) -> State:
    return tuple(s[index] for s in state)


@dataclass(frozen=True)
class Divergence:
    """Where followed sequences left greedy's path (``greedy_search(..., follow=...)``).

    Row r's followed sequence agreed with the greedy output on its first ``position[r] - 1``
    ids and then took its own id: ``logprob[r]`` is the log-probability of those first
    ``position[r]`` ids and ``state`` (rows first) the step state after them, so scoring resumes
    there (``resume_score``) instead of re-running the prefix greedy already ran. A sequence
    scored through its EOS (it ended where greedy went on, or it *is* the greedy output) has
    ``position[r] == len + 1`` and its full log-probability.
    """

    position: np.ndarray  # per row, int64
    logprob: np.ndarray  # per row, float64
    state: State  # per row (rows whose sequence was fully scored hold zeros)


def _padded(sequences: list[np.ndarray], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Sequences as rows of an EOS-padded id matrix (at least one EOS each), and their lengths."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    padded = np.full((len(sequences), max(width, int(lengths.max(initial=0)) + 1)), EOS, dtype=np.int64)
    for b, seq in enumerate(sequences):
        padded[b, : len(seq)] = seq
    return padded, lengths


def greedy_search(step: StepFn, state: State, max_lengths: np.ndarray,
                  follow: list[np.ndarray] | None = None) -> Decoded:
    """Most likely next id at each step; finished rows leave the batch (early exit).

    ``max_lengths[b]`` counts output ids including EOS; a row reaching it is forced to end.
    With ``follow`` (one id sequence per row, e.g. the input itself), the result's
    ``diverged`` records where each sequence left the greedy path (see ``Divergence``).
    """
    n_rows = len(max_lengths)
    rows = np.arange(n_rows)
    tokens = np.full(n_rows, BOS, dtype=np.int64)
    out = np.full((n_rows, int(max_lengths.max(initial=1))), EOS, dtype=np.int64)
    out_len = np.zeros(n_rows, dtype=np.int64)
    logprob = np.zeros(n_rows, dtype=np.float64)
    tracker = _Follower(follow, n_rows) if follow is not None else None
    t = 0
    while len(rows):
        log_probs, state = step(tokens, state, rows)
        best = log_probs.argmax(axis=1)
        best = np.where(t + 1 >= max_lengths[rows], EOS, best)
        if tracker is not None:
            tracker.step(t, rows, best, log_probs, logprob, state)
        logprob[rows] += log_probs[np.arange(len(rows)), best]
        out[rows, t] = best
        alive = best != EOS
        out_len[rows] += alive
        if not alive.all():
            rows, best, state = rows[alive], best[alive], _take(state, alive)
        tokens = best.astype(np.int64)
        t += 1
    diverged = tracker.result(logprob) if tracker is not None else None
    return Decoded([out[r, : out_len[r]] for r in range(n_rows)], logprob, diverged)


class _Follower:
    """Greedy's bookkeeping for ``follow``: which sequences still agree with the greedy path."""

    def __init__(self, follow: list[np.ndarray], n_rows: int):
        if len(follow) != n_rows:
            raise ValueError(f"follow has {len(follow)} sequences for {n_rows} rows")
        self.padded, self.lengths = _padded(follow, 1)
        self.tied = np.ones(n_rows, dtype=bool)
        self.position = self.lengths + 1  # fully scored, unless it leaves the path
        self.logprob = np.zeros(n_rows, dtype=np.float64)
        self.state: list[np.ndarray] | None = None

    def step(self, t: int, rows: np.ndarray, best: np.ndarray, log_probs: np.ndarray, logprob: np.ndarray,
             state: State) -> None:
        at = np.flatnonzero(self.tied[rows])  # hypotheses whose sequence is still on the path
        if not len(at):
            return
        want = self.padded[rows[at], min(t, self.padded.shape[1] - 1)]  # EOS beyond its end
        off = best[at] != want
        if not off.any():
            return
        k, r = at[off], rows[at[off]]
        self.tied[r] = False
        self.logprob[r] = logprob[r] + log_probs[k, want[off]]
        ended = want[off] == EOS  # the sequence ended here: it is fully scored
        self.position[r[~ended]] = t + 1
        if self.state is None:
            self.state = [np.zeros((len(self.tied),) + s.shape[1:], dtype=s.dtype) for s in state]
        for kept, s in zip(self.state, state, strict=True):
            kept[r] = s[k]

    def result(self, logprob: np.ndarray) -> Divergence:
        self.logprob[self.tied] = logprob[self.tied]  # still on the path: it is the greedy output
        return Divergence(self.position, self.logprob, tuple(self.state or ()))


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
    return _teacher_forced(step, state, sequences, sources, np.zeros(n_seq, dtype=np.int64),
                           np.zeros(n_seq, dtype=np.float64), floor)


def resume_score(step: StepFn, diverged: Divergence, sequences: list[np.ndarray], rows: np.ndarray,
                 floor: np.ndarray | None = None) -> np.ndarray:
    """``score`` of the sequences greedy followed, for ``rows``, from where they left its path.

    ``sequences[k]`` is the sequence row ``rows[k]`` followed; ``floor`` as in ``score``. The
    steps greedy already ran for the shared prefix are not run again.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if not len(rows):
        return np.zeros(0, dtype=np.float64)
    state = _take(diverged.state, rows) if diverged.state else ()
    return _teacher_forced(step, state, sequences, rows, diverged.position[rows].copy(),
                           diverged.logprob[rows].copy(), floor)


def _teacher_forced(step: StepFn, state: State, sequences: list[np.ndarray], sources: np.ndarray,
                    position: np.ndarray, logprob: np.ndarray, floor: np.ndarray | None) -> np.ndarray:
    """Add the log-probabilities of ``sequences[k][position[k]:]`` and EOS to ``logprob[k]``,
    from ``state`` (the step state after the first ``position[k]`` ids)."""
    padded, lengths = _padded(sequences, 1)
    before = padded[np.arange(len(sequences)), np.maximum(position - 1, 0)]
    tokens = np.where(position == 0, BOS, before)
    alive = position <= lengths  # its EOS is not scored yet
    if floor is not None:
        alive &= logprob >= floor
    alive_seq = np.flatnonzero(alive)
    if not alive.all():
        state, tokens = _take(state, alive_seq), tokens[alive_seq]
    while len(alive_seq):
        log_probs, state = step(tokens, state, sources[alive_seq])
        at = position[alive_seq]
        target = padded[alive_seq, at]
        logprob[alive_seq] += log_probs[np.arange(len(alive_seq)), target]
        position[alive_seq] = at + 1
        alive = lengths[alive_seq] > at
        if floor is not None:
            alive &= logprob[alive_seq] >= floor[alive_seq]
        alive_seq, state, tokens = alive_seq[alive], _take(state, alive), target[alive]
    return logprob


def decode(step: StepFn, state: State, max_lengths: np.ndarray, beam: int = 1) -> Decoded:
    """Greedy search for ``beam == 1``, beam search otherwise."""
    if beam == 1:
        return greedy_search(step, state, max_lengths)
    return beam_search(step, state, max_lengths, beam)
