"""Bad files are refused with exit code 2 and a message that says where; nothing is half-written.

Rows are counted from 1 after the header; encoding and NUL-byte errors name the physical line.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from campaign import sampled  # tests/ is on sys.path

from strseq_tasks.learn import build as pipeline
from strseq_tasks.learn.training import TrainConfig
from strseq_tasks.serve import bundle

from .cli_harness import hidden_entries, read_csv_raw, run_strseq, snapshot, write_csv

HEADER = b"input,target\n"
GOOD = b'"SMITH, John",John Smith\n'

# name -> (file bytes, extra train options, fragments the message must contain)
BAD_PAIRS = {
    "empty_file": (b"", [], ["empty"]),
    "header_only": (HEADER, [], ["no pairs"]),
    "wrong_columns": (b"dirty,clean\nmr x,X\n", [], ["missing column", "input", "target", "dirty, clean"]),
    "no_header": (GOOD + b"mary o'neil,Mary O'Neil\n", [], ["missing column", "input,target"]),
    "latin1_line_3": (HEADER + GOOD + "Ren\xe9 Dupont,René Dupont\n".encode("latin-1"), [],
                      ["line 3", "UTF-8"]),
    "nul_byte_line_3": (HEADER + GOOD + b"Ann\x00 Lee,Ann Lee\n", [], ["line 3", "NUL"]),
    "empty_target_row_2": (HEADER + GOOD + b"mary o'neil,\n", [], ["row 2", "column 'target'", "empty"]),
    "blank_input_row_2": (HEADER + GOOD + b"   ,Mary O'Neil\n", [], ["row 2", "column 'input'", "empty"]),
    "too_long_row_2": (HEADER + GOOD + b"Bartholomew Wolfeschlegel Jr,Bartholomew W\n", ["--max-len", "20"],
                       ["row 2", "column 'input'", "20"]),
    "conflicting_rows_1_and_3": (HEADER + GOOD + b"mary o'neil,Mary O'Neil\n" + b'"SMITH, John",Jon Smith\n', [],
                                 ["row 3", "row 1", "John Smith", "Jon Smith"]),
    "unclosed_quote": (HEADER + GOOD + b'"mary o\'neil,Mary O\'Neil\nann lee,Ann Lee\n', [], ["CSV"]),
    "too_many_fields_line_3": (HEADER + GOOD + b"mary,Mary,extra\n", [], ["line 3", "CSV"]),
}

def _zip_bytes() -> bytes:
    """A ZIP archive as an .xlsx workbook starts (its first entry)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
    return buffer.getvalue()


# the same failures for `predict`, whose file needs an `input` column only
BAD_INPUTS = {
    "empty_file": (b"", ["empty"]),
    "wrong_columns": (b"dirty,clean\nmr x,X\n", ["missing column", "input", "dirty, clean"]),
    "no_header": (b"sally o'connor,1000\nHolger Bostrom,1003\n", ["missing column", "input"]),
    "latin1_line_3": (b"input,id\nsally,1\n" + "Ren\xe9,2\n".encode("latin-1"), ["line 3", "UTF-8"]),
    "nul_byte_line_3": (b"input,id\nsally,1\nAnn\x00,2\n", ["line 3", "NUL"]),
    "unclosed_quote": (b'input,id\nsally,1\n"Ann Lee,2\nBo,3\n', ["CSV"]),
    # files handed over as CSV that are not text: named by what they are, not as "a NUL byte at line 1"
    "gzip_compressed": (gzip.compress(b"input,id\nsally,1\n"), ["gzip-compressed", "gunzip"]),
    "excel_workbook": (_zip_bytes(), ["ZIP archive", "xlsx", "CSV UTF-8"]),
    "utf16": ("input,id\nsally,1\n".encode("utf-16"), ["UTF-16", "re-save it as UTF-8"]),
    "sqlite_database": (b"SQLite format 3\x00" + bytes(84), ["SQLite database", "strseq clean --db"]),
}


def assert_refused(proc, path: Path, fragments: list[str]) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    message = proc.stderr
    assert "Traceback" not in message
    assert message.startswith("error: ") and str(path) in message, message
    for fragment in fragments:
        assert fragment.lower() in message.lower(), (fragment, message)


