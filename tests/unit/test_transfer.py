"""The pretrained encoder-decoder: pretraining learns, the bundle round-trips and is verified,
and fine-tuning starts from every pretrained weight."""

from __future__ import annotations

import json
import random

import pytest
import torch

from strseq_tasks.core.vocab import CharVocab
from strseq_tasks.learn.build import initial_model
from strseq_tasks.learn.decoding_choices import predict_torch
from strseq_tasks.learn.model import build_model
from strseq_tasks.learn.transfer import (
    VOCAB_ROWS,
    TransferConfig,
    initialize_from_transducer,
    is_transducer,
    load_transducer,
    pretrain_transducer,
    transfer_vocab,
    write_transducer,
)
from strseq_tasks.serve.bundle import BundleError

DIMS = {"emb_dim": 16, "case_dim": 4, "enc_hidden": 24, "dec_hidden": 48, "attn_dim": 24, "loc_filters": 4,
        "loc_kernel": 3}


def toy_tasks(n: int, seed: int) -> list[tuple[str, tuple[str, str]]]:
    """Two kinds a tiny model learns in seconds: upper-casing codes and swapping 'b, a' to 'a b'."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            code = "".join(rng.choice("abcd") for _ in range(3)) + "-" + "".join(rng.choice("123") for _ in range(2))
            out.append(("codes", (code, code.upper())))
        else:
            a, b = rng.choice(["ann", "bo", "cy"]), rng.choice(["dee", "eve", "fay"])
            out.append(("names", (f"{b}, {a}", f"{a} {b}")))
    return out


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    train, heldout = toy_tasks(1500, 0), toy_tasks(100, 1)
    vocab = CharVocab.build([t for _, p in train for t in p])
    model = build_model(vocab, 0, **DIMS)
    cfg = TransferConfig(minutes=None, steps=300, batch_size=32, eval_every=100, warmup_steps=20, threads=1)
    seen = []
    result = pretrain_transducer(model, vocab, [p for _, p in train], heldout, cfg, on_eval=seen.append)
    folder = tmp_path_factory.mktemp("pre") / "transducer"
    manifest = write_transducer(folder, result, vocab, cfg, {"pairs": len(train)}, name="toy")
    return folder, manifest, result, seen


def test_pretraining_learns_the_tasks_and_reports_each_kind(pretrained):
    _, manifest, result, seen = pretrained
    assert [r.step for r in seen] == [100, 200, 300]
    assert seen[0].exact["all"] < result.exact["all"]
    assert result.exact["codes"] > 0.9 and result.exact["names"] > 0.9, result.exact
    assert manifest["heldout"]["exact_match"] == result.exact


def test_the_bundle_loads_the_same_model_and_refuses_a_changed_file(pretrained, tmp_path):
    folder, _, result, _ = pretrained
    assert is_transducer(folder)
    loaded = load_transducer(folder)
    texts = ["abc-12", "eve, ann", "dd-33"]
    assert predict_torch(loaded.model, loaded.vocab, texts)[0] == predict_torch(result.model, loaded.vocab, texts)[0]
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in folder.iterdir():
        copy.joinpath(f.name).write_bytes(f.read_bytes())
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "vocab.json").write_text((copy / "vocab.json").read_text().replace('"a"', '"z"'))
    with pytest.raises(BundleError, match="vocab.json"):
        load_transducer(copy)
    assert manifest["format"] == "strseq-pretrained/1"


def test_initialization_copies_every_weight_and_each_characters_rows(pretrained):
    folder, _, _, _ = pretrained
    loaded = load_transducer(folder)
    vocab = transfer_vocab(["xyz, abc"])  # some characters the pretrained model knows, some it does not
    model = build_model(vocab, 5, **DIMS)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    copied = initialize_from_transducer(model, vocab, loaded.model, loaded.vocab)
    theirs, ours = loaded.model.state_dict(), model.state_dict()
    assert copied == len([k for k in ours if not k.endswith((".fold", ".case_of"))])
    for key, tensor in ours.items():
        if key in VOCAB_ROWS:
            for char in ("a", "c", ","):
                assert torch.equal(tensor[vocab.id(char)], theirs[key][loaded.vocab.id(char)])
            assert torch.equal(tensor[vocab.id("x")], fresh[key][vocab.id("x")])  # new to it: fresh
            assert torch.equal(tensor[:4], theirs[key][:4])  # the specials
        elif not key.endswith((".fold", ".case_of")):
            assert torch.equal(tensor, theirs[key]), key
    # the fine-tuning starts where pretraining ended: it already answers the pretrained tasks
    texts = ["abc-12", "eve, ann", "bad-31"]
    assert predict_torch(model, vocab, texts)[0] == ["ABC-12", "ann eve", "BAD-31"]


def test_shrink_and_perturb_mixes_pretrained_and_fresh_weights(pretrained):
    folder, _, _, _ = pretrained
    loaded = load_transducer(folder)
    vocab = transfer_vocab(["abc"])
    model = build_model(vocab, 5, **DIMS)
    fresh = model.encoder.keys.weight.detach().clone()
    initialize_from_transducer(model, vocab, loaded.model, loaded.vocab, keep=0.7)
    want = 0.7 * loaded.model.encoder.keys.weight + 0.3 * fresh
    assert torch.allclose(model.encoder.keys.weight, want)
    with pytest.raises(ValueError, match="keep"):
        initialize_from_transducer(model, vocab, loaded.model, loaded.vocab, keep=0.0)


def test_initial_model_starts_from_a_pretrained_folder_and_records_it(pretrained):
    folder, manifest, _, _ = pretrained
    vocab, model, info = initial_model(["qq, rr", "rr qq"], 0, {"max_len": 64}, folder)
    assert info["kind"] == "transducer" and info["manifest_sha256"] == manifest["manifest_sha256"]
    assert vocab == transfer_vocab(["qq, rr", "rr qq"])  # the pairs' characters, not the pretrained list
    assert info["added_characters"] == sum(c not in load_transducer(folder).vocab for c in vocab.chars)
    assert model.cfg.max_len == 64 and model.cfg.dec_hidden == 48
    with pytest.raises(ValueError, match="dec_hidden"):
        initial_model(["qq"], 0, {"dec_hidden": 32}, folder)


def test_sizes_of_ones_own_train_from_random_weights_unless_a_folder_is_named(pretrained):
    folder, _, _, _ = pretrained
    _, model, info = initial_model(["ab"], 0, {"dec_hidden": 32}, "default")
    assert info is None and model.cfg.dec_hidden == 32  # the shipped model cannot have these sizes
    _, model, info = initial_model(["ab"], 0, {"max_len": 64}, "default")
    assert info["kind"] == "transducer" and model.cfg.max_len == 64  # max_len is not a weight's shape
