"""Validations stored in a GX project folder: results night after night, Data Docs, the same verdicts."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from strseq_tasks.data.gx_project import GxProjectError
from strseq_tasks.data.validation import PairsValidationError, validate_column, validate_pairs

ROOT = Path(__file__).resolve().parents[2]
GOOD = [("SMITH, John", "John Smith"), ("mary o'neil", "Mary O'Neil"), ("Dr. Ann Lee", "Ann Lee"),
        ("José  García", "José García"), ("John Smith", "John Smith")]


def _frame(pairs):
    return pd.DataFrame({"row": range(1, len(pairs) + 1), "input": [a for a, _ in pairs],
                         "target": [b for _, b in pairs]})


def _results(folder: Path) -> list[Path]:
    return sorted((folder / "uncommitted" / "validations").rglob("*.json"))


def test_two_nights_leave_two_stored_results_and_a_data_docs_index_that_lists_both(tmp_path):
    folder = tmp_path / "gx"
    first = validate_pairs(_frame(GOOD), max_len=128, gx_dir=folder, run_name="names")
    second = validate_pairs(_frame(GOOD + [("a", "A"), ("a", "B")]), max_len=128, gx_dir=folder, run_name="names")
    assert first.success and not second.success
    stored = _results(folder)
    assert [p.relative_to(folder / "uncommitted" / "validations").parts[:2] for p in stored] == [
        ("string_pairs", "names")] * 2
    assert [json.loads(p.read_text())["success"] for p in stored] == [True, False]  # oldest first
    index = (folder / "uncommitted" / "data_docs" / "local_site" / "index.html").read_text()
    for report in (first, second):
        assert report.stored.index == (folder / "uncommitted/data_docs/local_site/index.html").as_uri()
        page = Path(report.stored.page.removeprefix("file://"))
        assert page.is_file() and str(page.relative_to(folder / "uncommitted/data_docs/local_site")) in index
        assert report.stored.result in report.markdown() and report.stored.page in report.markdown()
        assert report.to_dict()["gx"]["result"] == report.stored.result
    # the suite's page shows each expectation's reason (GX's notes)
    suite_page = (folder / "uncommitted/data_docs/local_site/expectations/string_pairs.html").read_text()
    assert "the same input maps to two different targets" in suite_page


def test_a_failing_suite_raises_the_same_error_stored_or_not(tmp_path):
    bad = _frame(GOOD + [("a", "A"), ("a", "B"), ("x", "tab\there")])
    kept = validate_pairs(bad, max_len=128, gx_dir=tmp_path / "gx")
    gone = validate_pairs(bad, max_len=128, gx_dir="ephemeral")
    assert gone.stored is None and kept.stored is not None
    assert str(PairsValidationError(kept)) == str(PairsValidationError(gone))
    assert [(c.why, c.severity, c.success, c.rows) for c in kept.checks] == [
        (c.why, c.severity, c.success, c.rows) for c in gone.checks]
    failed = {c.why for c in kept.failures}
    assert failed == {"the same input maps to two different targets", "control characters, zero-width spaces, soft "
                      "hyphens, byte-order marks or bidirectional controls in targets (invisible in review; a model "
                      "would learn to write them)"}
    assert "row 6: input='a', target='A'" in str(PairsValidationError(kept))


def test_a_folder_outside_the_checkout_is_created_from_the_packaged_template(tmp_path):
    """No STRSEQ_GX_DIR: ./gx of the working directory, made whole from the template, suites as files."""
    script = ("import pandas as pd; from strseq_tasks.data.validation import validate_pairs; "
              "r = validate_pairs(pd.DataFrame({'row': [1, 2, 3, 4], 'input': list('abcd'), 'target': list('ABCD')}), "
              "32); print(r.success, r.stored.result)")
    env = {k: v for k, v in os.environ.items() if k != "STRSEQ_GX_DIR"} | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:2] == ["True", "string_pairs/pairs/" + done.stdout.split()[1].split("/", 2)[2]]
    folder = tmp_path / "gx"
    assert (folder / "great_expectations.yml").read_bytes() == (ROOT / "gx" / "great_expectations.yml").read_bytes()
    suite = folder / "expectations" / "string_pairs.json"
    assert not suite.is_symlink() and suite.read_bytes() == (ROOT / "expectations" / "string_pairs.json").read_bytes()
    assert len(_results(folder)) == 1 and (folder / "uncommitted/data_docs/local_site/index.html").is_file()
    assert not list(tmp_path.glob(".gx.creating-*"))


def test_a_suite_edited_in_the_folder_is_replaced_by_the_reviewed_one(tmp_path, caplog):
    folder = tmp_path / "gx"
    validate_pairs(_frame(GOOD), max_len=128, gx_dir=folder)
    copy = folder / "expectations" / "string_pairs.json"
    copy.write_text(copy.read_text().replace('"max_value": 1}', '"max_value": 2}'))
    with caplog.at_level(logging.WARNING, logger="strseq.gx"):
        report = validate_pairs(_frame(GOOD + [("a", "A"), ("a", "B")]), max_len=128, gx_dir=folder)
    assert not report.success and "differed from strseq's reviewed string_pairs.json" in caplog.text
    assert copy.read_bytes() == (ROOT / "expectations" / "string_pairs.json").read_bytes()


def test_a_folder_that_is_not_a_gx_project_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(GxProjectError, match="is not a GX project") as raised:
        validate_pairs(_frame(GOOD), max_len=128, gx_dir=tmp_path)
    assert raised.value.exit_code == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_records_checkpoint_stores_results_per_column_and_never_the_url(backend, tmp_path):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'crm.db'}"
    else:
        base = os.environ.get("STRSEQ_TEST_POSTGRES_URL")
        if not base:
            pytest.skip("no PostgreSQL (STRSEQ_TEST_POSTGRES_URL)")
        # trust authentication ignores the password: it is there to prove it is never written
        url = sa.make_url(base).set(password="n0t-in-gx").render_as_string(hide_password=False)
    engine = sa.create_engine(url)
    table = sa.Table("gx customers", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("name", sa.Text))
    try:
        table.drop(engine, checkfirst=True)
        table.create(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"id": 1, "name": "ann"}, {"id": 2, "name": None},
                                          {"id": 3, "name": "x" * 40}])
        folder = tmp_path / "gx"
        nights = [validate_column(engine, table, table.c.name, max_len=m, gx_dir=folder) for m in (64, 16)]
        ephemeral = validate_column(engine, table, table.c.name, max_len=16, gx_dir="ephemeral")
    finally:
        table.drop(engine, checkfirst=True)
        engine.dispose()
    assert [r.success for r in nights] == [True, False] and nights[1].checks == ephemeral.checks
    assert nights[1].failures[0].why.startswith("too many values longer than the model accepts")
    assert [p.parts[-4:-2] for p in _results(folder)] == [("records", "gx-customers.name")] * 2
    assert (folder / "great_expectations.yml").read_bytes() == (ROOT / "gx" / "great_expectations.yml").read_bytes()
    written = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    assert b"n0t-in-gx" not in written and str(tmp_path / "crm.db").encode() not in written
