"""Normalizing on several processes (``strseq_tasks.serve.workers``, ``strseq predict --workers``):
the same predictions, in the same order, as one process gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
import pytest
from fixtures.data import lowercase_pairs

import strseq_tasks.serve.workers as workers
from strseq_tasks.serve.runtime import Normalizer
from strseq_tasks.serve.workers import auto_workers, normalize_parallel

from .cli_harness import ONE_THREAD, read_csv_raw, run_strseq, write_csv


def _same(got, want) -> None:
    """Text and status of every row, in input order; confidences to float rounding (a chunk's
    batches pad to other lengths than one process's do)."""
    assert [(p.text, p.status) for p in got] == [(p.text, p.status) for p in want]
    np.testing.assert_allclose([p.confidence for p in got], [p.confidence for p in want], atol=1e-6)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    inputs = [a for a, _ in lowercase_pairs()]
    # repeats (decoded once, answered everywhere), an empty value, one longer than the model takes,
    # and a value whose NFD form is another row's NFC form
    return inputs + inputs[:25] + ["", "x" * 400, "Jose\u0301 Ruiz", "Jos\u00e9 Ruiz"]


def test_processes_give_the_predictions_one_process_gives(lower_bundle, texts, monkeypatch):
    monkeypatch.setattr(workers, "CHUNK", 16)  # many chunks, finishing out of order
    # the model's own path: what layout programs answer, and where, is test_programs_runtime.py's
    normalizer = Normalizer(lower_bundle, programs=False)
    alone = normalizer.normalize(texts)
    done: list[int] = []
    parallel = normalize_parallel(normalizer, texts, workers=2, on_batch=done.append)
    _same(parallel, alone)
    assert sum(p.text != t for p, t in zip(alone, texts)) > 10  # the model does change values
    assert sum(done) == len(texts)  # progress counts every row, repeats included
    assert {p.status for p in parallel} == {"ok", "empty", "too_long"}


def test_workers_keep_the_precision_and_known_values_of_the_parent(lower_bundle, texts):
    from strseq_tasks.core.known import KnownValues

    normalizer = Normalizer(lower_bundle, known=KnownValues(["zzz zzz"], max_distance=1), precision="fp32")
    parallel = normalize_parallel(normalizer, texts[:40] + ["zzz zzy"], workers=2)
    _same(parallel, normalizer.normalize(texts[:40] + ["zzz zzy"]))
    assert parallel[-1].text == "zzz zzz"  # snapped to the parent's list, which the bundle does not have


def test_auto_starts_a_process_per_core_only_for_enough_values(monkeypatch):
    monkeypatch.setattr(workers, "available_cores", lambda: 2)
    assert auto_workers(0) == 1
    assert auto_workers(workers.MIN_PER_WORKER * 2 - 1) == 1
    assert auto_workers(workers.MIN_PER_WORKER * 2) == 2
    assert auto_workers(10**7) == 2  # never more than the cores


def test_a_worker_that_cannot_load_the_model_stops_the_run(lower_bundle, tmp_path, texts):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(lower_bundle, copy)
    normalizer = Normalizer(copy)
    (copy / "vocab.json").write_text("{}", encoding="utf-8")  # altered after the parent verified it
    with pytest.raises(BrokenProcessPool):
        normalize_parallel(normalizer, texts, workers=2)


def test_predict_with_workers_writes_the_same_file(lower_bundle, texts, tmp_path):
    source = write_csv(tmp_path / "in.csv", ["input"], [[t] for t in texts if t])
    outputs = {}
    for count in ("1", "2"):
        out = tmp_path / f"out{count}.csv"
        done = run_strseq("predict", "--model", lower_bundle, "--input", source, "--out", out, "--workers", count)
        assert done.returncode == 0, done.stderr
        outputs[count] = read_csv_raw(out)
    assert outputs["1"] == outputs["2"]
    assert "on 2 processes" in done.stderr


def test_the_strseq_command_s_workers_do_not_import_the_command_again(lower_bundle, texts, tmp_path):
    """The console script starts its workers with ``spawn``; they load the runtime only, never the
    command again (pandas, typer, prefect), as with ``python -m``."""
    script = Path(sys.executable).with_name("strseq")
    assert script.is_file(), f"{script}: the strseq command is installed beside the interpreter"
    source = write_csv(tmp_path / "in.csv", ["input"], [[t] for t in texts if t])
    env = {**os.environ, **ONE_THREAD, "PYTHONPROFILEIMPORTTIME": "1"}  # every process lists its imports
    done = subprocess.run([sys.executable, str(script), "predict", "--model", str(lower_bundle), "--input",
                           str(source), "--out", str(tmp_path / "out.csv"), "--workers", "2"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    def processes_importing(module: str) -> int:
        return sum(line.startswith("import time:") and line.split("|")[-1].strip() == module
                   for line in done.stderr.splitlines())

    assert processes_importing("strseq_tasks.serve.workers") == 3  # the command and its two workers
    assert processes_importing("strseq_tasks.cli.common") == 1  # the command alone


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_predict_refuses_a_bad_worker_count(lower_bundle, tmp_path, value):
    source = write_csv(tmp_path / "in.csv", ["input"], [["JOHN SMITH"]])
    done = run_strseq("predict", "--model", lower_bundle, "--input", source, "--out", tmp_path / "o.csv",
                      "--workers", value)
    assert done.returncode == 2
    assert "--workers must be 'auto' or a whole number" in done.stderr
    assert not (tmp_path / "o.csv").exists()


def test_evaluate_with_workers_scores_the_same(lower_bundle, tmp_path):
    pairs = write_csv(tmp_path / "pairs.csv", ["input", "target"], lowercase_pairs()[:60])
    metrics = {}
    for count in ("1", "2"):
        out = tmp_path / f"m{count}.json"
        done = run_strseq("evaluate", "--model", lower_bundle, "--pairs", pairs, "--json-out", out, "--workers", count)
        assert done.returncode == 0, done.stderr
        metrics[count] = json.loads(out.read_text(encoding="utf-8"))["metrics"]
    assert metrics["1"]["exact_match"] == metrics["2"]["exact_match"]
    assert metrics["1"]["harm"] == metrics["2"]["harm"]
