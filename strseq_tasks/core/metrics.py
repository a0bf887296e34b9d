"""Evaluation metrics for string normalization. Pure Python and numpy.

- exact match: share of rows whose prediction equals the target;
- CER: character edit distance summed over rows, divided by total target length;
- harm: among rows whose input already equals the target, the share the model changed;
- harm at threshold: the same share counting only changes at or above a confidence threshold,
  the ones a cleaning job at that threshold writes (the others go to review);
- accuracy at coverage: accuracy of the most confident X% of rows;
- coverage at precision: the largest share of rows, taken most confident first, whose
  accuracy stays at or above the given precision (0 when even the single most confident row is wrong).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein

from strseq_tasks.params import THRESHOLD


def exact_match(predictions: Sequence[str], targets: Sequence[str]) -> float:
    if not targets:
        return float("nan")
    return sum(p == t for p, t in zip(predictions, targets, strict=True)) / len(targets)


def character_error_rate(predictions: Sequence[str], targets: Sequence[str]) -> float:
    total = sum(len(t) for t in targets)
    edits = sum(Levenshtein.distance(p, t) for p, t in zip(predictions, targets, strict=True))
    return edits / total if total else float("nan")


def harm(inputs: Sequence[str], predictions: Sequence[str], targets: Sequence[str]) -> float:
    """Share of already-clean rows (input == target) that the model changed; NaN if none."""
    clean = [(i, p) for i, p, t in zip(inputs, predictions, targets, strict=True) if i == t]
    if not clean:
        return float("nan")
    return sum(i != p for i, p in clean) / len(clean)


def harm_at_threshold(inputs: Sequence[str], predictions: Sequence[str], targets: Sequence[str],
                      confidence: Sequence[float], threshold: float) -> float:
    """Share of already-clean rows that the model changed with confidence >= ``threshold``: the
    harm a cleaning job at that threshold does (a change below it goes to review); NaN if none."""
    clean = [(i, p, c) for i, p, t, c in zip(inputs, predictions, targets, confidence, strict=True) if i == t]
    if not clean:
        return float("nan")
    return sum(i != p and c >= threshold for i, p, c in clean) / len(clean)


def _sorted_correct(correct: Sequence[bool], confidence: Sequence[float]) -> np.ndarray:
    order = np.argsort(-np.asarray(confidence, dtype=np.float64), kind="stable")
    return np.asarray(correct, dtype=np.float64)[order]


def accuracy_at_coverage(correct: Sequence[bool], confidence: Sequence[float], coverage: float) -> float:
    ranked = _sorted_correct(correct, confidence)
    if not len(ranked):
        return float("nan")
    keep = max(1, int(round(coverage * len(ranked))))
    return float(ranked[:keep].mean())


def coverage_at_precision(correct: Sequence[bool], confidence: Sequence[float], precision: float) -> float:
    """Largest share of rows above some confidence threshold with accuracy >= ``precision``.

    Only thresholds are counted: rows with tied confidence are taken all or none, so the
    figure does not depend on row order.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    order = np.argsort(-conf, kind="stable")
    ranked = np.asarray(correct, dtype=np.float64)[order]
    if not len(ranked):
        return float("nan")
    running = np.cumsum(ranked) / np.arange(1, len(ranked) + 1)
    sorted_conf = conf[order]
    boundary = np.append(sorted_conf[1:] != sorted_conf[:-1], True)  # last row of each tie group
    ok = np.nonzero((running >= precision - 1e-12) & boundary)[0]
    return float((ok[-1] + 1) / len(ranked)) if len(ok) else 0.0


def accuracy_at_threshold(
    correct: Sequence[bool], confidence: Sequence[float], threshold: float
) -> tuple[float, float]:
    """(coverage, accuracy) of the rows whose confidence is at least ``threshold``."""
    conf = np.asarray(confidence, dtype=np.float64)
    keep = conf >= threshold
    if not len(conf):
        return float("nan"), float("nan")
    accuracy = float(np.asarray(correct, dtype=np.float64)[keep].mean()) if keep.any() else float("nan")
    return float(keep.mean()), accuracy


def reliability_table(correct: Sequence[bool], confidence: Sequence[float], bins: int = 10) -> list[dict]:
    """Per confidence bin: rows, mean confidence and accuracy (empty bins are left out)."""
    conf = np.asarray(confidence, dtype=np.float64)
    corr = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    table = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            table.append(
                {
                    "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                    "rows": int(mask.sum()),
                    "confidence": float(conf[mask].mean()),
                    "accuracy": float(corr[mask].mean()),
                }
            )
    return table


def expected_calibration_error(correct: Sequence[bool], confidence: Sequence[float], bins: int = 10) -> float:
    table = reliability_table(correct, confidence, bins)
    total = sum(row["rows"] for row in table)
    if not total:
        return float("nan")
    return sum(row["rows"] * abs(row["accuracy"] - row["confidence"]) for row in table) / total


def summarize(
    inputs: Sequence[str],
    targets: Sequence[str],
    predictions: Sequence[str],
    confidence: Sequence[float],
    threshold: float = THRESHOLD.default,
) -> dict:
    """Every metric strseq reports, as one flat dict of floats (NaN where undefined)."""
    correct = [p == t for p, t in zip(predictions, targets, strict=True)]
    covered, accurate = accuracy_at_threshold(correct, confidence, threshold)
    return {
        "rows": len(targets),
        "exact_match": exact_match(predictions, targets),
        "cer": character_error_rate(predictions, targets),
        "harm": harm(inputs, predictions, targets),
        "harm_at_threshold": harm_at_threshold(inputs, predictions, targets, confidence, threshold),
        "clean_rows": sum(i == t for i, t in zip(inputs, targets, strict=True)),
        "accuracy_at_50": accuracy_at_coverage(correct, confidence, 0.5),
        "accuracy_at_80": accuracy_at_coverage(correct, confidence, 0.8),
        "coverage_at_99": coverage_at_precision(correct, confidence, 0.99),
        "threshold": threshold,
        "coverage_at_threshold": covered,
        "accuracy_at_threshold": accurate,
        "ece": expected_calibration_error(correct, confidence),
    }


def jsonable(metrics: dict) -> dict:
    """The metrics with NaN (undefined) values as None, as JSON wants them."""
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in metrics.items()}


def diff_segments(source: str, target: str) -> list[tuple[str, str]]:
    """``source`` edited into ``target`` as ``(kind, text)`` segments: ``=`` kept, ``-`` removed,
    ``+`` added (a replacement is a removal, then an addition)."""
    out = []
    for op, a1, a2, b1, b2 in difflib.SequenceMatcher(None, source, target, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(("=", source[a1:a2]))
        if op in ("delete", "replace"):
            out.append(("-", source[a1:a2]))
        if op in ("insert", "replace"):
            out.append(("+", target[b1:b2]))
    return out


def char_diff(source: str, target: str) -> str:
    """``source`` edited into ``target``: ``[-removed-]`` and ``{+added+}``, as in `git diff --word-diff`."""
    marks = {"=": "{}", "-": "[-{}-]", "+": "{{+{}+}}"}
    return "".join(marks[kind].format(text) for kind, text in diff_segments(source, target))
