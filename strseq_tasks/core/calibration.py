"""Confidence: the sequence probability, calibrated on held-out rows. numpy only.

The raw signal is the log-probability of the decoded output (EOS included). Its logit
``x = log p - log(1 - p)`` goes through Platt scaling, ``confidence = sigmoid(a * x + b)``,
fitted on the validation split by regularized logistic regression. The prior pulls toward
``a = 1, b = 0`` (the raw probability), so a validation split with few or no errors moves the
mapping little instead of collapsing it. ``a`` acts as an inverse temperature.

With known values (``known``), how an output was reached says much about it: an input that is
itself a known value was kept (it is right unless it is a valid value used by mistake), one
snapped to a near value is right as often as the snapping is. Two more terms, ``known_shift``
for kept known values and ``snap_shift`` for snapped ones, are fitted alongside (prior 0: they
stay 0 without known values).

Inputs of a shape the model never learned from (``shapes.py``: a layout without its values) are
right less often at the same probability: ``novel_shift`` is added for them. Its prior is
``novel_prior`` rather than 0: the validation rows hold few novel layouts, too few to learn the
shift from alone, and a real column holds more (the column benchmark's development draws chose
the prior; docs/benchmarks.md, "Confidence on layouts the pairs do not have"). Inputs holding a
character no training input held get ``unseen_char_shift``, prior ``unseen_char_prior``, chosen
the same way; outputs that treat an input word unlike every training pair did
(``words.WordTreatment``) get ``disagree_shift``, prior ``disagree_prior``; outputs that lose a
letter or digit beyond ASCII that no training input held (``shapes.lost_chars``: the model
discarded what no pair showed it discard) get ``lost_char_shift``, prior ``lost_char_prior``,
strong enough to outweigh a model that is sure of itself: its certainty says nothing about a
character it never saw.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def _logit_of_logprob(logprob: np.ndarray) -> np.ndarray:
    logprob = np.minimum(np.asarray(logprob, dtype=np.float64), -1e-9)
    return logprob - np.log(-np.expm1(logprob))  # log p - log(1 - p), stable near p = 1


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@dataclass(frozen=True)
class Calibration:
    scale: float = 1.0  # a
    shift: float = 0.0  # b
    known_shift: float = 0.0  # added for outputs that kept an input which is a known value
    snap_shift: float = 0.0  # added for outputs snapped to a known value near the input
    novel_shift: float = 0.0  # added for inputs of a shape the model never learned from
    unseen_char_shift: float = 0.0  # added for inputs holding a character no training input held
    disagree_shift: float = 0.0  # added for outputs treating an input word unlike every training pair
    lost_char_shift: float = 0.0  # added for outputs lacking a non-ASCII letter or digit no training input held

    def confidence(self, logprob: np.ndarray, distance: np.ndarray | None = None,
                   novel: np.ndarray | None = None, unseen: np.ndarray | None = None,
                   disagree: np.ndarray | None = None, lost: np.ndarray | None = None) -> np.ndarray:
        """Calibrated confidence; ``distance`` from ``transduce`` (None: no known values),
        ``novel`` per row whether its input's shape is new to the model, ``unseen`` whether it holds
        a character no training input held, ``disagree`` whether its output treats a word unlike
        the pairs, ``lost`` whether its output lacks a non-ASCII letter or digit no training input held
        (None: not known)."""
        z = self.scale * _logit_of_logprob(logprob) + self.shift
        if distance is not None:
            distance = np.asarray(distance)
            z = z + self.known_shift * (distance == 0) + self.snap_shift * (distance > 0)
        if novel is not None:
            z = z + self.novel_shift * np.asarray(novel, dtype=np.float64)
        if unseen is not None:
            z = z + self.unseen_char_shift * np.asarray(unseen, dtype=np.float64)
        if disagree is not None:
            z = z + self.disagree_shift * np.asarray(disagree, dtype=np.float64)
        if lost is not None:
            z = z + self.lost_char_shift * np.asarray(lost, dtype=np.float64)
        return _sigmoid(z)

    def to_dict(self) -> dict:
        return asdict(self)


def fit_calibration(logprob: np.ndarray, correct: np.ndarray, prior: float = 1.0, steps: int = 100,
                    distance: np.ndarray | None = None, novel: np.ndarray | None = None,
                    novel_prior: float = 0.0, unseen: np.ndarray | None = None,
                    unseen_char_prior: float = 0.0, disagree: np.ndarray | None = None,
                    disagree_prior: float = 0.0, lost: np.ndarray | None = None,
                    lost_char_prior: float = 0.0, scale_floor: float | None = None) -> Calibration:
    """Platt scaling: minimize NLL + prior/2 * ((a - 1)^2 + b^2 + known_shift^2 + snap_shift^2
    + (novel_shift - novel_prior)^2 + (unseen_char_shift - unseen_char_prior)^2
    + (disagree_shift - disagree_prior)^2 + (lost_char_shift - lost_char_prior)^2). Without
    ``novel`` (None), ``novel_shift`` is 0; without ``unseen``, ``unseen_char_shift`` is; and so on
    for ``disagree`` and ``lost``.

    ``scale_floor`` (None: none) bounds ``a`` from below: confidence must rise with the model's
    certainty. Validation rows whose few errors are all near-certain (label noise: a target that
    contradicts its own input) otherwise fit ``a`` at about 0, every row gets the same confidence
    and the ranking is gone. Where the fit falls below the floor, ``a`` is held at it and the rest
    refitted (the objective is convex, so that is the bounded minimum).

    Newton's method with a backtracking line search: on nearly separable validation data (a model
    that is right on every confident row) plain Newton steps overshoot to absurd scales, while
    the objective is strictly convex and its minimum moderate."""
    x = _logit_of_logprob(logprob)
    y = np.asarray(correct, dtype=np.float64)
    if not len(x):
        return Calibration()
    x = np.clip(x, -50, 50)
    d = np.full(len(x), -1) if distance is None else np.asarray(distance)
    # the flag terms: a column of 0/1 per row and the prior mean of its shift (0 and 0 when not given)
    flags = [(novel, novel_prior), (unseen, unseen_char_prior), (disagree, disagree_prior), (lost, lost_char_prior)]
    start = np.array([1.0, 0.0, 0.0, 0.0, *(p if f is not None else 0.0 for f, p in flags)])
    features = np.stack([x, np.ones_like(x), (d == 0).astype(np.float64), (d > 0).astype(np.float64),
                         *(np.zeros(len(x)) if f is None else np.asarray(f, dtype=np.float64) for f, _ in flags)],
                        axis=1)

    w = _newton(features, y, start, prior, steps, np.zeros(len(x)))
    if scale_floor is not None and w[0] < scale_floor:  # hold a at the floor, refit the rest around it
        w = np.array([scale_floor, *_newton(features[:, 1:], y, start[1:], prior, steps, scale_floor * x)])
    return Calibration(scale=float(w[0]), shift=float(w[1]), known_shift=float(w[2]), snap_shift=float(w[3]),
                       novel_shift=float(w[4]), unseen_char_shift=float(w[5]), disagree_shift=float(w[6]),
                       lost_char_shift=float(w[7]))


def _newton(features: np.ndarray, y: np.ndarray, start: np.ndarray, prior: float, steps: int,
            offset: np.ndarray) -> np.ndarray:
    """argmin over w of NLL(sigmoid(features @ w + offset)) + prior/2 * |w - start|^2: Newton's method with a
    backtracking line search."""
    def objective(w: np.ndarray) -> float:
        z = features @ w + offset
        nll = np.sum(np.logaddexp(0.0, z) - y * z)  # -log-likelihood of sigmoid(z), stable
        return float(nll + 0.5 * prior * np.sum((w - start) ** 2))

    w = start.copy()
    value = objective(w)
    for _ in range(steps):
        p = _sigmoid(features @ w + offset)
        grad = features.T @ (p - y) + prior * (w - start)
        hess = (features * (p * (1 - p))[:, None]).T @ features + prior * np.eye(len(start))
        delta = np.linalg.solve(hess, grad)
        step = 1.0
        while step > 1e-10 and (trial := objective(w - step * delta)) > value - 1e-4 * step * float(grad @ delta):
            step /= 2
        if step <= 1e-10:
            break  # no descent left: at the minimum up to rounding
        w, value = w - step * delta, trial
        if np.abs(step * delta).max() < 1e-9:
            break
    return w
