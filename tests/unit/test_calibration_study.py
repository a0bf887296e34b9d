"""The calibration terms' ablation (benchmarks/calibration_study.py --leave-one-out): the default
refitted as training fits it, each term left out in turn, and cells kept across runs."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import calibration_study as study  # noqa: E402


def row(output: str, target: str, prob: float, lost: bool = False, text: str | None = None) -> dict:
    return {"input": text or target, "target": target, "output": output, "logprob": math.log(prob), "distance": -1,
            "novel": False, "unseen_char": False, "disagree": False, "lost_char": lost}


def rows() -> tuple[list[dict], list[dict]]:
    """Validation rows that punish nothing, and test rows where every confidently wrong output lost a
    letter: only the lost-character term (its prior alone) keeps them below the right ones."""
    val = [row(f"v{i}", f"v{i}", 0.99) for i in range(40)] + [row("x", f"w{i}", 0.6) for i in range(8)]
    test = [row(f"t{i}", f"t{i}", 0.995) for i in range(90)] + \
        [row("wrong", f"u{i}", 0.9999, lost=True, text=f"u{i}") for i in range(10)]
    return val, test


def test_leaving_out_the_lost_character_term_costs_what_it_caught():
    val, test = rows()
    out = study.leave_one_out(val, test)
    assert set(out) == {"default", *(f"without {name}" for name in study.TERMS.values())}
    assert out["default"]["coverage_at_99"] == pytest.approx(0.9)  # the 90 right rows, then the lost ones
    assert out["without lost characters"]["coverage_at_99"] == 0.0  # the wrong rows come first
    assert out["without lost characters"]["harm_at_threshold"] > out["default"]["harm_at_threshold"] == 0.0
    for name in ("novelty", "unseen characters", "words"):  # no row holds those flags: nothing moves
        assert out[f"without {name}"] == out["default"]


def test_rows_from_before_a_flag_leave_nothing_to_leave_out():
    val, test = rows()
    for r in val + test:
        r["lost_char"] = None
    assert "without lost characters" not in study.leave_one_out(val, test)


def test_cells_are_read_from_a_rows_folder_and_checked_against_the_bundles_calibration(tmp_path):
    val, test = rows()
    served = study.default_calibration(val).to_dict()
    (tmp_path / "names-200-s7.json").write_text(json.dumps(
        {"commit": "abc1234", "calibration": served, "validation": val, "test_scored": test}))
    (tmp_path / "dates-1000-s0.json").write_text(json.dumps(
        {"calibration": served | {"scale": served["scale"] + 1}, "validation": val, "test_scored": test}))
    (tmp_path / "old-50-s1.json").write_text(json.dumps({"train": [], "test": []}))  # before the rows held scores
    cells = study.leave_one_out_cells(tmp_path)
    assert sorted(cells) == ["dates-1000-s0", "names-200-s7"]
    assert (cells["names-200-s7"]["family"], cells["names-200-s7"]["pairs"], cells["names-200-s7"]["seed"]) == \
        ("names", 200, 7)
    assert cells["names-200-s7"]["refit_is_served"] and not cells["dates-1000-s0"]["refit_is_served"]
    table = study.leave_one_out_table(cells)
    assert "| names | 200 | 1 | 90.0 / 0.0 / 10.0 | +0.0 | +0.0 | +0.0 | -90.0 |" in table, table


def flattening_rows() -> tuple[list[dict], list[dict]]:
    """Validation rows whose only errors are among the most certain (label noise) and test rows where
    the model's certainty is what separates right from wrong: without a floor the fitted weight is
    about 0 and every test row gets the same confidence; with one, the certain rows come first."""
    val = [row(f"v{i}", f"v{i}", 1 - 10 ** -(1 + 4 * i / 60)) for i in range(60)] + \
        [row("x", f"w{i}", 1 - 1e-6) for i in range(3)]
    test = [row(f"t{i}", f"t{i}", 1 - 1e-5) for i in range(80)] + [row("wrong", f"u{i}", 0.9) for i in range(20)]
    return val, test


def test_a_floor_under_the_scale_restores_the_ranking_a_flat_fit_loses(tmp_path):
    val, test = flattening_rows()
    out = study.floor_variants(val, test)
    assert set(out) == {"none", *(f"{f:g}" for f in study.FLOORS if f is not None)}
    assert out["none"]["scale"] < 0.05 and out["none"]["coverage_at_99"] == 0.0
    assert out["0.5"]["scale"] == 0.5 and out["0.5"]["coverage_at_99"] == pytest.approx(0.8)
    (tmp_path / "dates-200-s2.json").write_text(json.dumps({"validation": val, "test_scored": test}))
    cells, table = study.floor_table(tmp_path)
    assert list(cells) == ["dates-200-s2"]
    assert table.splitlines()[2].startswith("| dates, 200 | 1 | 0.0 / ")
    assert "dates-200-s2 (" in table.splitlines()[-1]
