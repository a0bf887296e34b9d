"""scripts/reliability_report.py renders the ledger the reliability tests write."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from reliability_ledger import Ledger  # tests/ is on sys.path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "reliability_report.py"


def _report_module():
    spec = importlib.util.spec_from_file_location("reliability_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_doc_totals_what_was_measured_and_shows_failures(tmp_path):
    ledger = Ledger()
    record = ledger.recorder("tests/x.py::test_kill[sqlite]")
    record("crash", "killed at point 10", "sqlite", rows_lost=0, rows_double_applied=0)
    record("crash", "killed at point 2", "sqlite", rows_lost=3, rows_double_applied=1)
    ledger.recorder("tests/y.py::test_tamper")("tampering", "edited vocab", "folder",
                                              error="/tmp/pytest-of-x/p0/model/vocab.json does not match\nmore")
    ledger.set_outcome("tests/x.py::test_kill[sqlite]", "failed")
    ledger.set_outcome("tests/y.py::test_tamper", "passed")
    entries = [e.__dict__ for e in ledger.entries]
    doc = _report_module().render(entries, "abc1234", "2026-12-02", "scripts/reliability_report.py")
    assert "**3 cases: 1 passed, 2 failed; 3 rows lost, 1 rows applied twice.**" in doc
    assert doc.index("killed at point 2") < doc.index("killed at point 10")  # natural order
    assert "| …/vocab.json does not match | passed | `y.py::test_tamper` |" in doc  # first line, no temp path
    assert "## Crash (2 cases)" in doc and "## Tampering (1 cases)" in doc
    assert "| n/a | n/a |" in doc  # no rows at stake for a tampered bundle


def test_a_ledger_written_by_a_run_names_the_campaign_that_replays_it(tmp_path, monkeypatch):
    monkeypatch.setenv("STRSEQ_RELIABILITY_LEDGER", str(tmp_path / "ledger.json"))
    monkeypatch.setenv("STRSEQ_FUZZ_EXAMPLES", "1000")
    ledger = Ledger()
    ledger.recorder("tests/x.py::test_kill")("crash", "killed at point 3", "sqlite", rows_lost=0,
                                             rows_double_applied=0)
    path = ledger.write()
    module = _report_module()
    campaign, entries = module.read_ledger(path)
    assert campaign["fuzz_examples"] == 1000 and [e["case"] for e in entries] == ["killed at point 3"]
    doc = module.render(entries, "abc1234", "2026-12-02", "scripts/reliability_report.py",
                        {**campaign, "seed": 7, "scale": 2})
    assert "`STRSEQ_CRASH_SEED=7 STRSEQ_CRASH_SCALE=2 STRSEQ_FUZZ_EXAMPLES=1000`" in doc


def test_every_case_is_counted_in_its_family():
    module = _report_module()
    ledger = Ledger()
    ledger.recorder("tests/integration/test_csv_shape.py::test_predict_refuses[csv]")(
        "hostile input", "a long row", "csv", rows_lost=0)
    ledger.recorder("tests/integration/test_hostile_tables.py::test_null_keys_are_refused_up_front[sqlite]")(
        "hostile input", "NULL keys", "sqlite", rows_lost=2, rows_double_applied=0)
    ledger.recorder("tests/integration/test_new_thing.py::test_x")("hostile input", "new", "csv")
    ledger.set_outcome("tests/integration/test_hostile_tables.py::test_null_keys_are_refused_up_front[sqlite]",
                       "failed")
    doc = module.render([e.__dict__ for e in ledger.entries], "abc1234", "2026-12-04", "script")
    table = doc.split("## Families of failure", 1)[1].split("\n## ", 1)[0]
    assert "| CSV shape |" in table and "| 1 | 0 | 0 | 0 |" in table
    assert "| keys |" in table and "| 1 | 1 | 2 | 0 |" in table  # the failed case and its lost rows
    assert "| other | cases of no family above | 1 |" in table  # a case no family claims is shown, not lost
    assert "| secrets |" not in table  # families without cases in this run are left out
