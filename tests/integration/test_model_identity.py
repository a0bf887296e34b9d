"""A model bundle's identity is its content (``serve/identity.py``): what decides its outputs, not
when or where it was built. The cleaning job keys its processed markers by it; a manifest edited
to claim another content is refused, and a bundle written before strseq recorded it keeps the
identity its markers were written with."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from strseq_tasks.serve.bundle import BundleError, read_manifest
from strseq_tasks.serve.identity import content_sha256, model_identity
from strseq_tasks.serve.loading import open_model
from strseq_tasks.serve.runtime import Normalizer


def _seal(folder: Path, change) -> dict:
    """Edit a copy's manifest and recompute its own checksum (not its content identity)."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    manifest["manifest_sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False)
                                                 .encode()).hexdigest()
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return manifest


def test_a_built_bundle_records_its_content_identity(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    assert manifest["content_sha256"] == content_sha256(manifest) == model_identity(manifest)
    assert manifest["content_sha256"] != manifest["manifest_sha256"]
    assert open_model(tiny_bundle).sha == manifest["content_sha256"]


def test_what_changes_from_build_to_build_is_left_out(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    rebuilt = copy.deepcopy(manifest)
    rebuilt["created"] = "2031-01-01T00:00:00+00:00"
    rebuilt["training"]["seconds"] += 60
    rebuilt["training"]["history"][0]["seconds"] += 1
    rebuilt["data"]["source"] = "/elsewhere/pairs.csv"
    rebuilt["files"]["weights.safetensors"] = "0" * 64  # the same tensors, names written in another order
    rebuilt["precision"]["int8"]["seconds"] = 99.0
    rebuilt["name"] = "renamed"
    assert content_sha256(rebuilt) == manifest["content_sha256"]


def _set(*keys, value):
    def change(manifest: dict) -> None:
        for key in keys[:-1]:
            manifest = manifest[key]
        manifest[keys[-1]] = value
    return change


# what decides an output -> (the manifest entry, another value)
DECIDING = {
    "the fp32 encoder graph": (("files", "encoder.onnx"), "1" * 64),
    "the int8 decoder graph": (("files", "decoder_step.int8.onnx"), "1" * 64),
    "the vocabulary": (("files", "vocab.json"), "1" * 64),
    "known values added": (("files", "known_values.json"), "1" * 64),
    "max_len": (("model_config", "max_len"), 32),
    "the identity margin": (("decoding", "identity_margin"), 9.0),
    "the familiar shapes": (("decoding", "shapes"), ["Aa"]),
    "the calibration": (("calibration", "scale"), 2.0),
    "the graphs served": (("precision", "default"), "fp32"),
    "int8's calibration": (("precision", "int8", "calibration", "shift"), 7.0),
}


@pytest.mark.parametrize("case", list(DECIDING))
def test_whatever_decides_an_output_changes_it(tiny_bundle, case):
    keys, value = DECIDING[case]
    manifest = read_manifest(tiny_bundle)
    changed = copy.deepcopy(manifest)
    _set(*keys, value=value)(changed)
    assert content_sha256(changed) != manifest["content_sha256"]


def test_a_manifest_claiming_other_content_is_refused(tiny_bundle, tmp_path):
    folder = shutil.copytree(tiny_bundle, tmp_path / "model")
    _seal(folder, _set("decoding", "identity_margin", value=9.0))  # the checksum recomputed, the identity not
    with pytest.raises(BundleError, match="'content_sha256' is not the sha256 of the bundle's content"):
        Normalizer(folder)


def test_a_bundle_written_before_content_identity_keeps_its_manifest_checksum(tiny_bundle, tmp_path):
    folder = shutil.copytree(tiny_bundle, tmp_path / "model")
    manifest = _seal(folder, lambda m: m.pop("content_sha256"))
    opened = open_model(folder)
    assert opened.sha == manifest["manifest_sha256"]  # the markers it wrote still name it
    assert opened.normalizer.normalize(["SMITH, John"])[0].status == "ok"