# --- train -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sampled(BAD_PAIRS, "bad-pairs", share=3))
def test_train_refuses_bad_pairs_file(case, tmp_path, ledger):
    data, options, fragments = BAD_PAIRS[case]
    pairs = tmp_path / "pairs.csv"
    pairs.write_bytes(data)
    proc = run_strseq("train", "--pairs", pairs, "--out", tmp_path / "model", *options)
    ledger("hostile input", f"train on a pairs file: {case.replace('_', ' ')}", "csv",
           error=proc.stderr.removeprefix("error: "))
    assert_refused(proc, pairs, fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.csv"]  # no model, no temp folder


def test_train_refuses_a_missing_file(tmp_path):
    pairs = tmp_path / "nowhere.csv"
    proc = run_strseq("train", "--pairs", pairs, "--out", tmp_path / "model")
    assert_refused(proc, pairs, ["no such file"])
    assert list(tmp_path.iterdir()) == []


def test_train_refuses_too_few_pairs(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_bytes(HEADER + GOOD + b"mary o'neil,Mary O'Neil\nann lee,Ann Lee\n")
    proc = run_strseq("train", "--pairs", pairs, "--out", tmp_path / "model")
    assert proc.returncode == 2 and "at least 4 pairs" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.csv"]


def test_train_refuses_bad_parquet(tmp_path):
    pairs = tmp_path / "pairs.parquet"
    pd.DataFrame({"input": ["SMITH, John", None], "target": ["John Smith", "Ann Lee"]}).to_parquet(pairs)
    proc = run_strseq("train", "--pairs", pairs, "--out", tmp_path / "model")
    assert_refused(proc, pairs, ["row 2", "column 'input'"])
    pairs.write_bytes(b"not parquet at all")
    proc = run_strseq("train", "--pairs", pairs, "--out", tmp_path / "model")
    assert_refused(proc, pairs, ["Parquet"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.parquet"]


def test_too_long_message_counts_characters_as_the_limit_does(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("input,target\n" + "e\u0301" * 21 + ",x\n", encoding="utf-8")
    proc = run_strseq("train", "--pairs", pairs, "--out", tmp_path / "model", "--max-len", 20)
    assert_refused(proc, pairs, ["row 1", "column 'input'", "21 characters", "limit is 20"])


# --- predict ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_predict_refuses_bad_input_file(case, tiny_bundle, tmp_path, ledger):
    data, fragments = BAD_INPUTS[case]
    source = tmp_path / "inputs.csv"
    source.write_bytes(data)
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", tmp_path / "out.csv")
    ledger("hostile input", f"predict on an input file: {case.replace('_', ' ')}", "csv",
           error=proc.stderr.removeprefix("error: "))
    assert_refused(proc, source, fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs.csv"]  # no output, no temp file


def test_predict_refuses_a_missing_file(tiny_bundle, tmp_path):
    source = tmp_path / "nowhere.csv"
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", tmp_path / "out.csv")
    assert_refused(proc, source, ["no such file"])
    assert list(tmp_path.iterdir()) == []


def test_predict_on_a_header_only_file_writes_an_empty_table(tiny_bundle, tmp_path):
    # Deliberately not an error: a scheduled job with no new rows should not fail.
    source = write_csv(tmp_path / "inputs.csv", ["input", "id"], [])
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", tmp_path / "out.csv")
    assert proc.returncode == 0, proc.stderr
    assert read_csv_raw(tmp_path / "out.csv") == (["input", "id", "prediction", "confidence", "status"], [])


# --- values that look like something else stay text -------------------------------------------


LOOKALIKES = ["NA", "null", "0012", "NaN", "None", "N/A", "-", "1e3", "TRUE", " 007 "]


def test_lookalike_values_survive_predict_as_text(tiny_bundle, tmp_path):
    source = write_csv(tmp_path / "inputs.csv", ["input", "code"], [[v, v] for v in LOOKALIKES])
    output = tmp_path / "out.csv"
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", output)
    assert proc.returncode == 0, proc.stderr
    header, rows = read_csv_raw(output)
    assert [r[:2] for r in rows] == [[v, v] for v in LOOKALIKES]
    assert [r[header.index("status")] for r in rows] == ["ok"] * len(LOOKALIKES)  # none read as missing


def test_lookalike_values_survive_evaluate_pairs_as_text(tiny_bundle, tmp_path):
    pairs = [(v, v) for v in LOOKALIKES] + [("00 12", "0012")]
    source = write_csv(tmp_path / "pairs.csv", ["input", "target"], pairs)
    rows_file = tmp_path / "rows.csv"
    proc = run_strseq("evaluate", "--model", tiny_bundle, "--pairs", source, "--out", rows_file)
    assert proc.returncode == 0, proc.stderr
    header, rows = read_csv_raw(rows_file)
    assert [(r[0], r[1]) for r in rows] == pairs


# --- a byte-order mark is accepted (and dropped) -------------------------------------------------


def test_bom_input_file_is_accepted_by_predict(tiny_bundle, tmp_path):
    source = write_csv(tmp_path / "inputs.csv", ["input", "id"], [["SMITH, John", "1"]], bom=True)
    assert source.read_bytes().startswith(b"\xef\xbb\xbf")
    output = tmp_path / "out.csv"
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", output)
    assert proc.returncode == 0, proc.stderr
    header, rows = read_csv_raw(output)
    assert header[:2] == ["input", "id"] and rows[0][:2] == ["SMITH, John", "1"]


def test_bom_pairs_file_is_accepted_by_evaluate(tiny_bundle, tmp_path):
    source = write_csv(tmp_path / "pairs.csv", ["input", "target"], [["SMITH, John", "John Smith"]], bom=True)
    rows_file = tmp_path / "rows.csv"
    proc = run_strseq("evaluate", "--model", tiny_bundle, "--pairs", source, "--out", rows_file)
    assert proc.returncode == 0, proc.stderr
    assert "(1 pairs)" in proc.stdout
    assert read_csv_raw(rows_file)[1][0][:2] == ["SMITH, John", "John Smith"]


# --- a failure while building leaves nothing behind ---------------------------------------------


def _boom(*args, **kwargs):
    raise RuntimeError("simulated failure while building the bundle")


@pytest.mark.parametrize("stage", ["export_onnx", "check_parity"])
def test_failed_build_leaves_no_folder(stage, tmp_path, monkeypatch, name_pairs, tiny_model_config):
    monkeypatch.setattr(pipeline, stage, _boom)
    with pytest.raises(RuntimeError, match="simulated"):
        pipeline.train_bundle(name_pairs[:20], tmp_path / "model", TrainConfig(max_epochs=1), tiny_model_config,
                              pretrained=None)
    # no model folder, nothing half-written; only the training, kept for `strseq export` (test_unexported.py)
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["model.unexported"]


def test_failed_build_with_overwrite_keeps_the_existing_folder(tmp_path, monkeypatch, name_pairs, tiny_bundle,
                                                                tiny_model_config):
    out = tmp_path / "model"
    shutil.copytree(tiny_bundle, out)
    before = snapshot(out)
    monkeypatch.setattr(pipeline, "export_onnx", _boom)
    with pytest.raises(RuntimeError, match="simulated"):
        pipeline.train_bundle(name_pairs[:20], out, TrainConfig(max_epochs=1), tiny_model_config,
                              overwrite=True, pretrained=None)
    assert snapshot(out) == before
    assert hidden_entries(tmp_path) == []


@pytest.mark.parametrize("swap", ["atomic exchange", "two renames"])
def test_failed_swap_keeps_the_existing_folder(tmp_path, monkeypatch, swap):
    out = tmp_path / "model"
    out.mkdir()
    (out / "manifest.json").write_text("the old bundle")
    real_replace = os.replace

    def replace(src, dst):
        if Path(dst) == out and Path(src).name.startswith(".model.tmp-"):
            raise OSError("simulated: cannot move the new bundle into place")
        return real_replace(src, dst)

    def exchange(a, b):
        if swap == "two renames":
            return False  # a system without renameat2: the fallback
        raise OSError("simulated: cannot swap the bundles")

    def build(folder):
        for name in bundle.REQUIRED_FILES:
            (folder / name).write_text("{}")
        return {}

    monkeypatch.setattr(bundle.os, "replace", replace)
    monkeypatch.setattr(bundle, "exchange", exchange)
    with pytest.raises(OSError, match="simulated"):
        bundle.write_bundle(out, build, overwrite=True)
    monkeypatch.undo()
    assert (out / "manifest.json").read_text() == "the old bundle"
    assert hidden_entries(tmp_path) == []
