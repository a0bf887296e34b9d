"""Greedy and beam search over hand-made numpy step functions (no torch)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from strseq_tasks.core.decoding import beam_search, decode, greedy_search, resume_score, score
from strseq_tasks.core.vocab import BOS, EOS

A, B, C = 4, 5, 6  # ordinary output ids after the four specials
EXT = 7
FLOOR = -30.0  # log-probability of "never" in the hand-made tables


def _table(rows: dict[int, dict[int, float]]) -> np.ndarray:
    """Log-probabilities of the next id given the previous id (a bigram step function)."""
    table = np.full((EXT, EXT), FLOOR)
    for prev, nxt in rows.items():
        probs = np.zeros(EXT)
        for idx, p in nxt.items():
            probs[idx] = p
        table[prev] = np.where(probs > 0, np.log(np.where(probs > 0, probs, 1.0)), FLOOR)
    return table


class BigramStep:
    """step(tokens, state, rows): next-id log-probabilities depend on the previous id only."""

    def __init__(self, table: np.ndarray):
        self.table = table
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []

    def __call__(self, tokens, state, rows):
        self.calls.append((tokens.copy(), rows.copy()))
        return self.table[tokens], state


def _dummy_state(n: int):
    return (np.zeros((n, 1), dtype=np.float32),)


# From BOS, A looks best (0.6) but every continuation of A is poor; B (0.4) ends well.
TRAP = _table({
    BOS: {A: 0.6, B: 0.4},
    A: {EOS: 0.34, A: 0.33, C: 0.33},
    B: {EOS: 0.9, C: 0.1},
    C: {EOS: 1.0},
})


def test_greedy_picks_the_argmax_at_each_step():
    table = _table({BOS: {A: 0.1, B: 0.7, C: 0.2}, B: {C: 0.8, EOS: 0.2}, C: {EOS: 0.9, A: 0.1}})
    result = greedy_search(BigramStep(table), _dummy_state(1), np.array([10]))
    assert list(result.ids[0]) == [B, C]
    assert result.logprob[0] == pytest.approx(np.log(0.7 * 0.8 * 0.9))


def test_beam_search_finds_the_sequence_greedy_misses():
    greedy = greedy_search(BigramStep(TRAP), _dummy_state(1), np.array([10]))
    beam = beam_search(BigramStep(TRAP), _dummy_state(1), np.array([10]), beam=2)
    assert list(greedy.ids[0]) == [A]
    assert greedy.logprob[0] == pytest.approx(np.log(0.6 * 0.34))
    assert list(beam.ids[0]) == [B]
    assert beam.logprob[0] == pytest.approx(np.log(0.4 * 0.9))
    assert decode(BigramStep(TRAP), _dummy_state(1), np.array([10]), beam=2).ids[0].tolist() == [B]
    assert decode(BigramStep(TRAP), _dummy_state(1), np.array([10]), beam=1).ids[0].tolist() == [A]


def test_beam_search_rejects_beam_below_one():
    with pytest.raises(ValueError):
        beam_search(BigramStep(TRAP), _dummy_state(1), np.array([5]), beam=0)


class RandomRNNStep:
    """A random recurrent step: the output depends on the whole prefix and on the source row."""

    def __init__(self, seed: int, n_rows: int, ext: int = EXT, dim: int = 6, eos_bias: float = 0.0):
        rng = np.random.default_rng(seed)
        self.embed = rng.normal(size=(ext, dim))
        self.recur = rng.normal(size=(dim, dim)) / np.sqrt(dim)
        self.out = rng.normal(size=(dim, ext)) * 2.0
        self.row_bias = rng.normal(size=(n_rows, ext))
        self.row_bias[:, EOS] += eos_bias
        self.init = rng.normal(size=(n_rows, dim)).astype(np.float32)

    def __call__(self, tokens, state, rows):
        (h,) = state
        h = np.tanh(self.embed[tokens] + h @ self.recur)
        logits = h @ self.out + self.row_bias[rows]
        logits = logits - logits.max(axis=1, keepdims=True)
        log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return log_probs.astype(np.float32), (h.astype(np.float32),)


@pytest.mark.parametrize("seed", range(8))
def test_beam_of_one_equals_greedy(seed):
    n_rows = 4
    step = RandomRNNStep(seed, n_rows)
    max_lengths = np.array([1, 3, 6, 9])
    greedy = greedy_search(step, (step.init,), max_lengths)
    beam = beam_search(step, (step.init,), max_lengths, beam=1)
    for g, b in zip(greedy.ids, beam.ids, strict=True):
        assert g.tolist() == b.tolist()
    np.testing.assert_allclose(beam.logprob, greedy.logprob, rtol=0, atol=1e-9)


def _score(step: RandomRNNStep, row: int, seq: list[int]) -> float:
    """Log-probability of ``seq`` + EOS under ``step`` for one source row."""
    state = (step.init[row : row + 1],)
    tokens = np.array([BOS])
    total = 0.0
    for idx in [*seq, EOS]:
        log_probs, state = step(tokens, state, np.array([row]))
        total += float(log_probs[0, idx])
        tokens = np.array([idx])
    return total


@pytest.mark.parametrize("seed", range(4))
def test_wide_beam_finds_the_exact_best_sequence(seed):
    """With a beam as wide as the search space, beam search is exhaustive search."""
    n_rows, limit = 2, 3  # at most 2 ids + EOS
    step = RandomRNNStep(seed, n_rows, eos_bias=-1.0)
    others = [i for i in range(EXT) if i != EOS]
    candidates = [list(s) for k in range(limit) for s in itertools.product(others, repeat=k)]
    result = beam_search(step, (step.init,), np.full(n_rows, limit), beam=len(others) ** 2)
    for row in range(n_rows):
        scores = [_score(step, row, seq) for seq in candidates]
        best = candidates[int(np.argmax(scores))]
        assert result.ids[row].tolist() == best
        assert result.logprob[row] == pytest.approx(max(scores), abs=1e-5)


@pytest.mark.parametrize("beam", [1, 3])
def test_returned_logprob_is_the_score_of_the_returned_ids(beam):
    step = RandomRNNStep(11, 3)
    result = decode(step, (step.init,), np.array([4, 8, 12]), beam=beam)
    for row, ids in enumerate(result.ids):
        assert result.logprob[row] == pytest.approx(_score(step, row, ids.tolist()), abs=1e-5)


NEVER_STOPS = _table({prev: {A: 0.9, B: 0.1} for prev in range(EXT)})


@pytest.mark.parametrize("beam", [1, 2, 3])
def test_max_lengths_force_eos(beam):
    result = decode(BigramStep(NEVER_STOPS), _dummy_state(3), np.array([1, 3, 5]), beam=beam)
    assert [len(ids) for ids in result.ids] == [0, 2, 4]  # max_lengths count the EOS
    assert result.ids[2].tolist() == [A, A, A, A]
    # the forced EOS is scored like any other id
    expected = [FLOOR, 2 * np.log(0.9) + FLOOR, 4 * np.log(0.9) + FLOOR]
    np.testing.assert_allclose(result.logprob, expected, rtol=1e-6)


class RowStep:
    """Row r wants to emit ``r`` copies of id A + r, then EOS; the state counts steps."""

    def __init__(self):
        self.calls = []

    def __call__(self, tokens, state, rows):
        self.calls.append(rows.copy())
        (count,) = state
        log_probs = np.full((len(rows), EXT), FLOOR)
        stop = count[:, 0] >= rows
        log_probs[np.arange(len(rows)), np.where(stop, EOS, A + rows % 3)] = 0.0
        return log_probs, (count + 1,)


@pytest.mark.parametrize("beam", [1, 2])
def test_step_receives_each_hypothesis_source_row(beam):
    n_rows = 4
    result = decode(RowStep(), (np.zeros((n_rows, 1), dtype=np.int64),), np.full(n_rows, 10), beam=beam)
    assert [ids.tolist() for ids in result.ids] == [[], [B], [C, C], [A, A, A]]
    np.testing.assert_allclose(result.logprob, 0.0)


def test_greedy_drops_finished_rows_from_the_batch():
    step = RowStep()
    n_rows = 4
    greedy_search(step, (np.zeros((n_rows, 1), dtype=np.int64),), np.full(n_rows, 10))
    # row r ends at step r: it is never passed to the step again
    assert [c.tolist() for c in step.calls] == [[0, 1, 2, 3], [1, 2, 3], [2, 3], [3]]


def test_greedy_stops_calling_the_step_when_every_row_is_done():
    step = BigramStep(_table({BOS: {EOS: 1.0}}))
    result = greedy_search(step, _dummy_state(5), np.full(5, 50))
    assert len(step.calls) == 1
    assert all(len(ids) == 0 for ids in result.ids)


class CountdownStep:
    """Each hypothesis counts up from its own start in the state; it emits an id that depends
    on the count and ends at 0. The output of a row says which state it was fed."""

    def __call__(self, tokens, state, rows):
        (count,) = state
        log_probs = np.full((len(rows), EXT), FLOOR)
        nxt = np.where(count[:, 0] >= 0, EOS, A + (-count[:, 0]) % 3)
        log_probs[np.arange(len(rows)), nxt] = 0.0
        return log_probs, (count + 1,)


@pytest.mark.parametrize("beam", [1, 2])
def test_state_stays_aligned_with_surviving_rows(beam):
    # rows finish out of order (0, 2, 3, 1), so a misaligned state would swap outputs
    state = (np.array([[0], [-3], [-1], [-2]], dtype=np.int64),)
    result = decode(CountdownStep(), state, np.full(4, 10), beam=beam)
    assert [ids.tolist() for ids in result.ids] == [[], [A, C, B], [B], [C, B]]


@pytest.mark.parametrize("seed", range(4))
def test_score_matches_a_step_by_step_rescoring(seed):
    step = RandomRNNStep(seed, 3)
    sequences = [np.array([], dtype=np.int64), np.array([4, 5, 6]), np.array([6, 4])]
    scores = score(step, (step.init,), sequences)
    for row, seq in enumerate(sequences):
        assert scores[row] == pytest.approx(_score(step, row, seq.tolist()), abs=1e-5)


def test_score_of_the_greedy_output_is_its_logprob():
    step = RandomRNNStep(5, 4)
    result = greedy_search(step, (step.init,), np.array([3, 5, 7, 9]))
    np.testing.assert_allclose(score(step, (step.init,), result.ids), result.logprob, atol=1e-5)


def test_score_with_source_rows_scores_several_candidates_per_row():
    step = RandomRNNStep(7, 3)
    sequences = [np.array([4, 5]), np.array([6]), np.array([], dtype=np.int64), np.array([5, 5, 4]), np.array([4])]
    rows = np.array([0, 0, 2, 2, 1])
    scores = score(step, (step.init,), sequences, rows)
    for k, (row, seq) in enumerate(zip(rows, sequences)):
        assert scores[k] == pytest.approx(_score(step, int(row), seq.tolist()), abs=1e-5)
    assert score(step, (step.init,), [], np.zeros(0, dtype=np.int64)).shape == (0,)


@pytest.mark.parametrize("seed", range(4))
def test_score_with_a_floor_is_exact_above_it_and_stops_early_below_it(seed):
    step = RandomRNNStep(seed, 4)
    sequences = [np.array([4, 5, 6, 4, 5, 6, 4]), np.array([6, 4]), np.array([5] * 9), np.array([4, 4, 4, 4])]
    full = score(step, (step.init,), sequences)
    floor = np.array([full[0] - 1.0, full[1] + 0.5, full[2] / 4, full[3] - 1e-9])
    calls = []

    def recorded(tokens, state, rows):
        calls.append(len(rows))
        return step(tokens, state, rows)

    cut = score(recorded, (step.init,), sequences, floor=floor)
    for k in (0, 3):  # never below their floor: exact
        assert cut[k] == pytest.approx(full[k], abs=1e-9)
    for k in (1, 2):  # below the floor: some value below it, and the answer "below" is right
        assert cut[k] < floor[k] and full[k] < floor[k]
    assert sum(calls) < sum(len(s) + 1 for s in sequences)  # the losers stopped early


@pytest.mark.parametrize("seed", range(6))
def test_greedy_following_a_sequence_resumes_its_score_where_the_two_part(seed):
    """Each followed sequence leaves the greedy path at a different point (never, at the first
    id, mid-way, by ending early, by going on after greedy ends); resuming there gives exactly
    the score a full rescoring gives, and following changes nothing about greedy's own result."""
    n_rows = 6
    step = RandomRNNStep(seed, n_rows, eos_bias=1.0)
    max_lengths = np.full(n_rows, 8)
    plain = greedy_search(step, (step.init,), max_lengths)
    g = [ids.tolist() for ids in plain.ids]
    other = lambda idx: A if idx != A else B  # noqa: E731
    follow = [
        g[0],                                   # the greedy output itself
        [other(g[1][0]) if g[1] else A, *g[1][1:]],  # differs at the first id
        [*g[2][:1], C, C, A],                   # shares one id, then its own way
        g[3][:-1],                              # a prefix: ends where greedy goes on
        [*g[4], A, B],                          # goes on where greedy ends
        [],                                     # empty
    ]
    follow = [np.array(f, dtype=np.int64) for f in follow]
    result = greedy_search(step, (step.init,), max_lengths, follow=follow)
    assert [ids.tolist() for ids in result.ids] == g
    np.testing.assert_array_equal(result.logprob, plain.logprob)
    rows = np.arange(n_rows)
    resumed = resume_score(step, result.diverged, follow, rows)
    full = score(step, (step.init,), follow)
    np.testing.assert_allclose(resumed, full, atol=1e-5)
    assert result.diverged.position[0] == len(g[0]) + 1  # the greedy output: nothing left to score
    # a floor stops resumed scoring as it stops full scoring: below the floor, or the exact score
    floor = full - 0.5
    floor[::2] = full[::2] + 0.5
    capped = resume_score(step, result.diverged, follow, rows, floor=floor)
    assert np.all((capped < floor) | np.isclose(capped, full, atol=1e-5))
    assert np.all(capped[1::2] == pytest.approx(full[1::2], abs=1e-5))
    subset = np.array([4, 1])
    np.testing.assert_allclose(resume_score(step, result.diverged, [follow[4], follow[1]], subset),
                               full[subset], atol=1e-5)
