"""LM bundles and `strseq pretrain` / `train --pretrained`: real files, real commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from strseq_tasks.data.corpus import read_corpus
from strseq_tasks.data.files import InputFileError
from strseq_tasks.learn.build import train_bundle
from strseq_tasks.learn.lm_bundle import LM_FILES, MANIFEST, default_lm_path, load_lm, pretrain_bundle
from strseq_tasks.learn.pretraining import PretrainConfig
from strseq_tasks.learn.training import TrainConfig
from strseq_tasks.learn.transfer import default_pretrained_path, load_transducer
from strseq_tasks.serve.bundle import BundleError

from .cli_harness import hidden_entries, run_strseq, write_csv

TINY_LM = {"emb_dim": 16, "case_dim": 4, "enc_hidden": 24, "dec_hidden": 48}
QUICK = PretrainConfig(minutes=None, max_epochs=2, batch_size=32, eval_every=10, threads=1, warmup_steps=5)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory, name_pairs) -> Path:
    out = tmp_path_factory.mktemp("lms") / "tiny_lm"
    texts = [t for pair in name_pairs for t in pair]
    pretrain_bundle(texts, out, QUICK, dims=TINY_LM, name="tiny-lm")
    return out


# --- LM bundles -------------------------------------------------------------------------------

def test_lm_bundle_round_trips(tiny_lm):
    manifest = json.loads((tiny_lm / MANIFEST).read_text())
    assert sorted(p.name for p in tiny_lm.iterdir()) == sorted([*LM_FILES, MANIFEST])
    assert manifest["format"] == "strseq-lm/1" and manifest["corpus"]["strings"] == 400
    assert len(manifest["corpus"]["fingerprint"]) == 64
    held = manifest["heldout"]
    assert held["strings"] > 0 and held["bits_per_char"]["decoder"] < held["initial_bits_per_char"]["decoder"]
    loaded = load_lm(tiny_lm)
    again = load_lm(tiny_lm)
    for name, tensor in loaded.lm.state_dict().items():
        assert torch.equal(tensor, again.lm.state_dict()[name])
    assert loaded.lm.cfg.enc_hidden == 24 and len(loaded.vocab) == loaded.lm.cfg.vocab_size
    assert hidden_entries(tiny_lm.parent) == []


@pytest.mark.parametrize("victim", ["lm.safetensors", "vocab.json", "manifest.json"])
def test_a_tampered_lm_bundle_is_refused(tiny_lm, tmp_path, victim):
    copy = tmp_path / "lm"
    shutil.copytree(tiny_lm, copy)
    path = copy / victim
    if victim == "manifest.json":
        manifest = json.loads(path.read_text())
        manifest["heldout"]["bits_per_char"]["decoder"] = 0.01
        path.write_text(json.dumps(manifest))
    else:
        data = bytearray(path.read_bytes())
        data[-3] ^= 0x01
        path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="altered|modified"):
        load_lm(copy)


def test_a_model_bundle_is_not_an_lm(tiny_bundle):
    with pytest.raises(BundleError, match="not a strseq-lm/1 manifest .it is strseq-bundle/1"):
        load_lm(tiny_bundle)


def test_fine_tuning_from_an_lm_records_it_and_handles_new_characters(tiny_lm, tmp_path, name_pairs,
                                                                     tiny_model_config):
    pairs = name_pairs[:40] + [("ŁUKASZ ŻÓŁW", "Łukasz Żółw"), ("ÆRØ, Åse", "Åse Ærø")]
    outcome = train_bundle(pairs, tmp_path / "model", TrainConfig(max_epochs=1), tiny_model_config,
                           pretrained=tiny_lm)
    lm = outcome.manifest["pretrained"]
    assert lm["path"] == str(tiny_lm) and lm["added_characters"] > 0 and lm["initialized_tensors"] == 21
    assert outcome.manifest["onnx_parity"]["mismatched_outputs"] == 0


def test_model_sizes_that_clash_with_the_lm_are_refused(tiny_lm, tmp_path, name_pairs):
    with pytest.raises(ValueError, match="differ from the pretrained model's"):
        train_bundle(name_pairs[:20], tmp_path / "m", TrainConfig(max_epochs=1), {"enc_hidden": 32},
                     pretrained=tiny_lm)
    assert not (tmp_path / "m").exists()


def test_the_shipped_default_lm_is_complete_verified_and_small():
    path = default_lm_path()
    loaded = load_lm(path)  # verifies every sha256
    assert all(chr(c) in loaded.vocab for c in range(32, 127))
    assert loaded.manifest["heldout"]["bits_per_char"]["decoder"] < 3.0
    assert loaded.manifest["corpus"]["strings"] > 100_000
    assert sum(p.stat().st_size for p in path.iterdir()) < 5 * 2**20


# --- corpus files ------------------------------------------------------------------------------

def test_text_corpus_lines_any_line_end_bom_blank_and_long_lines(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("\ufeffalpha\r\nbeta\rgamma\n\n   \nx\u2028y\n".encode() + b"z" * 200 + b"\n")
    report = read_corpus([path], max_len=128)
    assert report.texts == ["alpha", "beta", "gamma", "x\u2028y"]
    assert report.blank == 3 and report.too_long == 1  # two blank lines and the empty tail after the last \n


def test_corpus_column_choice_and_errors(tmp_path):
    one = write_csv(tmp_path / "one.csv", ["name"], [["Anna"], [""], ["Bo"]])
    assert read_corpus([one]).texts == ["Anna", "Bo"]
    many = write_csv(tmp_path / "many.csv", ["id", "name"], [["1", "Anna"]])
    with pytest.raises(InputFileError, match="several columns .id, name. and none was named"):
        read_corpus([many])
    assert read_corpus([many], column="name").texts == ["Anna"]
    with pytest.raises(InputFileError, match="no column 'surname'"):
        read_corpus([many], column="surname")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\xfe\n")
    with pytest.raises(InputFileError, match="line 2.*not valid UTF-8"):
        read_corpus([bad])


def test_parquet_corpus_skips_nulls(tmp_path):
    import pandas as pd

    path = tmp_path / "c.parquet"
    pd.DataFrame({"input": ["Anna", None, "Bo"]}).to_parquet(path)
    report = read_corpus([path])
    assert report.texts == ["Anna", "Bo"] and report.blank == 1


# --- the command ---------------------------------------------------------------------------------

def test_pretrain_then_adapt_then_train_from_the_command_line(tmp_path, name_pairs):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(t for p in name_pairs for t in p) + "\n", encoding="utf-8")
    column = write_csv(tmp_path / "column.csv", ["id", "customer"],
                       [[str(i), f"Ødegård-{i % 7}, Zoë"] for i in range(60)])
    base = tmp_path / "base_lm"
    proc = run_strseq("pretrain", "--corpus", corpus, "--out", base, "--max-minutes", 0.05, "--threads", 1)
    assert proc.returncode == 0, proc.stderr
    assert "LM written to" in proc.stdout and "bits per character" in proc.stdout
    assert "pretraining 100% step=" in proc.stderr and "heldout_bpc=" in proc.stderr  # progress, as log lines
    adapted = tmp_path / "adapted_lm"
    proc = run_strseq("pretrain", "--corpus", column, "--input-column", "customer", "--from", base, "--out", adapted,
                      "--max-minutes", 0.05, "--threads", 1)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((adapted / MANIFEST).read_text())
    assert manifest["parent"]["manifest_sha256"] == json.loads((base / MANIFEST).read_text())["manifest_sha256"]
    assert manifest["corpus"]["sources"] == [{"path": str(column), "column": "customer", "strings": 60}]
    old, new = load_lm(base), load_lm(adapted)
    assert new.vocab.chars[: len(old.vocab.chars)] == old.vocab.chars
    pairs = write_csv(tmp_path / "pairs.csv", ["input", "target"], name_pairs[:30])
    proc = run_strseq("train", "--pairs", pairs, "--out", tmp_path / "model", "--max-epochs", 1,
                      "--pretrained", adapted)
    assert proc.returncode == 0, proc.stderr
    assert f"started from: {adapted} (pretrained LM)" in proc.stdout


@pytest.mark.long  # ~25 s; the default start is test_cli.py's, an LM start the adapt test's above
def test_train_from_the_shipped_pretrained_model_and_from_the_shipped_lm(tmp_path, name_pairs):
    pairs = write_csv(tmp_path / "pairs.csv", ["input", "target"], name_pairs[:30])
    proc = run_strseq("train", "--pairs", pairs, "--out", tmp_path / "model", "--max-epochs", 1,
                      "--pretrained", "default")
    assert proc.returncode == 0, proc.stderr
    assert f"started from: {default_pretrained_path()} (pretrained encoder-decoder)" in proc.stdout
    start = json.loads((tmp_path / "model" / MANIFEST).read_text())["pretrained"]
    assert Path(start["path"]) == default_pretrained_path() and start["name"] == "strseq-pretrained"
    assert start["manifest_sha256"] == load_transducer(default_pretrained_path()).manifest["manifest_sha256"]
    assert start["kept"] == TrainConfig().pretrained_keep
    proc = run_strseq("train", "--pairs", pairs, "--out", tmp_path / "from-lm", "--max-epochs", 1,
                      "--pretrained", default_lm_path())
    assert proc.returncode == 0, proc.stderr
    lm = json.loads((tmp_path / "from-lm" / MANIFEST).read_text())["pretrained"]
    assert Path(lm["path"]) == default_lm_path() and lm["name"] == "strseq-default-lm"
    assert lm["manifest_sha256"] == load_lm(default_lm_path()).manifest["manifest_sha256"]


def test_pretrain_refuses_bad_input_and_leaves_nothing(tmp_path):
    many = write_csv(tmp_path / "many.csv", ["id", "name"], [["1", "Anna"]])
    proc = run_strseq("pretrain", "--corpus", many, "--out", tmp_path / "lm")
    assert proc.returncode == 2 and "--input-column" in proc.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    proc = run_strseq("pretrain", "--corpus", empty, "--out", tmp_path / "lm")
    assert proc.returncode == 2 and "no usable strings" in proc.stderr
    proc = run_strseq("pretrain", "--corpus", tmp_path / "missing.txt", "--out", tmp_path / "lm")
    assert proc.returncode == 2 and "no such file" in proc.stderr
    assert not (tmp_path / "lm").exists()


def test_train_refuses_conflicting_or_broken_pretrained_options(tmp_path, name_pairs, tiny_bundle):
    pairs = write_csv(tmp_path / "pairs.csv", ["input", "target"], name_pairs[:30])
    proc = run_strseq("train", "--pairs", pairs, "--out", tmp_path / "m", "--pretrained", tiny_bundle,
                      "--no-pretrained")
    assert proc.returncode == 2 and "exclude each other" in proc.stderr
    proc = run_strseq("train", "--pairs", pairs, "--out", tmp_path / "m", "--pretrained", tiny_bundle)
    assert proc.returncode == 2 and "pretrained model" in proc.stderr and "strseq-lm/1" in proc.stderr
    assert not (tmp_path / "m").exists()
