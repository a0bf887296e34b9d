"""int8 bundles: trained in by default, gated against fp32, batch-independent, refused clearly.

``tiny_bundle`` is trained with the defaults, so it carries int8 graphs that passed the gate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import strseq_tasks.learn.build as pipeline
from strseq_tasks.core.calibration import Calibration
from strseq_tasks.learn.build import train_bundle
from strseq_tasks.learn.training import TrainConfig
from strseq_tasks.serve.bundle import GRAPH_FILES, BundleError, read_manifest
from strseq_tasks.serve.runtime import Normalizer

from .cli_harness import run_strseq, write_csv


def test_a_trained_bundle_serves_its_gated_int8_graphs(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    info = manifest["precision"]
    assert info["default"] == "int8"
    assert info["int8"]["files"] == list(GRAPH_FILES["int8"])
    assert set(GRAPH_FILES["int8"]) <= set(manifest["files"])  # hashed like every other file
    gate = info["int8"]["gate"]
    assert gate["accepted"] and gate["rows"] >= 500 and gate["changed_share"] <= gate["max_changed"]
    int8, fp32 = Normalizer(tiny_bundle), Normalizer(tiny_bundle, precision="fp32")
    assert (int8.precision, fp32.precision) == ("int8", "fp32")
    # each engine is served with the calibration fitted on its own outputs
    assert int8.calibration == Calibration(**info["int8"]["calibration"])
    assert fp32.calibration == Calibration(**manifest["calibration"])


def test_int8_agrees_with_fp32_within_the_gate(tiny_bundle, name_pairs):
    texts = [a for a, _ in name_pairs]
    int8 = Normalizer(tiny_bundle).normalize(texts)
    fp32 = Normalizer(tiny_bundle, precision="fp32").normalize(texts)
    changed = sum(a.text != b.text for a, b in zip(int8, fp32))
    assert changed <= 0.005 * len(texts), changed
    assert max(abs(a.confidence - b.confidence) for a, b in zip(int8, fp32)) < 0.05


def test_an_int8_output_does_not_depend_on_the_rest_of_its_batch(tiny_bundle, name_pairs):
    # Static quantization fixes every activation range at training; dynamic quantization would
    # take the ranges from the whole batch, and a row's confidence would move with its neighbours.
    texts = [a for a, _ in name_pairs][:120]
    # the model's own path: layout programs, which a first call can leave verified for the second, aside
    normalizer = Normalizer(tiny_bundle, programs=False)
    alone = normalizer.normalize(texts, batch_size=1)
    together = normalizer.normalize(texts, batch_size=64)
    assert [p.text for p in alone] == [p.text for p in together]
    np.testing.assert_allclose([p.confidence for p in alone], [p.confidence for p in together], atol=1e-6)


def test_int8_that_fails_the_gate_leaves_an_fp32_bundle(tmp_path, name_pairs, monkeypatch):
    decode = pipeline.decode_folder

    def bad_int8(folder, vocab, max_len, texts, precision="fp32", **kwargs):
        outputs, logprob, distance = decode(folder, vocab, max_len, texts, precision, **kwargs)
        if precision == "int8":  # as if quantization had broken the model
            outputs = [o + "x" if i % 10 == 0 else o for i, o in enumerate(outputs)]
        return outputs, logprob, distance

    monkeypatch.setattr(pipeline, "decode_folder", bad_int8)
    out = tmp_path / "model"
    from fixtures.data import TINY_MODEL

    outcome = train_bundle(name_pairs[:80], out, TrainConfig(max_epochs=2, seed=0), TINY_MODEL, pretrained=None)
    info = outcome.manifest["precision"]
    assert info["default"] == "fp32" and info["int8"] is None
    assert not info["int8_refused"]["accepted"] and "more than the 0.50% allowed" in info["int8_refused"]["reason"]
    assert not any((out / name).exists() for name in GRAPH_FILES["int8"])
    assert not set(GRAPH_FILES["int8"]) & set(outcome.manifest["files"])
    assert Normalizer(out).precision == "fp32"
    with pytest.raises(BundleError, match="no int8 graphs: they were refused at training"):
        Normalizer(out, precision="int8")


def test_precision_fp32_and_the_cli_option(tmp_path, name_pairs, tiny_bundle):
    from fixtures.data import TINY_MODEL

    out = tmp_path / "fp32"
    manifest = train_bundle(name_pairs[:80], out, TrainConfig(max_epochs=2, seed=0, precision="fp32"), TINY_MODEL,
                            pretrained=None).manifest
    assert manifest["precision"] == {"default": "fp32", "int8": None}
    assert not any((out / name).exists() for name in GRAPH_FILES["int8"])
    inputs = write_csv(tmp_path / "in.csv", ["input"], [["SMITH, John"], ["mary o'neil"]])

    proc = run_strseq("predict", "--model", out, "--input", inputs, "--out", tmp_path / "x.csv",
                      "--precision", "int8")
    assert proc.returncode == 2 and "no int8 graphs" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "x.csv").exists()

    rows = tmp_path / "rows.csv"
    proc = run_strseq("evaluate", "--model", tiny_bundle, "--pairs", write_csv(
        tmp_path / "pairs.csv", ["input", "target"], [["SMITH, John", "John Smith"]]), "--precision", "fp32",
        "--out", rows)
    assert proc.returncode == 0, proc.stderr
    assert "running the fp32 graphs" in proc.stderr
    expected = Normalizer(tiny_bundle, precision="fp32").normalize(["SMITH, John"])[0]
    written = pd.read_csv(rows, keep_default_na=False)
    assert written["prediction"][0] == expected.text
    assert written["confidence"][0] == pytest.approx(expected.confidence, abs=1e-5)
