"""The promotion gates of a retrain: the decision, and the record each version keeps of it.

``decide`` (pure) holds the challenger's held-out figures against the gates' bounds and
production's exact match. A retrain records each gate as ``{"name", "passed", "measured",
"threshold", "detail"}`` under ``decision.gates``: ``models promote`` refuses a version with a
failed gate unless ``--force``, and ``models list`` says whether the version passed. Versions
published before gates were recorded this way keep only the gates' sentences
(``decision.reasons``, ``"pass: ..."``/``"FAIL: ..."``): ``recorded_gates`` reads those too, so a
version that failed a gate then is still refused now.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

# the gates of a retrain (``jobs.retrain.Gates``' fields), by the name each record carries
MIN_EXACT_MATCH, MAX_HARM, MAX_REGRESSION = "min_exact_match", "max_harm", "max_regression"


@dataclass(frozen=True)
class Gate:
    name: str  # min_exact_match, max_harm, max_regression
    passed: bool
    measured: float | None  # the challenger's figure (None: not recorded, an old version)
    threshold: float | None  # the bound it was held to (None: no bound, e.g. no model in production)
    detail: str  # the sentence a person reads: "harm 0.040 (2 of 50 ...) > maximum 0.020"


@dataclass(frozen=True)
class Decision:
    promote: bool
    reasons: list[str] = field(default_factory=list)  # each gate's sentence, what was measured against what
    gates: list[Gate] = field(default_factory=list)  # each gate as a record (name, passed, measured, threshold)

    def record(self) -> dict:  # what the version's publication record keeps (``recorded_gates`` reads it)
        return asdict(self)


def decide(challenger: dict, champion: dict | None, gates, promote: bool = True) -> Decision:
    """Whether the challenger replaces production, with a record and a reason per gate. ``gates``:
    the bounds (``jobs.retrain.Gates``: ``min_exact_match``, ``max_harm``, ``max_regression``)."""
    exact, harm = challenger["exact_match"], challenger["harm"]
    harm = 0.0 if harm != harm else harm  # NaN: no clean rows held out, nothing to harm
    clean = int(challenger.get("clean_rows") or 0)
    harmed = f" ({round(harm * clean)} of {clean} clean held-out values changed)"
    low, high = exact >= gates.min_exact_match, harm <= gates.max_harm
    checks = [Gate(MIN_EXACT_MATCH, low, exact, gates.min_exact_match,
                   f"exact match {exact:.3f} {'>=' if low else '<'} minimum {gates.min_exact_match:.3f}"),
              Gate(MAX_HARM, high, harm, gates.max_harm,
                   f"harm {harm:.3f}{harmed} {'<=' if high else '>'} maximum {gates.max_harm:.3f}")]
    if champion is None:
        checks.append(Gate(MAX_REGRESSION, True, exact, None, "no model in production yet"))
    else:
        floor = champion["exact_match"] - gates.max_regression
        checks.append(Gate(MAX_REGRESSION, exact >= floor, exact, floor,
                           f"exact match {exact:.3f} vs production's {champion['exact_match']:.3f} "
                           f"(allowed regression {gates.max_regression:.3f})"))
    reasons = [("pass: " if g.passed else "FAIL: ") + g.detail for g in checks]
    passed = all(g.passed for g in checks)
    if passed and not promote:
        reasons.append("promotion turned off for this run (promote=False): published as candidate only")
    return Decision(passed and promote, reasons, checks)


def _number(value: object) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _legacy(reason: str) -> Gate | None:
    """A gate from a sentence of an older record (``"FAIL: harm 0.040 > maximum 0.020"``)."""
    verdict, sep, text = reason.partition(": ")
    if not sep or verdict not in ("pass", "FAIL"):
        return None  # "promotion turned off for this run ...": not a gate
    name = (MAX_HARM if text.startswith("harm") else MAX_REGRESSION if "production" in text
            else MIN_EXACT_MATCH if text.startswith("exact match") else "gate")
    return Gate(name, verdict == "pass", None, None, text)


def recorded_gates(publication: dict) -> list[Gate]:
    """The gates recorded with a version (none for a version published without a retrain)."""
    decision = publication.get("decision")
    if not isinstance(decision, dict):
        return []
    gates = decision.get("gates")
    if isinstance(gates, list):
        return [Gate(str(g.get("name", "gate")), g.get("passed") is True, _number(g.get("measured")),
                     _number(g.get("threshold")), str(g.get("detail", ""))) for g in gates if isinstance(g, dict)]
    reasons = decision.get("reasons")
    return [g for r in reasons if isinstance(r, str) and (g := _legacy(r))] if isinstance(reasons, list) else []


def failed_gates(publication: dict) -> list[Gate]:
    return [g for g in recorded_gates(publication) if not g.passed]
