"""A finished training whose export failed is kept, and can be exported later (``strseq export``).

``train_bundle`` trains for minutes or hours, then exports the ONNX graphs and proves them
against PyTorch (``export.check_parity``). Should that fail (a refused parity check, an exporter
error, a full disk), the training is not thrown away: it is written, atomically and
with the sha256 of every file (``bundle.write_bundle``), beside the model folder that was asked
for, which is left as it was (``pipeline.keep_training``):

```
MODEL.unexported-20261204T160631/
  weights.safetensors   the trained weights
  vocab.json            the vocabulary
  known_values.json     the known values (when trained with them)
  parity_inputs.json    the rows the export is checked on (validation inputs)
  manifest.json         the model's manifest without its export: configs, metrics, calibration,
                        decoding; why the export failed; sha256 of every file
```

``export_kept`` exports it as training would have and writes a verified bundle. It serves fp32
graphs: int8 graphs are judged on the training pairs, which a kept training does not hold
(train again with the pairs for int8).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_model

from strseq_tasks.core.known import KnownValues
from strseq_tasks.core.vocab import CharVocab
from strseq_tasks.learn.build import export_checked
from strseq_tasks.learn.export import describe_graphs
from strseq_tasks.learn.model import ModelConfig, Seq2Seq
from strseq_tasks.serve.bundle import (
    KEPT_FILES,
    KNOWN_FILE,
    PARITY_FILE,
    PARITY_ROWS,
    WEIGHTS_FILE,
    BundleError,
    read_manifest,
    write_bundle,
)
from strseq_tasks.serve.bundle_schema import UNEXPORTED_FORMAT, read_known, read_vocab

log = logging.getLogger("strseq")

def _parity_inputs(folder: Path) -> list[str]:
    path = folder / PARITY_FILE
    try:
        texts = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{path} is not valid JSON: {exc}") from None
    if not (isinstance(texts, list) and 1 <= len(texts) <= PARITY_ROWS and all(isinstance(t, str) for t in texts)):
        raise BundleError(f"{path}: must be a list of 1 to {PARITY_ROWS} strings")
    return texts


def load_kept(folder: Path | str) -> tuple[dict, Seq2Seq, CharVocab, KnownValues | None, list[str]]:
    """A kept training, verified (sha256 of every file, every value checked: ``bundle_schema``):
    its manifest, model, vocabulary, known values and parity rows."""
    folder = Path(folder)
    manifest = read_manifest(folder, fmt=UNEXPORTED_FORMAT, required=KEPT_FILES, kind="kept training")
    vocab = read_vocab(folder, manifest["model_config"]["vocab_size"])
    try:
        model = Seq2Seq(vocab, ModelConfig(**manifest["model_config"]))
        missing, unexpected = load_model(model, str(folder / WEIGHTS_FILE))
    except (TypeError, RuntimeError, SafetensorError) as exc:
        raise BundleError(f"{folder / WEIGHTS_FILE}: the weights do not fit the model_config "
                          f"({str(exc).splitlines()[0]})") from None
    if missing or unexpected:
        raise BundleError(f"{folder / WEIGHTS_FILE}: the weights do not fit the model_config "
                          f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    info = (manifest.get("decoding") or {}).get("known_values")
    if info and KNOWN_FILE not in manifest["files"]:
        raise BundleError(f"{folder}: the manifest names known values but does not list {KNOWN_FILE}")
    known = read_known(folder, info) if info else None
    return manifest, model.eval(), vocab, known, _parity_inputs(folder)


def export_kept(folder: Path | str, out_dir: Path | str, overwrite: bool = False) -> dict:
    """Export a kept training (``keep_training``) into a verified model bundle at ``out_dir``;
    its manifest. ``BundleError`` for a folder that is not a kept training or was altered;
    ``ParityError`` (nothing written) if the export is refused again."""
    folder, out_dir = Path(folder), Path(out_dir)
    manifest, model, vocab, known, texts = load_kept(folder)
    record = {k: v for k, v in manifest.items()
              if k not in ("format", "created", "files", "manifest_sha256", "export_error", "meant_for")}

    def build(target: Path) -> dict:
        parity = export_checked(target, model, vocab, known, texts)
        describe_graphs(target, record)
        return {**record, "onnx_parity": parity,
                "precision": {"default": "fp32", "int8": None,
                              "int8_skipped": "exported from a kept training (strseq export), which does not hold "
                                              "the training pairs the int8 gate judges on"},
                "exported_from": {"path": str(folder), "manifest_sha256": manifest["manifest_sha256"],
                                  "after": manifest.get("export_error")}}

    result = write_bundle(out_dir, build, overwrite=overwrite)
    log.info("wrote %s from the training kept in %s (serves fp32)", out_dir, folder)
    return result
