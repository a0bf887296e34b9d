"""The CLI's vocabulary as a user meets it (issue 23): old spellings keep a scheduled job running
with one warning; `--json` prints, `--json-out` writes; files with other column names;
STRSEQ_DB and STRSEQ_REGISTRY; review and revert pointing at the schema that holds the rows."""

from __future__ import annotations

import json
import os
import uuid

import pytest
import sqlalchemy as sa

from integration.cli_harness import read_csv_raw, run_strseq, write_csv  # tests/ is on sys.path
from strseq_tasks.data.db import reflect_table
from strseq_tasks.jobs.clean import clean_table
from strseq_tasks.jobs.clean_report import ModelIdentity
from strseq_tasks.serve.registry import Registry
from strseq_tasks.serve.runtime import Prediction


def _one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def _warnings(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]


def test_old_spellings_still_work_with_one_warning_each(tmp_path, tiny_bundle):
    inputs = write_csv(tmp_path / "in.csv", ["input"], [["john smith"], ["ANN LEE"]])
    new = run_strseq("predict", "--model", tiny_bundle, "--input", inputs, "--out", tmp_path / "new.csv", "-q")
    old = run_strseq("predict", "--model", tiny_bundle, "--input", inputs, "--output", tmp_path / "old.csv", "-q")
    assert new.returncode == 0 and old.returncode == 0, old.stderr
    assert _warnings(new) == []
    assert _warnings(old) == ["warning: --output is deprecated in `strseq predict`: use --out (the old spelling "
                              "keeps working for now)"]
    assert read_csv_raw(tmp_path / "old.csv") == read_csv_raw(tmp_path / "new.csv")
    # evaluate's old --json PATH is --json-out; --json alone prints the metrics as JSON
    pairs = write_csv(tmp_path / "pairs.csv", ["input", "target"], [["john smith", "John Smith"]] * 3)
    written = run_strseq("evaluate", "--model", tiny_bundle, "--pairs", pairs, "--json", tmp_path / "m.json", "-q")
    assert written.returncode == 0 and len(_warnings(written)) == 1 and "use --json-out" in written.stderr
    printed = run_strseq("evaluate", "--model", tiny_bundle, "--pairs", pairs, "--json", "-q")
    assert printed.returncode == 0 and _warnings(printed) == []
    shown = json.loads(printed.stdout)  # standard output is the JSON and nothing else
    assert shown["pairs"] == 1 and shown["metrics"] == json.loads((tmp_path / "m.json").read_text())["metrics"]


def test_files_with_other_column_names(tmp_path, tiny_bundle):
    inputs = write_csv(tmp_path / "in.csv", ["id", "dirty"], [["7", "john smith"], ["8", "ANN LEE"]])
    done = run_strseq("predict", "--model", tiny_bundle, "--input", inputs, "--input-column", "dirty",
                      "--out", tmp_path / "out.csv", "-q")
    assert done.returncode == 0, done.stderr
    header, rows = read_csv_raw(tmp_path / "out.csv")
    assert header == ["id", "dirty", "prediction", "confidence", "status"] and [r[0] for r in rows] == ["7", "8"]
    error = _one_error_line(run_strseq("predict", "--model", tiny_bundle, "--input", inputs,
                                       "--out", tmp_path / "x.csv"))
    assert "missing column(s) input" in error and "found: id, dirty" in error and "--input-column" in error
    assert not (tmp_path / "x.csv").exists()

    pairs = write_csv(tmp_path / "pairs.csv", ["dirty", "clean"], [["john smith", "John Smith"]] * 12)
    scored = run_strseq("evaluate", "--model", tiny_bundle, "--pairs", pairs, "--input-column", "dirty",
                        "--target-column", "clean", "--json", "-q")
    assert scored.returncode == 0 and json.loads(scored.stdout)["pairs"] == 1, scored.stderr
    error = _one_error_line(run_strseq("train", "--pairs", pairs, "--out", tmp_path / "model",
                                       "--input-column", "dirty"))
    assert "missing column(s) target" in error and "found: dirty, clean" in error
    assert "--input-column/--target-column" in error and not (tmp_path / "model").exists()
    # a bad row is named by the file's own column, not by strseq's
    blank = write_csv(tmp_path / "blank.csv", ["dirty", "clean"], [["john smith", " "]])
    error = _one_error_line(run_strseq("train", "--pairs", blank, "--out", tmp_path / "model",
                                       "--input-column", "dirty", "--target-column", "clean"))
    assert "column 'clean'" in error


