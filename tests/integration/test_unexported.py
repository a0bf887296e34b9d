"""A finished training is not lost when its export fails: `strseq train` keeps it beside the model
folder (``MODEL.unexported-TIME``), leaves the model folder as it was, says where the training is
and how to export it; `strseq export --from FOLDER --out MODEL` then writes the bundle, which
predicts what the trained weights predict."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fixtures.data import TINY_SIZES, write_pairs

import strseq_tasks.learn.build as pipeline
from strseq_tasks.learn.decoding_choices import predict_torch
from strseq_tasks.learn.export import ParityError
from strseq_tasks.learn.training import TrainConfig
from strseq_tasks.learn.unexported import export_kept, load_kept
from strseq_tasks.serve.bundle import BundleError

from .cli_harness import ONE_THREAD, hidden_entries, read_csv_raw, run_strseq, snapshot, write_csv
from .test_bundle_sense import reseal

# `strseq train` as a user runs it, with tiny model sizes and its parity check refusing
TRAIN_REFUSED = textwrap.dedent(f"""
    import sys
    import strseq_tasks.learn.build as pipeline
    from strseq_tasks.learn.export import ParityError

    def refuse(*args, **kwargs):
        raise ParityError("ONNX export differs from PyTorch beyond float32 rounding: (injected)")

    sizes, build = {TINY_SIZES!r}, pipeline.initial_model
    pipeline.initial_model = lambda texts, seed, sized, lm, *rest: build(texts, seed, {{**sizes, **(sized or {{}})}},
                                                                          lm, *rest)
    pipeline.check_parity = refuse
    from strseq_tasks.cli import main
    sys.argv = ["strseq", *sys.argv[1:]]
    main()
