"""Platt scaling of sequence log-probabilities."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from strseq_tasks.core.calibration import Calibration, fit_calibration


def _nll(confidence: np.ndarray, correct: np.ndarray) -> float:
    confidence = np.clip(confidence, 1e-12, 1 - 1e-12)
    return float(-np.mean(np.where(correct, np.log(confidence), np.log1p(-confidence))))


def test_default_calibration_is_the_raw_probability():
    p = np.array([1e-6, 0.1, 0.5, 0.9, 0.999])
    np.testing.assert_allclose(Calibration().confidence(np.log(p)), p, rtol=1e-6)
    assert Calibration().to_dict() == {"scale": 1.0, "shift": 0.0, "known_shift": 0.0, "snap_shift": 0.0,
                                       "novel_shift": 0.0, "unseen_char_shift": 0.0, "disagree_shift": 0.0,
                                       "lost_char_shift": 0.0}


def test_confidence_is_finite_at_the_extremes():
    conf = Calibration(scale=3.0, shift=1.0).confidence(np.array([0.0, -1e-12, -800.0, -np.inf]))
    assert np.all((conf >= 0.0) & (conf <= 1.0))
    assert conf[0] > 0.99 and conf[2] < 1e-12 and conf[3] == 0.0


def test_fit_is_near_identity_on_perfectly_calibrated_data():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.995, 5000)
    correct = rng.random(5000) < p
    fitted = fit_calibration(np.log(p), correct)
    assert fitted.scale == pytest.approx(1.0, abs=0.1)
    assert fitted.shift == pytest.approx(0.0, abs=0.15)


def test_fit_tempers_an_overconfident_model_and_lowers_nll():
    rng = np.random.default_rng(1)
    logit = rng.normal(0.0, 3.0, 4000)
    raw = 1 / (1 + np.exp(-logit))  # what the model claims
    correct = rng.random(4000) < 1 / (1 + np.exp(-0.4 * logit))  # how often it is right
    logprob = np.log(raw)
    fitted = fit_calibration(logprob, correct)
    assert fitted.scale == pytest.approx(0.4, abs=0.1)  # a is an inverse temperature
    assert _nll(fitted.confidence(logprob), correct) < _nll(raw, correct) - 0.05


def test_fit_sharpens_an_underconfident_model():
    rng = np.random.default_rng(2)
    logit = rng.normal(0.0, 1.0, 4000)
    correct = rng.random(4000) < 1 / (1 + np.exp(-3.0 * logit))
    raw = 1 / (1 + np.exp(-logit))
    fitted = fit_calibration(np.log(raw), correct)
    assert fitted.scale > 2.0
    assert _nll(fitted.confidence(np.log(raw)), correct) < _nll(raw, correct)


@pytest.mark.parametrize("calibration", [Calibration(), Calibration(0.3, -2.0), Calibration(4.0, 1.5)])
def test_confidence_is_monotone_in_logprob_when_scale_is_positive(calibration):
    logprob = np.linspace(-20.0, -1e-6, 2001)
    conf = calibration.confidence(logprob)
    assert np.all(np.diff(conf) >= 0.0)
    assert conf[-1] > conf[0]


def test_all_correct_validation_stays_finite_and_near_the_prior():
    rng = np.random.default_rng(3)
    logprob = np.log(rng.uniform(0.5, 0.999, 20))
    fitted = fit_calibration(logprob, np.ones(20, dtype=bool))
    assert np.isfinite(fitted.scale) and np.isfinite(fitted.shift)
    assert 0.5 < fitted.scale < 3.0 and abs(fitted.shift) < 3.0  # moved, not collapsed
    conf = fitted.confidence(logprob)
    assert np.all(conf < 1.0)
    # still ranks rows like the raw probability does
    order = np.argsort(logprob)
    assert np.all(np.diff(conf[order]) >= 0.0)
    # with one row there is almost no evidence: the mapping barely moves
    one = fit_calibration(np.log(np.array([0.9])), np.array([True]))
    assert one.scale == pytest.approx(1.0, abs=0.3) and one.shift == pytest.approx(0.0, abs=0.3)


def test_all_wrong_validation_stays_finite():
    fitted = fit_calibration(np.log(np.full(30, 0.8)), np.zeros(30, dtype=bool))
    assert np.isfinite(fitted.scale) and np.isfinite(fitted.shift)
    assert fitted.confidence(np.log(np.array([0.8])))[0] < 0.8


def test_stronger_prior_moves_less():
    rng = np.random.default_rng(4)
    logprob = np.log(rng.uniform(0.3, 0.999, 200))
    correct = np.ones(200, dtype=bool)
    weak = fit_calibration(logprob, correct, prior=0.1)
    strong = fit_calibration(logprob, correct, prior=100.0)
    assert abs(strong.scale - 1.0) + abs(strong.shift) < abs(weak.scale - 1.0) + abs(weak.shift)


def test_fit_with_no_rows_is_the_identity():
    assert fit_calibration(np.array([]), np.array([])) == Calibration()


def test_fit_accepts_logprob_zero():
    fitted = fit_calibration(np.array([0.0, -0.1, -3.0, -0.01]), np.array([True, True, False, True]))
    assert np.isfinite(fitted.scale) and np.isfinite(fitted.shift)


def test_how_an_output_was_reached_is_calibrated_too():
    # same model probability everywhere; kept known values are always right, snapped ones 70%,
    # freely decoded ones 40%: the fitted shifts separate the three routes
    rng = np.random.default_rng(1)
    n = 600
    distance = rng.choice([-1, 0, 1], size=n)
    rate = np.where(distance == 0, 0.98, np.where(distance > 0, 0.7, 0.4))
    correct = rng.uniform(size=n) < rate
    logprob = np.full(n, np.log(0.6))
    fitted = fit_calibration(logprob, correct, distance=distance)
    conf = fitted.confidence(logprob, distance)
    assert fitted.known_shift > fitted.snap_shift > 0
    for route, expected in [(-1, 0.4), (0, 0.98), (1, 0.7)]:
        assert conf[distance == route][0] == pytest.approx(expected, abs=0.08)
    assert _nll(conf, correct) < _nll(fit_calibration(logprob, correct).confidence(logprob), correct) - 0.05
    # without known values (every row free) the shifts stay 0
    assert fit_calibration(logprob, correct, distance=np.full(n, -1)).known_shift == 0.0


def test_a_fit_with_known_value_routes_does_not_run_away():
    # like a spelling task with a dictionary: kept known values always right, snapped ones 90%
    # (distance 1) or 50% (distance 2), freely decoded ones wrong. Plain Newton steps ran off
    # here (scale 212, known_shift 18, every confidence 0 or 1); the line search finds the
    # moderate penalized optimum, which ranks the routes as they deserve
    rng = np.random.default_rng(0)
    d = np.concatenate([np.zeros(60, int), np.ones(120, int), np.full(20, 2), np.full(10, -1)])
    lp = np.where(d == 0, -rng.exponential(1.5, len(d)),
                  np.where(d == 1, -rng.exponential(6, len(d)), -rng.exponential(10, len(d))))
    lp[d == -1] = -rng.exponential(0.3, 10)
    correct = np.where(d == 0, True, np.where(d == 1, rng.uniform(size=len(d)) < 0.9, rng.uniform(size=len(d)) < 0.5))
    correct[d == -1] = False
    fitted = fit_calibration(lp, correct, distance=d)
    assert abs(fitted.scale) < 10 and fitted.known_shift > fitted.snap_shift > 0
    conf = fitted.confidence(lp, d)
    assert conf[d == 0].min() > conf[d == 1].max() and conf[d == -1].max() < 0.5
    assert np.all((conf > 0) & (conf < 1))


def test_novel_layouts_get_a_shift_of_their_own():
    # same probability everywhere; rows of a known layout right 95% of the time, novel ones 50%:
    # the fitted novel_shift takes the novel rows down to about their rate
    rng = np.random.default_rng(2)
    n = 800
    new = rng.uniform(size=n) < 0.3
    correct = rng.uniform(size=n) < np.where(new, 0.5, 0.95)
    logprob = np.full(n, np.log(0.9))
    fitted = fit_calibration(logprob, correct, novel=new)
    conf = fitted.confidence(logprob, novel=new)
    assert fitted.novel_shift < -1.5
    assert conf[new][0] == pytest.approx(0.5, abs=0.08) and conf[~new][0] == pytest.approx(0.95, abs=0.03)
    # without novelty (None) the shift is 0 and ignored
    assert fit_calibration(logprob, correct).novel_shift == 0.0
    assert fitted.confidence(logprob)[0] == fitted.confidence(logprob, novel=np.zeros(n, bool))[0]


def test_the_novel_prior_holds_where_validation_has_no_novel_rows():
    logprob, correct = np.log(np.full(50, 0.9)), np.ones(50, bool)
    assert fit_calibration(logprob, correct, novel=np.zeros(50, bool), novel_prior=-3.0).novel_shift == -3.0
    # and yields to the evidence where it has some: novel rows all right pull the shift up from the prior
    some = np.arange(50) < 25
    assert fit_calibration(logprob, correct, novel=some, novel_prior=-3.0).novel_shift > -2.5


def test_an_unseen_character_gets_its_own_shift_beside_the_layout_term():
    rng = np.random.default_rng(3)
    n = 900
    new, unseen = rng.uniform(size=n) < 0.3, rng.uniform(size=n) < 0.2
    correct = rng.uniform(size=n) < np.where(unseen, 0.4, np.where(new, 0.7, 0.97))
    logprob = np.full(n, np.log(0.9))
    fitted = fit_calibration(logprob, correct, novel=new, unseen=unseen)
    assert fitted.unseen_char_shift < -1.0 and fitted.novel_shift < -0.5
    conf = fitted.confidence(logprob, novel=new, unseen=unseen)
    assert conf[unseen & ~new].max() < conf[new & ~unseen].min() < conf[~new & ~unseen].min()
    # the prior holds without evidence, and without flags the term is 0
    none = np.zeros(50, bool)
    fitted = fit_calibration(np.log(np.full(50, 0.9)), ~none, unseen=none, unseen_char_prior=-2.0)
    assert fitted.unseen_char_shift == -2.0
    assert fit_calibration(logprob, correct).unseen_char_shift == 0.0


def test_an_output_treating_a_word_unlike_the_pairs_gets_its_own_shift():
    rng = np.random.default_rng(5)
    n = 900
    disagree = rng.uniform(size=n) < 0.2
    correct = rng.uniform(size=n) < np.where(disagree, 0.3, 0.97)
    logprob = np.full(n, np.log(0.99))
    fitted = fit_calibration(logprob, correct, disagree=disagree, disagree_prior=-2.0)
    assert fitted.disagree_shift < -2.0
    conf = fitted.confidence(logprob, disagree=disagree)
    assert conf[disagree].max() < conf[~disagree].min()
    assert fit_calibration(logprob, correct).disagree_shift == 0.0  # without the flags, no term


def test_an_output_losing_an_unseen_character_falls_below_a_cleaning_threshold_however_sure_the_model():
    # the validation rows hold no such output (training never saw the character): the prior decides, and
    # it outweighs a model sure of itself ("Loretto Ó Scanaill" -> "Loretto Scanaill" at log-probability -0.0002)
    rng = np.random.default_rng(6)
    logprob = np.log(rng.uniform(0.9, 0.9999, size=400))
    correct = rng.uniform(size=400) < np.exp(logprob)
    lost = np.zeros(400, bool)
    fitted = fit_calibration(logprob, correct, lost=lost, lost_char_prior=-12.0)
    assert fitted.lost_char_shift == -12.0
    sure = np.array([-0.0002, -0.0002])
    conf = fitted.confidence(sure, lost=np.array([True, False]))
    assert conf[0] < 0.5 < 0.99 < conf[1]
    assert fit_calibration(logprob, correct).lost_char_shift == 0.0  # without the flags, no term


def _near_certain_errors(seed: int = 0):
    """121 validation rows, 4 of them wrong and among the most certain (label noise: a target that
    contradicts its own input, learned as it was written), 117 right at every certainty; a
    novel-layout flag on 20 right ones. As in the dates cell that flattened (200 pairs, seed 2)."""
    rng = np.random.default_rng(seed)
    logprob = -np.exp(rng.uniform(np.log(1e-6), np.log(0.3), 121))
    correct = np.ones(121, dtype=bool)
    wrong = [3, 40, 77, 110]
    correct[wrong] = False
    logprob[wrong] = -1e-6
    novel = np.zeros(121, dtype=bool)
    novel[50:70] = True
    return logprob, correct, novel


def test_near_certain_errors_flatten_the_scale_without_a_floor():
    logprob, correct, novel = _near_certain_errors()
    fitted = fit_calibration(logprob, correct, novel=novel, novel_prior=-3.0)
    assert abs(fitted.scale) < 0.1  # the fault the floor is for: the model's certainty no longer counts


@pytest.mark.parametrize("floor", [0.1, 0.5])
def test_a_scale_floor_keeps_confidence_rising_with_certainty(floor):
    logprob, correct, novel = _near_certain_errors()
    fitted = fit_calibration(logprob, correct, novel=novel, novel_prior=-3.0, scale_floor=floor)
    assert fitted.scale == floor
    conf = fitted.confidence(np.array([-1e-1, -1e-3, -1e-6]), novel=np.zeros(3, dtype=bool))
    assert conf[0] < conf[1] < conf[2]
    # the rest is refitted around the held scale: the bounded minimum, not the unbounded fit's other weights
    unbounded = fit_calibration(logprob, correct, novel=novel, novel_prior=-3.0)
    assert fitted.shift != pytest.approx(unbounded.shift, abs=1e-3)
    # and it is a minimum: moving the shift either way from it fits the rows worse (with the same prior)
    def objective(shift: float) -> float:
        c = replace(fitted, shift=shift).confidence(logprob, novel=novel)
        return _nll(c, correct) * len(c) + 0.5 * (shift ** 2 + (fitted.novel_shift + 3.0) ** 2)
    assert objective(fitted.shift) < min(objective(fitted.shift - 0.05), objective(fitted.shift + 0.05))


def test_a_scale_floor_below_the_fit_changes_nothing():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.02, 0.995, 2000)
    correct = rng.random(2000) < p
    assert fit_calibration(np.log(p), correct, scale_floor=0.25) == fit_calibration(np.log(p), correct)
