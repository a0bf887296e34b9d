"""A bundle's model card, and its runtime copy (``serve/bundle_copy.py``, ``strseq models copy``):
what a CPU server needs, the same model, a fraction of the size."""

from __future__ import annotations

import json
import shutil

import pytest

from integration.cli_harness import run_strseq  # tests/ is on sys.path
from strseq_tasks.serve.bundle import GRAPH_FILES, BundleError, read_manifest
from strseq_tasks.serve.bundle_copy import runtime_copy
from strseq_tasks.serve.identity import content_sha256
from strseq_tasks.serve.loading import open_model
from strseq_tasks.serve.model_card import CARD_FILE, model_card
from strseq_tasks.serve.runtime import Normalizer


def _size(folder) -> int:
    return sum(f.stat().st_size for f in folder.iterdir())


def test_a_bundle_carries_a_model_card_from_its_manifest(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    card = (tiny_bundle / CARD_FILE).read_text(encoding="utf-8")
    assert card.startswith("# Model card: tiny") and CARD_FILE in manifest["files"]
    assert f"{100 * manifest['metrics']['validation']['exact_match']:.1f}%" in card
    assert f"{manifest['data']['pairs']} pairs" in card and manifest["data"]["fingerprint"] in card
    assert all(f"`{name}`" in card for name in manifest["files"])
    # the card describes the outputs, it does not decide them: not part of the model's identity
    edited = {**manifest, "files": {**manifest["files"], CARD_FILE: "0" * 64}}
    assert content_sha256(edited) == manifest["content_sha256"]
    assert model_card({}).startswith("# Model card: model")  # any manifest, even a bare one, has a card


@pytest.mark.parametrize("all_graphs", [False, True])
def test_a_runtime_copy_is_the_same_model_without_the_weights(tiny_bundle, name_pairs, tmp_path, all_graphs):
    source = read_manifest(tiny_bundle)
    copy = runtime_copy(tiny_bundle, tmp_path / "runtime", all_graphs=all_graphs)
    served = source["precision"]["default"]
    files = set((tmp_path / "runtime").iterdir())
    assert "weights.safetensors" not in {f.name for f in files}
    unserved = [n for p, names in GRAPH_FILES.items() if p != served for n in names if n in source["files"]]
    assert all((n in copy["files"]) == all_graphs for n in unserved)
    assert copy["runtime_only"]["left_out"]["weights.safetensors"] == source["files"]["weights.safetensors"]
    assert copy["content_sha256"] == source["content_sha256"] == open_model(tmp_path / "runtime").sha
    assert copy["created"] == source["created"] and copy["metrics"] == source["metrics"]
    texts = [a for a, _ in name_pairs]
    assert Normalizer(tmp_path / "runtime").normalize(texts) == Normalizer(tiny_bundle).normalize(texts)
    if all_graphs:
        assert _size(tmp_path / "runtime") < _size(tiny_bundle)
        return
    # the bar: at least 40% smaller (the default-size names model: 79%, docs/commands.md)
    assert _size(tmp_path / "runtime") <= 0.6 * _size(tiny_bundle)
    assert unserved  # the tiny bundle has graphs of both precisions: a precision left out is refused, by name
    other = next(p for p in GRAPH_FILES if p != served)
    with pytest.raises(BundleError, match=f"holds only the {served} graphs"):
        Normalizer(tmp_path / "runtime", precision=other)


def test_a_runtime_copy_edited_to_leave_out_the_graphs_it_serves_is_refused(tiny_bundle, tmp_path):
    runtime_copy(tiny_bundle, tmp_path / "runtime")
    manifest = read_manifest(tmp_path / "runtime")
    served = manifest["precision"]["default"]
    encoder = GRAPH_FILES[served][0]
    (tmp_path / "runtime" / encoder).unlink()
    with pytest.raises(BundleError, match=f"{encoder} is missing"):
        read_manifest(tmp_path / "runtime")


def test_a_runtime_copy_is_not_copied_again(tiny_bundle, tmp_path):
    runtime_copy(tiny_bundle, tmp_path / "runtime")
    with pytest.raises(BundleError, match="runtime copy already"):
        runtime_copy(tmp_path / "runtime", tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_strseq_models_export_writes_the_copy_a_cpu_server_needs(tiny_bundle, tmp_path):
    shutil.copytree(tiny_bundle, tmp_path / "model")
    done = run_strseq("models", "copy", "--model", tmp_path / "model", "--out", tmp_path / "cpu", "--runtime-only",
                      "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert "weights.safetensors" in result["left_out"] and result["bytes"] == _size(tmp_path / "cpu")
    assert result["content_sha256"] == read_manifest(tiny_bundle)["content_sha256"]
    # the bundle's own folder is not a place for its copy; an existing folder is kept unless --force
    refused = run_strseq("models", "copy", "--model", tmp_path / "model", "--out", tmp_path / "model" / "x",
                         "--runtime-only")
    assert refused.returncode == 2 and refused.stderr.startswith("error: ") and "Traceback" not in refused.stderr
    again = run_strseq("models", "copy", "--model", tmp_path / "model", "--out", tmp_path / "cpu")
    assert again.returncode == 2 and "already exists" in again.stderr
    whole = run_strseq("models", "copy", "--model", tmp_path / "model", "--out", tmp_path / "cpu", "--force")
    assert whole.returncode == 0, whole.stderr
    assert read_manifest(tmp_path / "cpu")["files"] == read_manifest(tiny_bundle)["files"]
