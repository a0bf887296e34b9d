"""Confidence: the sequence probability, calibrated on held-out rows. numpy only.

The raw signal is the log-probability of the decoded output (EOS included). Its logit
``x = log p - log(1 - p)`` goes through Platt scaling, ``confidence = sigmoid(a * x + b)``,
fitted on the validation split by regularized logistic regression. The prior pulls toward
``a = 1, b = 0`` (the raw probability), so a validation split with few or no errors moves the
mapping little instead of collapsing it. ``a`` acts as an inverse temperature.
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

    def confidence(self, logprob: np.ndarray) -> np.ndarray:
        return _sigmoid(self.scale * _logit_of_logprob(logprob) + self.shift)

    def to_dict(self) -> dict:
        return asdict(self)


def fit_calibration(logprob: np.ndarray, correct: np.ndarray, prior: float = 1.0, steps: int = 100) -> Calibration:
    """Platt scaling by Newton's method on NLL + prior/2 * ((a - 1)^2 + b^2)."""
    x = _logit_of_logprob(logprob)
    y = np.asarray(correct, dtype=np.float64)
    if not len(x):
        return Calibration()
    x = np.clip(x, -50, 50)
    w = np.array([1.0, 0.0])
    features = np.stack([x, np.ones_like(x)], axis=1)
    for _ in range(steps):
        p = _sigmoid(features @ w)
        grad = features.T @ (p - y) + prior * (w - np.array([1.0, 0.0]))
        hess = (features * (p * (1 - p))[:, None]).T @ features + prior * np.eye(2)
        delta = np.linalg.solve(hess, grad)
        w -= delta
        if np.abs(delta).max() < 1e-9:
            break
    return Calibration(scale=float(w[0]), shift=float(w[1]))
