"""The lever table (benchmarks/lever_ablation.py): gains on the seeds both runs measured, and the
calibration terms' from the leave-one-out cells."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import lever_ablation  # noqa: E402


def results(folder: Path, name: str, cells: dict[tuple, float]) -> None:
    rows = [{"family": f, "pairs": n, "seed": s, "method": "strseq", "exact_match": em}
            for (f, n, s), em in cells.items()]
    rows += [{"family": "dates", "pairs": 50, "seed": 0, "method": "identity", "exact_match": 0.0}]  # a baseline row
    (folder / f"{name}.json").write_text(json.dumps({"args": {}, "rows": rows}))


def test_gains_are_paired_by_seed_and_terms_come_from_their_cells(tmp_path):
    results(tmp_path, "ablation-default", {("dates", 50, 0): 0.90, ("dates", 50, 1): 0.80, ("dates", 50, 2): 0.70})
    results(tmp_path, "ablation-no-recombine", {("dates", 50, 0): 0.85, ("dates", 50, 1): 0.81})  # seed 2 not yet
    results(tmp_path, "ablation-1000-default", {("names", 1000, 0): 0.97})
    results(tmp_path, "ablation-1000-no-letters", {("names", 1000, 0): 0.96})
    cell = {"family": "names", "pairs": 1000, "seed": 0, "variants": {
        "default": {"coverage_at_99": 0.9}, "without words": {"coverage_at_99": 0.85},
        "without lost characters": {"coverage_at_99": 0.9}}}
    (tmp_path / "calibration-terms.json").write_text(json.dumps({"cells": {"names-1000-s0": cell}}))
    table = lever_ablation.table(tmp_path)
    lines = {tuple(line.split(" | ")[:2]): line for line in table.splitlines()[2:]}
    assert lines[("| dates", "50")] == "| dates | 50 | +2.0 (2) |  |  |  |  |  |  |"  # (5 - 1) / 2 on seeds 0 and 1
    assert lines[("| names", "1000")] == "| names | 1000 |  | +1.0 (1) |  |  |  | +5.0 (1) | +0.0 (1) |"
    assert len(lines) == 2
