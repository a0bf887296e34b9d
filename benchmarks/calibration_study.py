"""Confidence variants refitted on the column benchmark's trained cells, without training again.

    .venv/bin/python benchmarks/column_accuracy.py --dev --sizes 200 --rows /tmp/rows   # trains, writes rows
    .venv/bin/python benchmarks/calibration_study.py /tmp/rows

``column_accuracy.py --rows DIR`` writes, per cell, what calibration sees on the validation rows
training fitted it on and on the test rows (log-probability, known-value distance, whether the
input's shape is one the model learned from). This script refits the calibration on each cell's
validation rows the way training does (``core.calibration.fit_calibration``), once per variant,
and reports coverage at 99% precision on the cell's test rows, per family (mean over the seeds):

- ``none``: no novelty term (strseq before shapes);
- ``novel prior P``: the ``novel_shift`` term with prior mean P (``TrainConfig.novel_prior``);
- ``novel -3, unseen chars P``: beside it, ``unseen_char_shift`` for inputs holding a character
  no training input held, with prior P (``TrainConfig.unseen_char_prior``; the default: -3, -2);
- ``unseen words``: instead, a shift per word of the input not among the training inputs' words;
- ``... rewritten P``: beside the default terms, a shift (prior P) for rows whose output does not
  keep (in any case) a word of the input that no training input held: the model changed a
  word it never saw changed ("Boone" -> "Bone", "Sq" -> "St", an Irish "Ó" dropped), where a
  new word merely copied (a new surname) says nothing. Fitted through ``fit_calibration``'s
  ``unseen`` term on the flag "unseen character or rewritten word", and as a separate term.
- ``default terms, prior strength S``: the default terms, every weight pulled toward its prior S
  times harder (``fit_calibration``'s ``prior``; training uses 1): validation rows with few
  errors fit a flat scale (quantities, seed 101: 0.30), and a stronger pull would keep the
  log-probability in charge. Not adopted (docs/benchmarks.md).
- ``... disagrees -2, its slope P``: the default terms, and for the rows whose output treats a word
  unlike the pairs a log-probability weight of their own (prior P): not adopted (docs/benchmarks.md).
- ``default, disagrees without what words become``: the default terms, the word flag without its
  newest check (an output lacking what every pair holding a word or fraction rewrote it into:
  "1433pound" -> "1433 pb" where the pairs wrote "lb"), against ``default`` with it.
- ``default, disagrees: also a last word outside a closed class, unseen mass M``: the word flag
  also raised for an output whose last word no training target ended in, where the targets' last
  words are a closed class (a street type, a unit, a legal form: the Good-Turing estimate of an
  unseen last word, the share of targets whose last word is theirs alone, at most M;
  ``words.closed_last``), against ``default (disagrees: also what words become)`` without it; for
  these the script also reports harm and the share sent to review at ``THRESHOLD``.
- ``default, lost chars P``: the default terms and ``lost_char_shift`` with prior P for outputs
  lacking a letter or digit of the input no training input held (``shapes.lost_chars``: an Irish
  "Ó" dropped as if it were a middle initial); ``P = none`` is the default before it. For these
  the script also reports, at confidence 0.9 (the cleaning job's default threshold), harm (the
  share of already-clean test rows a cleaning job would change) and the share of test rows it
  would send to review.

Exact match does not change: calibration only orders the rows.

``--floors`` instead refits, per cell of the rows folder, the default calibration with a floor on
the log-probability's weight (``fit_calibration``'s ``scale_floor``; none, and each of
``FLOORS``): coverage at 99% precision, harm and the share sent to review at ``THRESHOLD``, per
family and floor (mean over the seeds), and the cells where the fit fell below a floor. Rows
whose errors are all near-certain fit the weight at about 0 (dates, 200 pairs, seed 2: -0.001,
coverage 0), so that every row gets the same confidence.

``--leave-one-out CELLS.json`` instead refits, per cell, the default calibration (every term, as
training fits it) and the same without each term in turn, and scores coverage at 99% precision,
harm at 0.9 and the share sent to review at 0.9 on the test rows, from the flags the rows hold
(what the served model computed). Each cell's figures are added to CELLS.json (a cell measured
again replaces its entry), so a results file grows over runs whose rows folders are gone; the
table printed is over every cell in it (per family and size, mean over the seeds):

    .venv/bin/python benchmarks/column_accuracy.py --sizes 1000 --rows /tmp/rows1000 ...
    .venv/bin/python benchmarks/calibration_study.py /tmp/rows1000 \
        --leave-one-out benchmarks/results/columns/calibration-terms.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from strseq_tasks.core.calibration import _logit_of_logprob, _sigmoid, fit_calibration  # noqa: E402
from strseq_tasks.core.metrics import coverage_at_precision, harm_at_threshold  # noqa: E402
from strseq_tasks.core.shapes import lost_chars  # noqa: E402
from strseq_tasks.core.words import MAX_UNSEEN_LAST, WordTreatment, closed_last  # noqa: E402
from strseq_tasks.learn.training import TrainConfig, split_for_training  # noqa: E402

PRIORS = (0.0, -1.0, -2.0, -3.0, -4.0, -5.0)
CHAR_PRIORS = (0.0, -1.0, -2.0, -3.0)
SLOPES = (0.0, -0.25, -0.5, -0.75, -1.0)
STRENGTHS = (1.0, 3.0, 10.0, 30.0)
LOST_PRIORS = (None, 0.0, -2.0, -5.0, -8.0, -12.0, -20.0)
FLOORS = (None, 0.05, 0.1, 0.25, 0.5, 0.75)
LAST_UNSEEN = (0.02, 0.05, 0.1, 0.2)
THRESHOLD = 0.9  # the cleaning job's default
WORD = re.compile(r"[^\W\d_]+")


def _words(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)}


def _columns(rows: list[dict], chars: set[str]):
    logprob = np.array([r["logprob"] for r in rows])
    correct = np.array([r["output"] == r["target"] for r in rows])
    distance = np.array([r["distance"] for r in rows])
    novel = np.array([bool(r["novel"]) for r in rows])
    unseen = np.array([not chars.issuperset(r["input"]) for r in rows])
    return logprob, correct, distance, novel, unseen


def _rewritten(rows: list[dict], vocabulary: set[str]) -> np.ndarray:
    """Per row: the output drops or changes a word of the input no training input held."""
    return np.array([bool((_words(r["input"]) - vocabulary) - _words(r["output"])) for r in rows])


def _default_features(rows: list[dict], chars: set[str]) -> np.ndarray:
    """Per row, what the default calibration weighs before any flag of a variant: the
    log-probability's logit, a constant, kept and snapped known values, a novel layout, an unseen
    character."""
    lp, _, d, new, unseen = _columns(rows, chars)
    x = np.clip(_logit_of_logprob(lp), -50, 50)
    return np.stack([x, np.ones_like(x), (d == 0) * 1.0, (d > 0) * 1.0, new * 1.0, unseen * 1.0], axis=1)


def _fitted_coverage(features, val: list[dict], test: list[dict], start: list[float]) -> float:
    """Coverage at 99% precision on ``test`` of a Platt fit on ``val`` over ``features(rows)``, its
    weights pulled toward ``start``: Newton on the same penalized likelihood as fit_calibration
    (prior 1)."""
    f, y = features(val), np.array([r["output"] == r["target"] for r in val], dtype=float)
    start = np.array(start)
    w = start.copy()
    for _ in range(100):
        p = _sigmoid(f @ w)
        grad = f.T @ (p - y) + (w - start)
        hess = (f * (p * (1 - p))[:, None]).T @ f + np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w = w - step
        if np.abs(step).max() < 1e-9:
            break
    correct = np.array([r["output"] == r["target"] for r in test])
    return coverage_at_precision(correct, _sigmoid(features(test) @ w), 0.99)


def _flag_coverage(val: list[dict], test: list[dict], flag, chars: set[str], prior: float) -> float:
    """The default terms (novel -3, unseen characters -2) and a shift of prior ``prior`` for the rows
    ``flag(rows)`` marks."""
    def features(rows):
        return np.column_stack([_default_features(rows, chars), flag(rows) * 1.0])

    return _fitted_coverage(features, val, test, [1.0, 0.0, 0.0, 0.0, -3.0, -2.0, prior])


def _unseen_words_coverage(val: list[dict], test: list[dict], vocabulary: set[str]) -> float:
    """A Platt fit with a shift per unseen word (prior 0) instead of the novelty term."""
    def features(rows):
        x = np.clip(_logit_of_logprob([r["logprob"] for r in rows]), -50, 50)
        d = np.array([r["distance"] for r in rows])
        unseen = np.array([float(len(_words(r["input"]) - vocabulary)) for r in rows])
        return np.stack([x, np.ones_like(x), (d == 0) * 1.0, (d > 0) * 1.0, unseen], axis=1)

    return _fitted_coverage(features, val, test, [1.0, 0.0, 0.0, 0.0, 0.0])


def _slope_coverage(val: list[dict], test: list[dict], chars: set[str], treatment: WordTreatment,
                    slope: float) -> float:
    """The default terms (novel -3, unseen characters -2, disagrees -2) and, for the rows whose output
    treats a word unlike the pairs, a change of the log-probability's weight (prior ``slope``): how
    sure the model is says less about a row where it did what no pair showed."""
    def features(rows):
        base = _default_features(rows, chars)
        dis = np.array([treatment.disagrees(r["input"], r["output"]) for r in rows], dtype=float)
        return np.column_stack([base, dis, dis * base[:, 0]])

    return _fitted_coverage(features, val, test, [1.0, 0.0, 0.0, 0.0, -3.0, -2.0, -2.0, slope])


def _lost_variants(val: list[dict], test: list[dict], chars: set[str], treatment: WordTreatment,
                   table: dict, at_threshold: dict, family: str) -> None:
    """The default terms, with and without the lost-character term at each prior: coverage at 99%
    precision into ``table``, harm and the share sent to review at ``THRESHOLD`` into
    ``at_threshold``."""
    known = "".join(sorted(chars))
    flags = []
    for rows in (val, test):
        lp, ok, d, new, unseen = _columns(rows, chars)
        dis = [treatment.disagrees(r["input"], r["output"]) for r in rows]
        lost = lost_chars([r["input"] for r in rows], [r["output"] for r in rows], known)
        flags.append((lp, ok, d, {"novel": new, "unseen": unseen, "disagree": dis, "lost": lost}))
    (v_lp, v_ok, v_d, v_flags), (t_lp, t_ok, t_d, t_flags) = flags
    priors = TrainConfig().calibration_settings()
    for prior in LOST_PRIORS:
        given = dict(v_flags, lost=None) if prior is None else v_flags
        fitted = fit_calibration(v_lp, v_ok, distance=v_d, **given, **dict(priors, lost_char_prior=prior or 0.0))
        conf = fitted.confidence(t_lp, t_d, **t_flags)
        name = f"default, lost chars {'none' if prior is None else f'{prior:g}'}"
        table[name][family].append(coverage_at_precision(t_ok, conf, 0.99))
        harm = harm_at_threshold([r["input"] for r in test], [r["output"] for r in test],
                                 [r["target"] for r in test], conf, THRESHOLD)
        at_threshold["harm"][name][family].append(0.0 if np.isnan(harm) else harm)
        at_threshold["review"][name][family].append(float(np.mean(conf < THRESHOLD)))


def study(rows_dir: Path) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[int]], dict[str, dict]]:
    """(coverage per variant and family, one value per seed; per family, the test rows only the
    newest word check flags and how many of them are wrong; harm and review share at
    ``THRESHOLD`` of the lost-character variants, the same way)."""
    table: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    at_threshold = {k: defaultdict(lambda: defaultdict(list)) for k in ("harm", "review")}
    newest: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for path in sorted(rows_dir.glob("*.json")):
        cell = json.loads(path.read_text(encoding="utf-8"))
        if "validation" not in cell:
            continue  # written before the rows held what calibration sees
        family, _, seed = path.stem.rpartition("-s")
        family = family.rsplit("-", 1)[0]
        val, test = cell["validation"], cell["test_scored"]
        cfg = TrainConfig(seed=int(seed))
        train = split_for_training([tuple(p) for p in cell["train"]], cfg, 1024)[2]  # as training reads them
        chars = set().union(*(a for a, _ in train))  # what training stores as decoding.input_chars
        v_lp, v_ok, v_d, v_new, v_chars = _columns(val, chars)
        t_lp, t_ok, t_d, t_new, t_chars = _columns(test, chars)
        base = fit_calibration(v_lp, v_ok, distance=v_d)
        table["none"][family].append(coverage_at_precision(t_ok, base.confidence(t_lp, t_d), 0.99))
        for prior in PRIORS:
            fitted = fit_calibration(v_lp, v_ok, distance=v_d, novel=v_new, novel_prior=prior)
            table[f"novel prior {prior:g}"][family].append(
                coverage_at_precision(t_ok, fitted.confidence(t_lp, t_d, t_new), 0.99))
        for prior in CHAR_PRIORS:
            fitted = fit_calibration(v_lp, v_ok, distance=v_d, novel=v_new, novel_prior=-3.0, unseen=v_chars,
                                     unseen_char_prior=prior)
            table[f"novel -3, unseen chars {prior:g}"][family].append(
                coverage_at_precision(t_ok, fitted.confidence(t_lp, t_d, t_new, t_chars), 0.99))
        vocabulary = set().union(*(_words(a) for a, _ in train))
        table["unseen words"][family].append(_unseen_words_coverage(val, test, vocabulary))
        treatment = WordTreatment.of(train)  # what training stores as decoding.words
        v_dis = np.array([treatment.disagrees(r["input"], r["output"]) for r in val])
        t_dis = np.array([treatment.disagrees(r["input"], r["output"]) for r in test])
        for prior in CHAR_PRIORS:
            table[f"novel -3, unseen chars -2, rewritten {prior:g}"][family].append(
                _flag_coverage(val, test, partial(_rewritten, vocabulary=vocabulary), chars, prior))
        for prior in CHAR_PRIORS:
            fitted = fit_calibration(v_lp, v_ok, distance=v_d, novel=v_new, novel_prior=-3.0, unseen=v_chars,
                                     unseen_char_prior=-2.0, disagree=v_dis, disagree_prior=prior)
            table[f"novel -3, unseen chars -2, disagrees {prior:g}"][family].append(
                coverage_at_precision(t_ok, fitted.confidence(t_lp, t_d, t_new, t_chars, t_dis), 0.99))
        for strength in STRENGTHS:
            fitted = fit_calibration(v_lp, v_ok, prior=strength, distance=v_d, novel=v_new, unseen=v_chars,
                                     disagree=v_dis, **TrainConfig().calibration_settings())
            table[f"default terms, prior strength {strength:g}"][family].append(
                coverage_at_precision(t_ok, fitted.confidence(t_lp, t_d, t_new, t_chars, t_dis), 0.99))
        for slope in SLOPES:
            table[f"novel -3, unseen chars -2, disagrees -2, its slope {slope:g}"][family].append(
                _slope_coverage(val, test, chars, treatment, slope))
        targets = [b for _, b in train]
        before_rewrites = replace(treatment, rewrites=None, last=None)
        for variant, words in (("default, disagrees without what words become", before_rewrites),
                               ("default (disagrees: also what words become)", replace(treatment, last=None)),
                               *((f"default, disagrees: also a last word outside a closed class, unseen mass "
                                  f"{mu:g}{' (default)' if mu == MAX_UNSEEN_LAST else ''}",
                                  replace(treatment, last=closed_last(targets, mu))) for mu in LAST_UNSEEN)):
            v_dis, t_dis = ([words.disagrees(r["input"], r["output"]) for r in rows] for rows in (val, test))
            fitted = fit_calibration(v_lp, v_ok, distance=v_d, novel=v_new, unseen=v_chars, disagree=v_dis,
                                     **TrainConfig().calibration_settings())
            conf = fitted.confidence(t_lp, t_d, t_new, t_chars, t_dis)
            table[variant][family].append(coverage_at_precision(t_ok, conf, 0.99))
            harm = harm_at_threshold([r["input"] for r in test], [r["output"] for r in test],
                                     [r["target"] for r in test], conf, THRESHOLD)
            at_threshold["harm"][variant][family].append(0.0 if np.isnan(harm) else harm)
            at_threshold["review"][variant][family].append(float(np.mean(conf < THRESHOLD)))
        _lost_variants(val, test, chars, treatment, table, at_threshold, family)
        before = replace(treatment, last=None)
        for r in test:
            if treatment.disagrees(r["input"], r["output"]) and not before.disagrees(r["input"], r["output"]):
                newest[family][0] += 1
                newest[family][1] += r["output"] != r["target"]
    return table, newest, at_threshold


TERMS = {"novel": "novelty", "unseen": "unseen characters", "disagree": "words", "lost": "lost characters"}
STORED = {"novel": "novel", "unseen": "unseen_char", "disagree": "disagree", "lost": "lost_char"}  # keys in rows


def _stored_flags(rows: list[dict]) -> dict[str, np.ndarray | None]:
    """The calibration flags the rows hold (None for a flag a row does not know)."""
    return {term: None if any(r.get(key) is None for r in rows) else np.array([bool(r[key]) for r in rows])
            for term, key in STORED.items()}


def default_calibration(val: list[dict]):
    """The calibration training fits on these validation rows: every term at its default prior."""
    lp, ok, d = _columns(val, set())[:3]
    return fit_calibration(lp, ok, distance=d, **_stored_flags(val), **TrainConfig().calibration_settings())


def leave_one_out(val: list[dict], test: list[dict]) -> dict[str, dict[str, float]]:
    """The default calibration refitted on ``val`` as training fits it (``default_calibration``),
    and the same without each term in turn: coverage at 99% precision, harm and the share sent to
    review at ``THRESHOLD`` on ``test``."""
    (v_lp, v_ok, v_d), (t_lp, t_ok, t_d) = (_columns(rows, set())[:3] for rows in (val, test))
    v_flags, t_flags = _stored_flags(val), _stored_flags(test)
    out = {}
    for left in (None, *TERMS):
        if left is not None and (v_flags[left] is None or t_flags[left] is None):
            continue  # rows from before the flag: nothing to leave out
        fitted = fit_calibration(v_lp, v_ok, distance=v_d, **{k: None if k == left else f for k, f in v_flags.items()},
                                 **TrainConfig().calibration_settings())
        conf = fitted.confidence(t_lp, t_d, **{k: None if k == left else f for k, f in t_flags.items()})
        harm = harm_at_threshold([r["input"] for r in test], [r["output"] for r in test],
                                 [r["target"] for r in test], conf, THRESHOLD)
        out["default" if left is None else f"without {TERMS[left]}"] = {
            "coverage_at_99": coverage_at_precision(t_ok, conf, 0.99), "harm_at_threshold": 0.0 if np.isnan(harm)
            else float(harm), "review_at_threshold": float(np.mean(conf < THRESHOLD))}
    return out


def floor_variants(val: list[dict], test: list[dict]) -> dict[str, dict[str, float]]:
    """The default calibration refitted on ``val`` with each of ``FLOORS`` under its
    log-probability weight: the fitted weight, coverage at 99% precision, harm and the share sent
    to review at ``THRESHOLD`` on ``test``."""
    (v_lp, v_ok, v_d), (t_lp, t_ok, t_d) = (_columns(rows, set())[:3] for rows in (val, test))
    v_flags, t_flags = _stored_flags(val), _stored_flags(test)
    out = {}
    for floor in FLOORS:
        fitted = fit_calibration(v_lp, v_ok, distance=v_d, **v_flags,
                                 **dict(TrainConfig().calibration_settings(), scale_floor=floor))
        conf = fitted.confidence(t_lp, t_d, **t_flags)
        harm = harm_at_threshold([r["input"] for r in test], [r["output"] for r in test],
                                 [r["target"] for r in test], conf, THRESHOLD)
        out["none" if floor is None else f"{floor:g}"] = {
            "scale": fitted.scale, "coverage_at_99": coverage_at_precision(t_ok, conf, 0.99),
            "harm_at_threshold": 0.0 if np.isnan(harm) else float(harm),
            "review_at_threshold": float(np.mean(conf < THRESHOLD))}
    return out


def floor_table(rows_dir: Path) -> tuple[dict, str]:
    """``floor_variants`` of every cell of a ``--rows`` folder (by ``family-pairs-sSEED``) and a markdown
    table: per family and size (mean over its seeds) and floor, coverage at 99% / harm at 0.9 / review
    at 0.9; then the mean coverage per floor and the cells whose fit fell below it."""
    cells = {}
    for path in sorted(rows_dir.glob("*.json")):
        cell = json.loads(path.read_text(encoding="utf-8"))
        if "validation" in cell:
            cells[path.stem] = floor_variants(cell["validation"], cell["test_scored"])
    floors = ["none", *(f"{f:g}" for f in FLOORS if f is not None)]
    groups = sorted({stem.rsplit("-", 1)[0] for stem in cells},
                    key=lambda g: (g.rsplit("-", 1)[0], int(g.rsplit("-", 1)[1])))
    lines = ["| family, pairs | seeds | " + " | ".join(f"floor {f}" for f in floors) + " |",
             "|---|---:|" + "---|" * len(floors)]
    coverage = defaultdict(list)
    for group in groups:
        runs = [v for stem, v in cells.items() if stem.rsplit("-", 1)[0] == group]
        texts = []
        for floor in floors:
            mean = {k: 100 * float(np.mean([r[floor][k] for r in runs])) for k in runs[0][floor] if k != "scale"}
            coverage[floor].append(mean["coverage_at_99"])
            texts.append(f"{mean['coverage_at_99']:.1f} / {mean['harm_at_threshold']:.1f} / "
                         f"{mean['review_at_threshold']:.1f}")
        lines.append(f"| {group.replace('-', ', ')} | {len(runs)} | " + " | ".join(texts) + " |")
    lines.append("| mean coverage | | " + " | ".join(f"{np.mean(coverage[f]):.1f}" for f in floors) + " |")
    lines.append("| cells below the floor (fitted weight) | | " + " | ".join(
        ", ".join(f"{stem} ({v['none']['scale']:.2f})" for stem, v in cells.items()
                  if floor != "none" and v["none"]["scale"] < float(floor)) for floor in floors) + " |")
    return cells, "\n".join(lines)


def leave_one_out_cells(rows_dir: Path) -> dict[str, dict]:
    """``leave_one_out`` of every cell of a ``--rows`` folder, by ``family-pairs-sSEED``."""
    cells = {}
    for path in sorted(rows_dir.glob("*.json")):
        cell = json.loads(path.read_text(encoding="utf-8"))
        if "validation" not in cell:
            continue
        stem, _, seed = path.stem.rpartition("-s")
        family, _, pairs = stem.rpartition("-")
        refit, served = default_calibration(cell["validation"]).to_dict(), cell.get("calibration", {})
        same = all(abs(v - served.get(k, float("nan"))) < 1e-4 for k, v in refit.items())  # float noise: ~1e-6
        cells[path.stem] = {"family": family, "pairs": int(pairs), "seed": int(seed), "commit": cell.get("commit"),
                            # the refit is the bundle's own calibration (else the figures are of another fit)
                            "refit_is_served": same,
                            "variants": leave_one_out(cell["validation"], cell["test_scored"])}
    return cells


def _mean_of(runs: list[dict], variant: str, key: str) -> float | None:
    values = [100 * r[variant][key] for r in runs if variant in r]
    return float(np.mean(values)) if values else None


def leave_one_out_table(cells: dict[str, dict]) -> str:
    """Per family and size, mean over its seeds: the default's coverage at 99% precision / harm at
    0.9 / review share at 0.9, and each variant's change of coverage against it (points)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for cell in cells.values():
        groups[(cell["family"], cell["pairs"])].append(cell["variants"])
    left = [f"without {name}" for name in TERMS.values()]
    lines = ["| family | pairs | seeds | default: coverage at 99% / harm at 0.9 / review at 0.9 | "
             + " | ".join(f"{v}: coverage" for v in left) + " |", "|---|---:|---:|---|" + "---:|" * len(left)]
    for (family, pairs), runs in sorted(groups.items()):
        mean = partial(_mean_of, runs)
        base = mean("default", "coverage_at_99")
        cells_text = [f"{mean(v, 'coverage_at_99') - base:+.1f}" if mean(v, "coverage_at_99") is not None else "n/a"
                      for v in left]
        lines.append(f"| {family} | {pairs} | {len(runs)} | {base:.1f} / {mean('default', 'harm_at_threshold'):.1f} / "
                     f"{mean('default', 'review_at_threshold'):.1f} | " + " | ".join(cells_text) + " |")
    return "\n".join(lines)


