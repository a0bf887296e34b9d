"""Every ONNX graph of a bundle says what it is to anyone with ``onnx.load`` (issue 23): its role,
precision, strseq's version, the pairs' fingerprint and the files beside it, in
``metadata_props``, ``doc_string`` and ``model_version``; and only what the training decides, so
the graphs' bytes, part of the model's identity, do not change with where or when it ran."""

from __future__ import annotations

import json

import onnx
import onnxruntime as ort

from strseq_tasks import __version__
from strseq_tasks.learn.build import train_bundle
from strseq_tasks.learn.training import TrainConfig
from strseq_tasks.serve.bundle import GRAPH_FILES, read_manifest


def test_every_graph_of_a_bundle_describes_itself(tiny_bundle):
    manifest = read_manifest(tiny_bundle)
    graphs = [*GRAPH_FILES["fp32"], *GRAPH_FILES["int8"]]
    assert set(graphs) <= set(manifest["files"])  # the tiny bundle carries int8 graphs too
    for name in graphs:
        graph = onnx.load(str(tiny_bundle / name))
        props = {p.key: p.value for p in graph.metadata_props}
        assert props["strseq.graph"] == ("encoder" if name.startswith("encoder") else "decoder_step")
        assert props["strseq.precision"] == ("int8" if ".int8." in name else "fp32")
        assert props["strseq.version"] == __version__
        assert props["strseq.pairs_fingerprint"] == manifest["data"]["fingerprint"]
        assert json.loads(props["strseq.model_config"]) == manifest["model_config"]
        assert props["strseq.manifest"] == "manifest.json" and props["strseq.vocabulary"] == "vocab.json"
        assert graph.model_version == 1 and props["strseq.bundle_format"] == manifest["format"]
        assert "strseq" in graph.doc_string
        # and onnxruntime, which serves the graph, reads the same description
        session = ort.InferenceSession(str(tiny_bundle / name), providers=["CPUExecutionProvider"])
        meta = session.get_modelmeta()
        assert meta.custom_metadata_map["strseq.graph"] == props["strseq.graph"] and meta.version == 1


def test_the_description_holds_nothing_of_where_a_training_ran(tmp_path, name_pairs):
    # two trainings of the same pairs into two folders under two names: the same graphs, byte for
    # byte, so the same model (content_sha256)
    cfg = TrainConfig(max_epochs=2, seed=0, precision="fp32")
    from fixtures.data import TINY_MODEL

    a = train_bundle(name_pairs[:40], tmp_path / "a", cfg, TINY_MODEL, name="first", pretrained=None).manifest
    b = train_bundle(name_pairs[:40], tmp_path / "elsewhere" / "b", cfg, TINY_MODEL, name="second",
                     pretrained=None).manifest
    assert a["files"]["encoder.onnx"] == b["files"]["encoder.onnx"]
    assert a["files"]["decoder_step.onnx"] == b["files"]["decoder_step.onnx"]
    assert a["content_sha256"] == b["content_sha256"]


def test_an_exported_kept_training_describes_its_graphs(tmp_path, name_pairs, monkeypatch):
    # the other way a bundle is made: `strseq export` of a training kept after its export failed
    import pytest
    from fixtures.data import TINY_MODEL

    import strseq_tasks.learn.build as pipeline
    from strseq_tasks.learn.unexported import export_kept

    def refuse(*args, **kwargs):
        raise pipeline.ParityError("refused for the test")

    monkeypatch.setattr(pipeline, "check_parity", refuse)
    with pytest.raises(pipeline.ExportFailed) as failed:
        train_bundle(name_pairs[:40], tmp_path / "model", TrainConfig(max_epochs=1, seed=0, precision="fp32"),
                     TINY_MODEL, pretrained=None)
    monkeypatch.undo()
    export_kept(failed.value.kept, tmp_path / "exported")
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "exported" / "encoder.onnx")).metadata_props}
    assert props["strseq.graph"] == "encoder" and props["strseq.precision"] == "fp32"
