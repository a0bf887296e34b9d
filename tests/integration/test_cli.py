"""`strseq train | predict | evaluate` end to end, on real files, in a fresh interpreter.

The command trains a real (default-size) model twice in this module, for 2 epochs each: once
on a CSV of 60 pairs, once on Parquet with --force. Predict and evaluate use ``tiny_bundle``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from strseq_tasks.learn.transfer import default_pretrained_path
from strseq_tasks.serve.bundle import INT8_DECODER_FILE, INT8_ENCODER_FILE, fingerprint_pairs
from strseq_tasks.serve.runtime import Normalizer

from .cli_harness import BUNDLE_FILES, hidden_entries, read_csv_raw, run_strseq, snapshot, write_csv

BOM = b"\xef\xbb\xbf"
METRIC_LABELS = {
    "exact_match": "exact match",
    "cer": "character error rate (CER)",
    "harm": "harm (clean inputs changed)",
    "accuracy_at_50": "accuracy of the 50% most confident",
    "accuracy_at_80": "accuracy of the 80% most confident",
    "coverage_at_99": "coverage at >= 99% precision",
}


def printed_metric(stdout: str, label: str) -> float | None:
    """The value printed after ``label`` (None for 'n/a')."""
    match = re.search(rf"^\s+{re.escape(label)}\s+(\S+)\s*$", stdout, flags=re.MULTILINE)
    assert match, f"{label!r} not printed in:\n{stdout}"
    return None if match.group(1) == "n/a" else float(match.group(1))


@pytest.fixture(scope="module")
def csv_training(tmp_path_factory, name_pairs):
    """One `strseq train` on a CSV of 60 pairs: (pairs file, model folder, finished process)."""
    folder = tmp_path_factory.mktemp("cli_train")
    pairs_file = write_csv(folder / "pairs.csv", ["input", "target"], name_pairs[:60])
    out = folder / "model"
    proc = run_strseq("train", "--pairs", pairs_file, "--out", out, "--max-epochs", 2, "--seed", 0)
    assert proc.returncode == 0, proc.stderr
    return pairs_file, out, proc


# --- train -----------------------------------------------------------------------------------


def _bundle_files(out) -> set[str]:
    """What a trained bundle holds: the fp32 files, and the int8 graphs when they passed the gate."""
    int8 = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["precision"].get("int8")
    return BUNDLE_FILES | ({INT8_ENCODER_FILE, INT8_DECODER_FILE} if int8 else set())


def test_train_writes_a_complete_verified_bundle(csv_training, name_pairs):
    pairs_file, out, _ = csv_training
    assert {p.name for p in out.iterdir()} == _bundle_files(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["model", "pairs.csv"]  # no temp folder left
    manifest = Normalizer(out).manifest  # loading verifies every sha256
    assert set(manifest["files"]) == _bundle_files(out) - {"manifest.json"}
    assert manifest["data"]["rows"] == manifest["data"]["pairs"] == 60
    assert manifest["data"]["fingerprint"] == fingerprint_pairs(name_pairs[:60])
    assert manifest["training"]["epochs"] <= 2
    # from the shipped pretrained encoder-decoder unless told otherwise
    assert manifest["pretrained"]["kind"] == "transducer"
    assert Path(manifest["pretrained"]["path"]) == default_pretrained_path()
    assert manifest["onnx_parity"]["mismatched_outputs"] == 0


def test_train_prints_the_validation_metrics_it_recorded(csv_training):
    _, out, proc = csv_training
    validation = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["metrics"]["validation"]
    assert f"model written to {out}" in proc.stdout
    assert "validation metrics" in proc.stdout
    for key, label in METRIC_LABELS.items():
        printed = printed_metric(proc.stdout, label)
        if validation[key] is None:
            assert printed is None, label
        else:
            assert printed == pytest.approx(validation[key], abs=5e-5), label


def test_bundle_files_are_as_readable_as_any_file(csv_training):
    _, out, _ = csv_training
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in out.iterdir()}
    assert modes == {name: oct(0o666 & ~umask) for name in _bundle_files(out)}


def test_train_refuses_an_existing_out_folder(csv_training):
    pairs_file, out, _ = csv_training
    before = snapshot(out)
    proc = run_strseq("train", "--pairs", pairs_file, "--out", out, "--max-epochs", 2)
    assert proc.returncode == 2
    assert str(out) in proc.stderr and "--force" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(out) == before
    assert hidden_entries(out.parent) == []


def test_train_with_force_replaces_the_folder_from_parquet_pairs(csv_training, name_pairs, tmp_path):
    _, trained, _ = csv_training
    out = tmp_path / "model"
    shutil.copytree(trained, out)
    (out / "stale.txt").write_text("from an older model")
    pairs = name_pairs[60:100]
    parquet = tmp_path / "pairs.parquet"
    pd.DataFrame(pairs, columns=["input", "target"]).to_parquet(parquet, index=False)

    proc = run_strseq("train", "--pairs", parquet, "--out", out, "--max-epochs", 2, "--force")

    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} == _bundle_files(out)  # replaced, not merged
    manifest = Normalizer(out).manifest
    assert manifest["data"]["source"] == str(parquet)
    assert manifest["data"]["pairs"] == 40
    assert manifest["data"]["fingerprint"] == fingerprint_pairs(pairs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "pairs.parquet"]


# --- predict ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def predict_inputs(tiny_bundle) -> list[str]:
    too_long = "Bartholomew " * 6  # 72 characters
    assert len(too_long) > Normalizer(tiny_bundle).max_len
    return ["sally o'connor", "Mrs. Giovanna H. Budig", "  Mieszko  Kłosiewicz ", "", "Holger Boström",
            too_long, "SMITH, John", 'Dr. "Bob" Jones', "Jose\u0301 Mu\u0308ller", "a", "DR. KEMAL ŞAHİN",
            "李小龙", "mary o'neil", "", "Zoë Brontë 😀"]


@pytest.fixture(scope="module")
def predicted(tiny_bundle, predict_inputs, tmp_path_factory):
    """`strseq predict` on a CSV whose `input` column sits between two other columns."""
    folder = tmp_path_factory.mktemp("cli_predict")
    rows = [[f"{i:04d}", text, f"note {i}, with a comma"] for i, text in enumerate(predict_inputs)]
    source = write_csv(folder / "inputs.csv", ["record_id", "input", "note"], rows)
    output = folder / "out" / "predictions.csv"
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", output,
                      "--batch-size", 3)
    assert proc.returncode == 0, proc.stderr
    return rows, output


def test_predict_keeps_rows_order_and_columns(predicted):
    rows, output = predicted
    header, out_rows = read_csv_raw(output)
    assert header == ["record_id", "input", "note", "prediction", "confidence", "status"]
    assert [r[:3] for r in out_rows] == rows  # same rows, same order, values untouched


def test_predict_rows_match_normalizing_each_input_alone(predicted, tiny_bundle):
    # Batches of 3, grouped by length, must come back in input order: compare each row with
    # the prediction for that input on its own.
    rows, output = predicted
    _, out_rows = read_csv_raw(output)
    normalizer = Normalizer(tiny_bundle)
    for (_, text, _), (*_, prediction, confidence, status) in zip(rows, out_rows, strict=True):
        alone = normalizer.normalize([text], batch_size=1)[0]
        assert (prediction, status) == (alone.text, alone.status), text
        assert float(confidence) == pytest.approx(alone.confidence, abs=1e-5), text


def test_predict_flags_empty_and_too_long_inputs(predicted, tiny_bundle):
    rows, output = predicted
    _, out_rows = read_csv_raw(output)
    max_len = Normalizer(tiny_bundle).max_len
    for (_, text, _), (*_, prediction, confidence, status) in zip(rows, out_rows, strict=True):
        assert 0.0 <= float(confidence) <= 1.0
        if text == "":
            assert (prediction, status, float(confidence)) == ("", "empty", 1.0)
        elif len(text) > max_len:
            assert (prediction, status, float(confidence)) == (text, "too_long", 0.0)
        else:
            assert status == "ok"
    assert sum(r[-1] == "empty" for r in out_rows) == 2
    assert sum(r[-1] == "too_long" for r in out_rows) == 1


def test_predict_writes_utf8_without_bom_and_no_temp_file(predicted):
    _, output = predicted
    data = output.read_bytes()
    assert not data.startswith(BOM)
    assert data.decode("utf-8").startswith("record_id,input,note,")
    assert hidden_entries(output.parent) == []


def test_predict_parquet_in_parquet_out_keeps_column_types(tiny_bundle, tmp_path):
    source = tmp_path / "inputs.parquet"
    pd.DataFrame({"id": [7, 8, 9], "input": ["SMITH, John", "", "mary o'neil"]}).to_parquet(source, index=False)
    output = tmp_path / "predictions.parquet"
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", output)
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_parquet(output)
    assert list(frame.columns) == ["id", "input", "prediction", "confidence", "status"]
    assert frame["id"].tolist() == [7, 8, 9] and pd.api.types.is_integer_dtype(frame["id"])
    assert frame["status"].tolist() == ["ok", "empty", "ok"]


def test_predict_refuses_an_input_that_already_has_output_columns(tiny_bundle, tmp_path):
    source = write_csv(tmp_path / "inputs.csv", ["input", "status"], [["SMITH, John", "new"]])
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", tmp_path / "out.csv")
    assert proc.returncode == 2
    assert "inputs.csv" in proc.stderr and "status" in proc.stderr
    assert not (tmp_path / "out.csv").exists()


# --- evaluate --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluated(tiny_bundle, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_evaluate")
    pairs = folder / "heldout.csv"
    shutil.copy(Path(__file__).resolve().parents[2] / "examples" / "names_heldout.csv", pairs)
    proc = run_strseq("evaluate", "--model", tiny_bundle, "--pairs", pairs, "--json-out", folder / "metrics.json",
                      "--out", folder / "rows.csv")
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads((folder / "metrics.json").read_text(encoding="utf-8")), folder / "rows.csv"


def test_evaluate_prints_every_headline_metric(evaluated):
    proc, report, _ = evaluated
    assert "(100 pairs)" in proc.stdout
    for key, label in METRIC_LABELS.items():
        printed = printed_metric(proc.stdout, label)
        expected = report["metrics"][key]
        assert printed == (None if expected is None else pytest.approx(expected, abs=5e-5)), label
    assert "reliability" in proc.stdout


def test_evaluate_json_agrees_with_its_per_row_output(evaluated, tiny_bundle):
    _, report, rows_file = evaluated
    metrics = report["metrics"]
    rows = pd.read_csv(rows_file, dtype=str, keep_default_na=False)
    assert len(rows) == metrics["rows"] == 100
    correct = rows["prediction"] == rows["target"]
    assert (rows["correct"] == correct.astype(str)).all()
    assert metrics["exact_match"] == pytest.approx(correct.mean())
    clean = rows["input"] == rows["target"]
    assert metrics["clean_rows"] == clean.sum()
    if clean.any():
        assert metrics["harm"] == pytest.approx((rows["prediction"][clean] != rows["target"][clean]).mean())
    for key in ("exact_match", "cer", "accuracy_at_50", "accuracy_at_80", "coverage_at_99"):
        assert metrics[key] is None or 0.0 <= metrics[key] <= (10.0 if key == "cer" else 1.0), key
    assert isinstance(report["reliability"], list)
    # the rows are the runtime's own predictions
    expected = Normalizer(tiny_bundle).normalize(rows["input"].tolist())
    assert rows["prediction"].tolist() == [p.text for p in expected]


def test_the_commands_drop_prefects_thread_timeout_advice_and_nothing_else(caplog):
    """`strseq demo` runs its retrains side by side in threads; Prefect advised at each of their
    tasks that a timeout cannot interrupt a worker thread (48 lines in one demo). The commands'
    logging drops exactly that advice (its text is Prefect's own, read from its source here, so a
    reworded advice fails this test) and keeps every other warning of a task run."""
    import inspect
    import logging

    import prefect.task_engine

    from strseq_tasks.cli.common import setup_logging

    advice = ("Timeout of %s seconds configured for this task, but the task is running in a worker thread. "
              "Timeouts in worker threads cannot interrupt blocking operations")
    source = re.sub(r'"\s+"', "", inspect.getsource(prefect.task_engine))  # the message's literals, joined
    assert advice in source
    logger = logging.getLogger("prefect.task_runs")
    kept = list(logger.filters)
    try:
        setup_logging(quiet=False)
        with caplog.at_level(logging.WARNING):
            logger.warning(advice + " like `time.sleep()`.", 300.0)
            logger.warning("Task run failed with exception: %s", "boom")
        assert [r.getMessage() for r in caplog.records] == ["Task run failed with exception: boom"]
    finally:
        logger.filters[:] = kept
