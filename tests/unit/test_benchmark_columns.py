"""The column benchmark draws what it claims: held-out layouts never reach the training pairs, test
values sit on the other side of the hash, one input never has two targets, and the tags are facts."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

pytest.importorskip("faker")
pytest.importorskip("phonenumbers")

from benchmarks.columns import FAMILIES, draw, side  # noqa: E402
from benchmarks.columns.core import layout_plan  # noqa: E402


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request):
    return FAMILIES[request.param]()


def test_a_seed_draws_the_same_split_and_another_seed_another(family):
    first, again, other = draw(family, 60, 150, 0), draw(family, 60, 150, 0), draw(family, 60, 150, 1)
    assert (first.train, first.test, first.tags) == (again.train, again.test, again.tags)
    assert first.test != other.test
    assert layout_plan(family, 0)[2] != layout_plan(family, 1)[2] or len(family.layouts) < 6


def test_held_out_layouts_are_only_in_the_test_column(family):
    split = draw(family, 200, 400, 0)
    held = {n for n, p in split.layouts.items() if p["held_out"]}
    ranked = sorted(split.layouts, key=lambda n: split.layouts[n]["rank"])
    assert held and ranked[0] not in held
    assert all(split.layouts[n]["train_rows"] == 0 for n in held)
    assert any(t["layout"] == "held out" for t in split.tags)
    assert sum(p["train_rows"] for p in split.layouts.values()) + split.train_clean == len(split.train)


def test_test_targets_are_never_training_targets_and_inputs_never_have_two_targets(family):
    split = draw(family, 200, 400, 2)
    assert not {b for _, b in split.train} & {b for _, b in split.test}
    targets: dict[str, str] = {}
    for a, b in [*split.train, *split.test]:
        assert targets.setdefault(a, b) == b, f"{a!r} has two targets"
    assert len(split.tags) == len(split.test) == 400


def test_tags_are_facts_of_the_split(family):
    split = draw(family, 200, 400, 0)
    counts = Counter(t["layout"] for t in split.tags)
    assert counts["frequent (3+)"] > counts["held out"] > 0
    noise = Counter(t["noise"].split(":")[0] for t in split.tags)
    assert noise["unseen"] > 0 and noise["none"] > noise["unseen"]
    for (a, b), tag in zip(split.test, split.tags):
        if tag["noise"] == "none" and tag["clean"] == "yes":
            assert a == b


def test_the_hash_splits_values_in_about_half_and_ignores_case():
    words = [f"value{i}" for i in range(2000)]
    share = sum(side(w) == "test" for w in words) / len(words)
    assert 0.45 < share < 0.55
    assert all(side(w) == side(w.upper()) for w in words[:100])


def test_names_and_dates_in_the_test_column_come_from_the_test_side():
    names = draw(FAMILIES["names"](), 50, 200, 0)
    for _, target in names.test:
        first, _, last = target.partition(" ")
        assert side(first) == "test"
    dates = draw(FAMILIES["dates"](), 50, 200, 0)
    assert all(side(target) == "test" for _, target in dates.test)
    assert all(side(target) == "train" for _, target in dates.train)


def test_every_name_layout_can_be_told_apart():
    """A comma-less "LAST First" layout only where its case tells it from "First Last"."""
    layouts = {layout.name for layout in FAMILIES["names"]().layouts}
    comma_less = {n for n in layouts if n.startswith("L F")}
    assert comma_less == {"L F (last first, comma-less, upper surname) | as typed"}


def _cell_rows(family, pairs, seed):
    return [{"family": family, "pairs": pairs, "seed": seed, "method": m, "exact_match": 0.5}
            for m in ("identity", "strseq")]


def test_a_results_file_keeps_every_cell_and_resumes_only_under_the_same_options(tmp_path, capsys):
    import json

    from benchmarks.column_accuracy import earlier_cells, write_results

    args = {"test_size": 1000, "epochs": 40, "max_minutes": None, "set": [], "pretrained": None,
            "pretrained_sha256": "abc"}
    path = tmp_path / "columns.json"
    cells = {("phones", 200, 1): _cell_rows("phones", 200, 1), ("dates", 50, 0): _cell_rows("dates", 50, 0)}
    write_results(path, args, cells)
    assert [p.name for p in tmp_path.iterdir()] == ["columns.json"]  # no temporary file left
    assert earlier_cells(path, args) == cells
    assert [r["family"] for r in json.loads(path.read_text())["rows"]][:2] == ["dates", "dates"]
    assert earlier_cells(tmp_path / "missing.json", args) == {}
    with pytest.raises(SystemExit) as stop:  # a rebuilt pretrained model is another run: never mixed
        earlier_cells(path, args | {"pretrained_sha256": "def"})
    assert stop.value.code == 2
    assert "pretrained_sha256" in capsys.readouterr().err


def test_the_readme_table_gives_means_and_says_n_a_where_scratch_was_not_measured(tmp_path):
    import json

    from benchmarks.column_accuracy import readme_table

    def results(path, cells):
        # a cell at 1000 pairs measured before harm at 0.9 was recorded
        rows = [{"family": f, "pairs": n, "seed": s, "method": "strseq", "exact_match": em, "harm": 0.01,
                 "coverage_at_99": 0.8, **({} if n == 1000 else {"harm_at_threshold": 0.005})} for f, n, s, em in cells]
        path.write_text(json.dumps({"args": {}, "rows": rows}))
        return path

    default = results(tmp_path / "d.json", [("dates", 200, 0, 0.9), ("dates", 200, 1, 0.8), ("names", 200, 0, 0.7),
                                            ("dates", 1000, 0, 0.99)])
    scratch = results(tmp_path / "s.json", [("dates", 200, 0, 0.6), ("names", 200, 0, 0.5)])
    lines = readme_table(default, scratch).splitlines()
    assert "| dates | 200 | 85.0 (80.0-90.0) | 60.0 | 1.0 | 0.5 | 80.0 |" in lines
    assert "| dates | 1000 | 99.0 (99.0-99.0) | n/a | 1.0 | n/a | 80.0 |" in lines
    assert "| **mean of 2** | 200 | **77.5** | 55.0 | | | |" in lines
    assert "| **mean of 1** | 1000 | **99.0** | n/a | | | |" in lines
    assert not any("| 50 |" in line for line in lines)  # no cell, no row
