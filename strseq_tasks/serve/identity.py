"""What makes two model bundles the same model: their content, not when they were built.

A bundle's ``manifest_sha256`` changes with every build: it covers the creation time, training's
wall-clock seconds and the folders it was built from. Two trainings on the same pairs, parameters
and base model give the same graphs, vocabulary, decoding settings and calibration, so the same
outputs: ``content_sha256`` is a sha256 over exactly that, and the cleaning job keys its
``strseq_processed`` markers by it (``model_identity``), so a retrained identical model does not
send every row through again.

What it covers is what ``runtime.Normalizer`` reads to predict: the sha256 of every bundle file
but the PyTorch weights and the model card (with those a runtime copy left out, as its source
recorded them: the copy is the same model), and the manifest's ``model_config``, ``decoding``, ``calibration`` and
which graphs ``precision`` serves (with int8's own calibration). The weights are left out: no
output is computed from them (prediction runs the ONNX graphs exported from them, which are
covered), and their file is not byte-reproducible (safetensors writes the names of tied tensors
in an order that varies from process to process, measured on 2026-12-06: equal tensors, two
sha256s), while the graphs, int8 ones included, are (``tests/flows/test_cli_retrain.py`` trains
twice in two processes and compares).

Standard library only.
"""

from __future__ import annotations

import hashlib
import json

TRAINING_ONLY_FILES = ("weights.safetensors",)  # bundle.WEIGHTS_FILE: for fine-tuning, never read to predict
DESCRIPTIVE_FILES = ("MODEL_CARD.md",)  # model_card.CARD_FILE: says what the outputs are, decides none


def content_sha256(manifest: dict) -> str:
    """The sha256 of what decides a model bundle's outputs (see the module's docstring)."""
    precision = manifest.get("precision") or {}
    files = {**left_out(manifest), **manifest["files"]}  # a runtime copy's graphs are its source's
    body = {
        "files": {name: sha for name, sha in files.items() if name not in TRAINING_ONLY_FILES + DESCRIPTIVE_FILES},
        "model_config": manifest.get("model_config"),
        "decoding": manifest.get("decoding"),
        "calibration": manifest.get("calibration"),
        "precision": {"default": precision.get("default"),
                      "int8_calibration": (precision.get("int8") or {}).get("calibration")},
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def left_out(manifest: dict) -> dict[str, str]:
    """The files a runtime copy (``bundle_copy.runtime_copy``) left out of its source, name -> sha256:
    the weights, and the graphs of the precision it does not serve."""
    runtime = manifest.get("runtime_only")
    found = runtime.get("left_out") if isinstance(runtime, dict) else None
    return found if isinstance(found, dict) else {}


def model_identity(manifest: dict) -> str:
    """The identity the cleaning job's markers use: the bundle's ``content_sha256``. A bundle
    written before strseq recorded it keeps its ``manifest_sha256``, the identity its markers were
    written with, so upgrading strseq does not make a cleaning run handle every row again."""
    return manifest.get("content_sha256") or manifest["manifest_sha256"]