def markdown(table: dict[str, dict[str, list[float]]]) -> str:
    families = sorted({f for by_family in table.values() for f in by_family})
    lines = ["| calibration | " + " | ".join(families) + " | mean |", "|---|" + "---:|" * (len(families) + 1)]
    for variant, by_family in table.items():
        means = [100 * float(np.mean(by_family[f])) for f in families]
        lines.append(f"| {variant} | " + " | ".join(f"{m:.1f}" for m in means) + f" | {np.mean(means):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", type=Path, help="the --rows folder of a column_accuracy.py run")
    parser.add_argument("--json", type=Path, default=None, help="also write the table here")
    parser.add_argument("--leave-one-out", type=Path, default=None, metavar="CELLS_JSON",
                        help="only the default without each term in turn: add the cells to this file, print them all")
    parser.add_argument("--floors", action="store_true",
                        help="only the default with each floor under the log-probability's weight")
    args = parser.parse_args()
    if args.floors:
        cells, text = floor_table(args.rows)
        if not cells:
            raise SystemExit(f"error: {args.rows} holds no cells written by column_accuracy.py --rows")
        print("coverage at 99% / harm at 0.9 / review at 0.9 (%), mean over the seeds\n")
        print(text)
        if args.json:
            args.json.write_text(json.dumps(cells, indent=1), encoding="utf-8")
        return
    if args.leave_one_out:
        cells = leave_one_out_cells(args.rows)
        if not cells:
            raise SystemExit(f"error: {args.rows} holds no cells written by column_accuracy.py --rows")
        kept = json.loads(args.leave_one_out.read_text(encoding="utf-8"))["cells"] if args.leave_one_out.exists() \
            else {}
        kept.update(cells)
        args.leave_one_out.write_text(json.dumps({"cells": dict(sorted(kept.items()))}, indent=1), encoding="utf-8")
        print(f"{len(cells)} cell(s) added to {args.leave_one_out} ({len(kept)} in all); refit is the bundle's "
              f"calibration in {sum(c['refit_is_served'] for c in cells.values())} of {len(cells)}\n")
        print(leave_one_out_table(kept))
        return
    table, newest, at_threshold = study(args.rows)
    if not table:
        raise SystemExit(f"error: {args.rows} holds no cells written by column_accuracy.py --rows")
    print("coverage at 99% precision (%), mean over the seeds\n")
    print(markdown(table))
    print("\ntest rows only the newest word check (a last word outside a closed class) flags, and of them wrong, "
          "over the seeds: "
          + ", ".join(f"{family} {n} ({wrong})" for family, (n, wrong) in sorted(newest.items())))
    for what, by_variant in at_threshold.items():
        print(f"\n{what} at confidence {THRESHOLD:g} (%), mean over the seeds\n")
        print(markdown(by_variant))
    if args.json:
        extra = {f"{what} at {THRESHOLD:g}": by_variant for what, by_variant in at_threshold.items()}
        args.json.write_text(json.dumps({**table, **extra}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
