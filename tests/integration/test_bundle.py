"""A modified or incomplete bundle is refused before any graph runs: by ``Normalizer`` with a
``BundleError`` naming the problem, and by ``strseq predict`` with exit code 2.

Every test tampers with its own copy of ``tiny_bundle``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from strseq_tasks.serve.bundle import BundleError, sha256_file
from strseq_tasks.serve.runtime import Normalizer

from .cli_harness import run_strseq, write_csv


def _reseal(manifest: dict) -> dict:
    """Recompute the manifest's own checksum, as a careless tool (or a forger) would."""
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    manifest["manifest_sha256"] = hashlib.sha256(
        json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return manifest


def _edit_manifest(folder: Path, change: Callable[[dict], None], reseal: bool) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    change(manifest)
    if reseal:
        _reseal(manifest)
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")


def flip_one_encoder_byte(folder: Path) -> None:
    path = folder / "encoder.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def edit_vocab(folder: Path) -> None:
    path = folder / "vocab.json"
    vocab = json.loads(path.read_text(encoding="utf-8"))
    vocab["chars"][-1], vocab["chars"][-2] = vocab["chars"][-2], vocab["chars"][-1]  # same size, other ids
    path.write_text(json.dumps(vocab, ensure_ascii=False, indent=1), encoding="utf-8")


def edit_a_metric(folder: Path) -> None:
    def better(manifest: dict) -> None:
        manifest["metrics"]["validation"]["exact_match"] = 0.99

    _edit_manifest(folder, better, reseal=False)


def delete_decoder(folder: Path) -> None:
    (folder / "decoder_step.onnx").unlink()


def flip_one_int8_decoder_byte(folder: Path) -> None:
    path = folder / "decoder_step.int8.onnx"  # the graphs served by default
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def delete_int8_encoder(folder: Path) -> None:
    (folder / "encoder.int8.onnx").unlink()


def link_the_vocab_outside(folder: Path) -> None:
    # The same bytes, so the hash matches: only the link is wrong (it could point anywhere later).
    outside = folder.parent / "vocab-elsewhere.json"
    shutil.copy(folder / "vocab.json", outside)
    (folder / "vocab.json").unlink()
    (folder / "vocab.json").symlink_to(outside)


def list_a_file_outside(folder: Path) -> None:
    # A real file with the right hash sits beside the bundle: only its path is wrong.
    outside = folder.parent / "escape.onnx"
    shutil.copy(folder / "encoder.onnx", outside)

    def add(manifest: dict) -> None:
        manifest["files"]["../escape.onnx"] = sha256_file(outside)

    _edit_manifest(folder, add, reseal=True)


# tamper -> fragments the error must contain
TAMPERING = {
    "encoder_byte": (flip_one_encoder_byte, ["encoder.onnx", "sha256"]),
    "vocab_edit": (edit_vocab, ["vocab.json", "sha256"]),
    "manifest_metric": (edit_a_metric, ["manifest.json", "modified"]),
    "decoder_deleted": (delete_decoder, ["decoder_step.onnx", "missing"]),
    "int8_decoder_byte": (flip_one_int8_decoder_byte, ["decoder_step.int8.onnx", "sha256"]),
    "int8_encoder_deleted": (delete_int8_encoder, ["encoder.int8.onnx", "missing"]),
    "path_outside": (list_a_file_outside, ["../escape.onnx", "outside"]),
    "symlinked_file": (link_the_vocab_outside, ["vocab.json", "symbolic link"]),
}


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_bundle, folder)
    Normalizer(folder)  # the untouched copy loads
    return folder


@pytest.mark.parametrize("case", list(TAMPERING))
def test_normalizer_refuses_a_tampered_bundle(case, bundle_copy):
    tamper, fragments = TAMPERING[case]
    tamper(bundle_copy)
    with pytest.raises(BundleError) as caught:
        Normalizer(bundle_copy)
    for fragment in fragments:
        assert fragment in str(caught.value), (fragment, str(caught.value))


@pytest.mark.parametrize("case", list(TAMPERING))
def test_predict_refuses_a_tampered_bundle(case, bundle_copy, tmp_path, ledger):
    tamper, fragments = TAMPERING[case]
    tamper(bundle_copy)
    source = write_csv(tmp_path / "inputs.csv", ["input"], [["SMITH, John"]])
    output = tmp_path / "out.csv"
    proc = run_strseq("predict", "--model", bundle_copy, "--input", source, "--out", output)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    ledger("tampering", f"strseq predict on a bundle with {tamper.__name__.replace('_', ' ')}", "model folder",
           error=proc.stderr.removeprefix("error: "))
    for fragment in fragments:
        assert fragment in proc.stderr, (fragment, proc.stderr)
    assert not output.exists()


def test_predict_refuses_a_folder_that_is_not_a_bundle(tmp_path):
    source = write_csv(tmp_path / "inputs.csv", ["input"], [["SMITH, John"]])
    (tmp_path / "empty").mkdir()  # not tmp_path itself: the output may not go inside the --model folder
    for folder, fragment in ((tmp_path / "absent", "no such directory"),
                             (tmp_path / "empty", "manifest.json is missing")):
        proc = run_strseq("predict", "--model", folder, "--input", source, "--out", tmp_path / "out.csv")
        assert proc.returncode == 2 and fragment in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_normalizer_refuses_a_manifest_that_does_not_cover_the_graphs(bundle_copy):
    _edit_manifest(bundle_copy, lambda manifest: manifest["files"].pop("encoder.onnx"), reseal=True)
    flip_one_encoder_byte(bundle_copy)
    with pytest.raises(BundleError, match="encoder.onnx"):
        Normalizer(bundle_copy)


def test_exchange_swaps_two_folders_in_one_step(tmp_path):
    from strseq_tasks.serve.bundle import exchange

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "old").write_text("old"), (b / "new").write_text("new")
    if not exchange(a, b):
        pytest.skip("this file system cannot swap folders atomically (the two-rename fallback is tested)")
    assert [p.name for p in a.iterdir()] == ["new"] and [p.name for p in b.iterdir()] == ["old"]
    with pytest.raises(OSError, match="cannot swap"):
        exchange(a, tmp_path / "missing")
