"""The rejection ablation's replay (benchmarks/rejections.py): answers recover their pool rows,
accumulate round by round, and a round that did not retrain gives no model to compare."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import rejections  # noqa: E402


def ask(text: str, target: str, action: str, **extra) -> dict:
    return {"input": text, "target": target, "action": action, "confidence": 0.5, **extra}


def test_answers_accumulate_by_round_and_recover_their_pool_rows():
    pool = [("a", "A"), ("b", "b"), ("a", "A"), ("c", "C")]  # rows 0 and 2 are the same pair
    rows = [{"round": 0, "asked": [], "retrained": True},
            {"round": 2, "asked": [ask("a", "A", "approve"), ask("c", "C", "edit", id=3)], "retrained": True},
            {"round": 1, "asked": [ask("a", "A", "edit"), ask("b", "b", "reject")], "retrained": True},
            {"round": 3, "asked": [], "retrained": False}]  # the queue ran dry: no model
    by_round = rejections.answered_by_round(pool, rows)
    assert sorted(by_round) == [1, 2]
    assert [a["id"] for a in by_round[1]] == [0, 1]
    assert [a["id"] for a in by_round[2]] == [0, 1, 2, 3]  # the second "a" is the unused row; 3 as recorded
    assert [a["action"] for a in by_round[2]] == ["edit", "reject", "approve", "edit"]


def test_settings_come_from_the_run_file():
    args = {"start": 50, "reference": 200, "rounds": 4, "per_round": 25, "test_size": 2000, "threshold": 0.9,
            "epochs": 40, "max_minutes": None, "set": ["dropout=0.3"], "pretrained": "none"}
    settings = rejections.settings_of(args)
    assert (settings.start, settings.per_round, settings.pretrained) == (50, 25, None)
    assert settings.options == {"dropout": "0.3"}
    assert rejections.settings_of({**args, "pretrained": None}).pretrained is not None  # the train default


def test_the_table_compares_with_and_without_per_family():
    record = {"family": "names", "seed": 0, "round": 1, "decisions": 25, "rejections": 2,
              "with": {"exact_match": 0.9, "harm": 0.05, "coverage_at_99": 0.5},
              "without": {"exact_match": 0.88, "harm": 0.1, "coverage_at_99": 0.4}}
    text = rejections.table([record, {**record, "seed": 1, "rejections": 4}])
    assert "| names | 2 | 6 (50) | 90.0 / 88.0 | 5.0 / 10.0 | 50.0 / 40.0 |" in text