def test_json_lines_in_and_out(tmp_path, tiny_bundle):
    """JSON Lines (.jsonl) like CSV and Parquet: any column names, other keys carried through."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": 7, "text": "john smith", "note": null}\n\n{"id": 8, "text": "a\u2028b /x"}\n',
                      encoding="utf-8")
    done = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--input-column", "text",
                      "--out", tmp_path / "out.jsonl", "-q")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.split("\n") if line]  # not splitlines(): U+2028 is in a value
    assert [(r["id"], r["text"], r["note"]) for r in rows] == [(7, "john smith", None), (8, "a\u2028b /x", None)]
    assert all(set(r) == {"id", "text", "note", "prediction", "confidence", "status"} for r in rows)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "a"}\n{"text": "b"\n', encoding="utf-8")
    error = _one_error_line(run_strseq("predict", "--model", tiny_bundle, "--input", broken, "--input-column", "text",
                                       "--out", tmp_path / "x.jsonl"))
    assert "line 2" in error and "not valid JSON Lines" in error and not (tmp_path / "x.jsonl").exists()


def test_train_reads_other_column_names(tmp_path, name_pairs):
    pairs = write_csv(tmp_path / "pairs.csv", ["raw", "fixed"], name_pairs[:40])
    done = run_strseq("train", "--pairs", pairs, "--input-column", "raw", "--target-column", "fixed",
                      "--out", tmp_path / "model", "--max-epochs", 1, "--precision", "fp32", "-q", timeout=600)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["data"]["train_pairs"] + manifest["data"]["validation_pairs"] == 40


def test_the_database_and_the_registry_from_the_environment(tmp_path, tiny_bundle, monkeypatch):
    for command, variable in ((["review", "list"], "STRSEQ_DB"), (["models", "list"], "STRSEQ_REGISTRY"),
                              (["clean"], "STRSEQ_DB"), (["retrain"], "STRSEQ_REGISTRY")):
        shown = run_strseq(*command, "--help")
        assert variable in shown.stdout, f"strseq {' '.join(command)} --help does not show {variable}"
    registry = Registry(tmp_path / "registry")
    registry.publish("names", tiny_bundle, {})
    monkeypatch.setenv("STRSEQ_REGISTRY", str(registry.url))
    listed = run_strseq("models", "list")
    assert listed.returncode == 0 and listed.stdout.startswith("names: 1 version(s)"), listed.stderr
    database = tmp_path / "crm.db"
    sa.create_engine(f"sqlite:///{database}").connect().close()
    monkeypatch.setenv("STRSEQ_DB", f"sqlite:///{database}")
    empty = run_strseq("review", "list")
    assert empty.returncode == 0 and empty.stdout.startswith("0 row(s) to review"), empty.stderr
    # a password in the variable is never shown: not by --help, not in an error
    monkeypatch.setenv("STRSEQ_DB", "postgresql+psycopg://etl:hunter2@127.0.0.1:1/crm")
    assert "hunter2" not in run_strseq("review", "list", "--help").stdout
    error = _one_error_line(run_strseq("review", "list"))
    assert "etl:***@127.0.0.1" in error and "hunter2" not in error
    # an option given wins over the variable
    assert run_strseq("review", "list", "--db", f"sqlite:///{database}").returncode == 0


class Unsure:
    """A stand-in model unsure of every value: each row goes to review."""

    def __call__(self, texts):
        return [Prediction(t.upper(), 0.5, "ok") for t in texts]


@pytest.fixture
def two_schemas():
    """A PostgreSQL database where the rows sit in schema `crm_...` and the connection's own
    schema (`home_...`, first on its search path) holds nothing of strseq's."""
    url = os.environ.get("STRSEQ_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("needs $STRSEQ_TEST_POSTGRES_URL")
    tag = uuid.uuid4().hex[:10]
    crm, home = f"crm_{tag}", f"home_{tag}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for schema in (crm, home):
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(sa.text(f'CREATE TABLE "{crm}".people (id integer PRIMARY KEY, name text)'))
        conn.execute(sa.text(f"INSERT INTO \"{crm}\".people VALUES (1, 'ann lee'), (2, 'bob ray'), (3, 'eve')"))
    separator = "&" if "?" in url else "?"
    yield f"{url}{separator}options=-csearch_path%3D{home}", crm, home, engine
    with engine.begin() as conn:
        for schema in (crm, home):
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def test_review_and_revert_say_which_schema_holds_the_rows(two_schemas):
    url, crm, home, engine = two_schemas
    user = reflect_table(engine, "people", "id", "name", "name_clean", create_output=True, schema=crm)
    clean_table(engine, user, ModelIdentity("names", 1, "sha-1"), Unsure())
    # the default schema has no queue: not "nothing to review", but where the rows are
    listed = run_strseq("review", "list", "--db", url)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(f"nothing to review in schema {home}")
    assert f"3 open row(s) in schema {crm}: add --schema {crm}" in listed.stdout
    bulk = run_strseq("review", "approve", "--db", url, "--table", "people")
    assert bulk.returncode == 0 and f"nothing to approve; 3 open row(s) in schema {crm}: add --schema {crm}" \
        in bulk.stdout, bulk.stdout + bulk.stderr
    # with --schema, the queue is there, and the undo hint keeps the schema
    rows = json.loads(run_strseq("review", "list", "--db", url, "--schema", crm, "--json").stdout)["rows"]
    assert len(rows) == 3
    approved = run_strseq("review", "approve", "--db", url, "--schema", crm, rows[0]["id"])
    assert approved.returncode == 0, approved.stderr
    hint = [line for line in approved.stdout.splitlines() if line.startswith("undo with: ")]
    assert len(hint) == 1 and hint[0].endswith(f" --schema {crm}")
    run_id = hint[0].split("--run-id ")[1].split()[0]
    # revert without the schema names it; with it (as the hint says), it reverts
    error = _one_error_line(run_strseq("revert", "--db", url, "--run-id", run_id))
    assert f"run {run_id} is in schema {crm}: add --schema {crm}" in error
    undone = run_strseq("revert", "--db", url, "--run-id", run_id, "--schema", crm)
    assert undone.returncode == 0 and "1 value(s) restored" in undone.stdout, undone.stderr
