"""A bundle's model card, and its runtime copy: what a CPU server needs to predict, nothing more.

``runtime_copy`` writes a model bundle without its PyTorch weights (``identity.TRAINING_ONLY_FILES``:
read only to fine-tune or re-export, never to predict) and without the graphs of the precision it
does not serve (an int8 bundle's fp32 graphs), atomically like any bundle (``write_bundle``). It is
the same model: the graphs it serves, the vocabulary and the settings are copied byte for byte, so
its outputs and its content identity (``identity.content_sha256``, which keys the cleaning job's
markers) are the source's; the manifest says what was left out, with each file's sha256
(``runtime_only``), and the runtime refuses a precision whose graphs it left out. Torch-free.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

from strseq_tasks.serve.bundle import GRAPH_FILES, MANIFEST, VOCAB_FILE, read_manifest, write_bundle
from strseq_tasks.serve.bundle_schema import BundleError
from strseq_tasks.serve.identity import TRAINING_ONLY_FILES, model_identity
from strseq_tasks.serve.model_card import CARD_FILE, model_card

log = logging.getLogger("strseq.bundle")
_WRITTEN = ("files", "format", "manifest_sha256", "content_sha256")  # write_bundle computes these


def write_card(folder: Path, manifest: dict) -> None:
    """``MODEL_CARD.md`` in a bundle being built: the card of ``manifest`` listing the folder's files."""
    files = sorted({p.name for p in Path(folder).iterdir()} | {CARD_FILE, MANIFEST})
    (Path(folder) / CARD_FILE).write_text(model_card(manifest, files), encoding="utf-8")


def export_bundle(source: Path, out: Path, runtime_only: bool = False, all_graphs: bool = False,
                  overwrite: bool = False) -> dict:
    """Copy the model bundle ``source`` to ``out``: whole, or as its runtime copy (``runtime_copy``)."""
    if runtime_only:
        return runtime_copy(source, out, all_graphs, overwrite)
    source, out = Path(source), Path(out)
    manifest = read_manifest(source)
    if out.resolve() == source.resolve() or source.resolve() in out.resolve().parents:
        raise BundleError(f"{out} is the bundle {source} or inside it: write the copy elsewhere")

    def build(folder: Path) -> dict:
        for name in manifest["files"]:
            shutil.copyfile(source / name, folder / name)
        return {k: v for k, v in manifest.items() if k not in _WRITTEN}

    required = tuple(n for n in manifest["files"] if n in (*GRAPH_FILES["fp32"], *GRAPH_FILES["int8"], VOCAB_FILE))
    copy = write_bundle(out, build, overwrite=overwrite, required=required)
    read_manifest(out)
    return copy


def runtime_copy(source: Path, out: Path, all_graphs: bool = False, overwrite: bool = False) -> dict:
    """Copy the model bundle ``source`` to ``out`` without its training-only files and (unless
    ``all_graphs``) without the graphs of the precision it does not serve by default; the copy's
    manifest. Refuses a source that is not a verified model bundle, and an ``out`` inside it."""
    source, out = Path(source), Path(out)
    manifest = read_manifest(source)  # every file present with its sha256, before anything is copied
    if out.resolve() == source.resolve() or source.resolve() in out.resolve().parents:
        raise BundleError(f"{out} is the bundle {source} or inside it: write the runtime copy elsewhere")
    if manifest.get("runtime_only"):
        raise BundleError(f"{source} is a runtime copy already (of the bundle whose manifest sha256 is "
                          f"{manifest['runtime_only'].get('from_manifest_sha256')})")
    served = (manifest.get("precision") or {}).get("default", "fp32")
    unserved = () if all_graphs else tuple(n for p, names in GRAPH_FILES.items() if p != served for n in names)
    left_out = {name: sha for name, sha in manifest["files"].items() if name in TRAINING_ONLY_FILES + unserved}
    if not manifest.get("content_sha256"):
        log.warning("%s was written before strseq recorded a model's content identity: its runtime copy is a "
                    "new identity, so a cleaning job sees it as another model and re-checks every row", source)

    def build(folder: Path) -> dict:
        for name in manifest["files"]:
            if name not in left_out and name != CARD_FILE:
                shutil.copyfile(source / name, folder / name)
        body = {k: v for k, v in manifest.items() if k not in _WRITTEN}
        body["runtime_only"] = {"copied": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                                "from_manifest_sha256": manifest["manifest_sha256"], "left_out": left_out}
        write_card(folder, body)
        return body

    copy = write_bundle(out, build, overwrite=overwrite, required=(*GRAPH_FILES[served], VOCAB_FILE))
    if manifest.get("content_sha256") and model_identity(copy) != model_identity(manifest):
        shutil.rmtree(out, ignore_errors=True)  # cannot happen unless a file changed while it was copied
        raise BundleError(f"the copy of {source} is not the same model (its content changed while copying)")
    read_manifest(out)
    return copy