""")
KEPT = re.compile(r"kept in (\S+) \(weights")


def test_a_refused_export_keeps_the_training_and_strseq_export_writes_the_model(tmp_path, name_pairs, ledger):
    pairs = write_pairs(tmp_path / "pairs.csv", name_pairs[:60])
    out = tmp_path / "models" / "names"
    proc = subprocess.run([sys.executable, "-c", TRAIN_REFUSED, "train", "--pairs", str(pairs), "--out", str(out),
                           "--max-epochs", "2", "--precision", "fp32", "--quiet"],
                          capture_output=True, text=True, timeout=600, env={**ONE_THREAD, "PATH": "/usr/bin:/bin"})
    ledger("crash", "strseq train: the export refused after training (ParityError injected); training kept, "
           "then strseq export", "model bundle", error=proc.stderr.removeprefix("error: "))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.startswith("error: the model was trained but not exported (ONNX export differs")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    kept = Path(KEPT.search(proc.stderr).group(1))
    assert f"strseq export --from {kept} --out {out}" in proc.stderr
    assert not out.exists() and hidden_entries(out.parent) == []  # no bundle, nothing half-written
    assert kept.parent == out.parent and kept.name.startswith("names.unexported-")
    assert {p.name for p in kept.iterdir()} == {"manifest.json", "vocab.json", "weights.safetensors",
                                                 "parity_inputs.json"}
    manifest = json.loads((kept / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "strseq-unexported/1" and "(injected)" in manifest["export_error"]
    assert manifest["training"]["epochs"] == 2 and manifest["meant_for"] == str(out)

    proc = run_strseq("export", "--from", kept, "--out", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"model written to {out}" in proc.stdout
    bundle = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert bundle["exported_from"]["path"] == str(kept) and bundle["precision"]["default"] == "fp32"
    assert bundle["onnx_parity"]["rows"] == len(json.loads((kept / "parity_inputs.json").read_text()))
    for key in ("model_config", "training", "data", "calibration", "decoding", "metrics", "training_config"):
        assert bundle[key] == manifest[key], key

    inputs = [a for a, _ in name_pairs[60:90]]
    source = write_csv(tmp_path / "inputs.csv", ["input"], [[a] for a in inputs])
    proc = run_strseq("predict", "--model", out, "--input", source, "--out", tmp_path / "out.csv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    header, rows = read_csv_raw(tmp_path / "out.csv")
    _, model, vocab, _, _ = load_kept(kept)
    expected = predict_torch(model, vocab, inputs, identity_margin=manifest["decoding"]["identity_margin"],
                             spaces=manifest["decoding"]["spaces"])[0]
    assert [r[header.index("prediction")] for r in rows] == expected  # the trained weights' own answers


@pytest.fixture
def refused_once(monkeypatch):
    """The parity check refuses the next export, then checks as usual."""
    real, calls = pipeline.check_parity, []

    def check(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ParityError("ONNX export differs from PyTorch beyond float32 rounding: (injected)")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "check_parity", check)


def _train(name_pairs, out: Path, **kwargs):
    return pipeline.train_bundle(name_pairs[:40], out, TrainConfig(max_epochs=1, precision="fp32"), TINY_SIZES,
                                 pretrained=None, **kwargs)


def test_a_refusal_is_a_parity_error_that_names_the_kept_training(tmp_path, name_pairs, refused_once):
    with pytest.raises(pipeline.ExportRefused) as caught:
        _train(name_pairs, tmp_path / "model")
    assert isinstance(caught.value, ParityError)  # what callers that handle parity failures catch
    assert caught.value.kept.is_dir() and not (tmp_path / "model").exists()
    export_kept(caught.value.kept, tmp_path / "model")  # the second check passes
    assert (tmp_path / "model" / "manifest.json").is_file()


def test_an_exporter_crash_keeps_the_training_and_the_previous_model(tmp_path, name_pairs, tiny_bundle, monkeypatch):
    out = tmp_path / "model"
    shutil.copytree(tiny_bundle, out)
    before = snapshot(out)

    def crash(*args, **kwargs):
        raise RuntimeError("simulated exporter failure")

    monkeypatch.setattr(pipeline, "export_onnx", crash)
    with pytest.raises(pipeline.ExportFailed, match="simulated exporter failure") as caught:
        _train(name_pairs, out, overwrite=True, keep_dir=tmp_path / "kept")
    assert not isinstance(caught.value, ParityError)
    assert snapshot(out) == before and hidden_entries(tmp_path) == []
    assert caught.value.kept.parent == tmp_path / "kept"
    monkeypatch.undo()
    export_kept(caught.value.kept, tmp_path / "again")


def test_a_second_refusal_writes_nothing_and_keeps_the_training(tmp_path, name_pairs, refused_once, monkeypatch):
    with pytest.raises(pipeline.ExportRefused) as caught:
        _train(name_pairs, tmp_path / "model")
    kept = caught.value.kept
    before = snapshot(kept)
    monkeypatch.setattr(pipeline, "check_parity", lambda *a, **k: (_ for _ in ()).throw(ParityError("again")))
    with pytest.raises(ParityError, match="again"):
        export_kept(kept, tmp_path / "model")
    assert not (tmp_path / "model").exists() and hidden_entries(tmp_path) == [] and snapshot(kept) == before


def test_export_refuses_a_folder_that_is_not_a_kept_training(tmp_path, name_pairs, tiny_bundle, refused_once):
    with pytest.raises(pipeline.ExportRefused) as caught:
        _train(name_pairs, tmp_path / "model")
    kept = caught.value.kept
    manifest = json.loads((kept / "manifest.json").read_text(encoding="utf-8"))
    manifest["model_config"]["dec_hidden"] = 4096
    (kept / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    reseal(kept)
    for folder, fragment in ((kept, "model_config.dec_hidden"), (tiny_bundle, "not a strseq-unexported/1 manifest")):
        proc = run_strseq("export", "--from", folder, "--out", tmp_path / "out")
        assert proc.returncode == 2 and proc.stderr.startswith("error: --from: ") and fragment in proc.stderr, \
            proc.stderr
        assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
    with pytest.raises(BundleError):
        load_kept(kept)
