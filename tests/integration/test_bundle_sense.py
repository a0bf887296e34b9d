"""A bundle whose checksums were recomputed after an edit is still refused when a value makes no
sense: every value read from a model bundle (manifest, vocab.json, known_values.json) or an LM
bundle is checked for type and range before use (``bundle_schema``). Refused by ``Normalizer`` /
``load_lm`` with a ``BundleError`` naming the file and the field, and by the real ``strseq
predict`` / ``strseq train --pretrained`` with one ``error:`` line, exit code 2.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from campaign import sampled  # tests/ is on sys.path
from fixtures.data import TINY_SIZES

from strseq_tasks.core.known import KnownValues
from strseq_tasks.serve.bundle import BundleError, sha256_file
from strseq_tasks.serve.identity import content_sha256
from strseq_tasks.serve.runtime import Normalizer

from .cli_harness import run_strseq, write_csv

KNOWN = ["Smith, John", "Mary O'Neil", "Jones, Mary"]


def reseal(folder: Path) -> None:
    """Recompute every file's sha256, the content identity and the manifest's own checksum, as a
    careless tool would."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["files"] = {name: sha256_file(folder / name) for name in manifest["files"] if (folder / name).is_file()}
    if "content_sha256" in manifest:
        manifest["content_sha256"] = content_sha256(manifest)
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    manifest["manifest_sha256"] = hashlib.sha256(
        json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")


def edit_json(name: str, change: Callable, whole: bool = False) -> Callable[[Path], None]:
    """A tampering that edits one JSON file of a bundle in place (``whole``: replaces it with what
    ``change`` returns)."""
    def tamper(folder: Path) -> None:
        path = folder / name
        data = json.loads(path.read_text(encoding="utf-8"))
        result = change(data)
        path.write_text(json.dumps(result if whole else data, ensure_ascii=False), encoding="utf-8")
    return tamper


def truncate(name: str) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
    return tamper


def setter(*keys, value) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        for key in keys[:-1]:
            data = data[key]
        data[keys[-1]] = value
    return change


def dropper(*keys) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        for key in keys[:-1]:
            data = data[key]
        del data[keys[-1]]
    return change


def manifest(*keys, value=None, drop=False):
    return "manifest.json", edit_json("manifest.json", dropper(*keys) if drop else setter(*keys, value=value))


def vocab(change):
    return "vocab.json", edit_json("vocab.json", change)


def known(change):
    return "known_values.json", edit_json("known_values.json", change)


def _swap_specials(data):
    data["specials"][1], data["specials"][2] = data["specials"][2], data["specials"][1]


# case -> (file, tampering, field named in the error)
MODEL_CASES = {
    "max_len as text": (*manifest("model_config", "max_len", value="64"), "model_config.max_len"),
    "max_len missing": (*manifest("model_config", "max_len", drop=True), "model_config.max_len"),
    "max_len 10**9": (*manifest("model_config", "max_len", value=10**9), "model_config.max_len"),
    "max_len 0": (*manifest("model_config", "max_len", value=0), "model_config.max_len"),
    "max_len fractional": (*manifest("model_config", "max_len", value=64.5), "model_config.max_len"),
    "max_len true": (*manifest("model_config", "max_len", value=True), "model_config.max_len"),
    "model_config a list": (*manifest("model_config", value=[64]), "model_config"),
    "vocab_size 10**9": (*manifest("model_config", "vocab_size", value=10**9), "model_config.vocab_size"),
    "vocab_size one less": (*manifest("model_config", "vocab_size", value=84), "model_config.vocab_size"),
    "dec_hidden 10**6": (*manifest("model_config", "dec_hidden", value=10**6), "model_config.dec_hidden"),
    "dec_hidden not the weights'": (*manifest("model_config", "dec_hidden", value=47), "model_config.dec_hidden"),
    "beam 0": (*manifest("decoding", "beam", value=0), "decoding.beam"),
    "beam 10**6": (*manifest("decoding", "beam", value=10**6), "decoding.beam"),
    "decoding as text": (*manifest("decoding", value="greedy"), "decoding"),
    "identity_margin NaN": (*manifest("decoding", "identity_margin", value=float("nan")), "decoding.identity_margin"),
    "identity_margin negative": (*manifest("decoding", "identity_margin", value=-1), "decoding.identity_margin"),
    "spaces unknown rule": (*manifest("decoding", "spaces", value="squash"), "decoding.spaces"),
    "shapes as text": (*manifest("decoding", "shapes", value="Aa Aa"), "decoding.shapes"),
    "shapes too many": (*manifest("decoding", "shapes", value=["Aa"] * 100_001), "decoding.shapes"),
    "shape a number": (*manifest("decoding", "shapes", value=["Aa Aa", 7]), "decoding.shapes[1]"),
    "novel_shift text": (*manifest("calibration", "novel_shift", value="-3"), "calibration.novel_shift"),
    "input_chars a list": (*manifest("decoding", "input_chars", value=["a", "b"]), "decoding.input_chars"),
    "words a list": (*manifest("decoding", "words", value=["pky"]), "decoding.words"),
    "words without ever_rewritten": (*manifest("decoding", "words", value={"always_rewritten": []}), "decoding.words"),
    "words a number": (*manifest("decoding", "words", value={"always_rewritten": [3], "ever_rewritten": []}),
                       "decoding.words.always_rewritten"),
    "words in plain text": (*manifest("decoding", "words", value={"always_rewritten": [], "ever_rewritten": ["pky"]}),
                            "decoding.words.ever_rewritten"),
    "shown words in plain text": (*manifest("decoding", "words", value={"always_rewritten": [], "ever_rewritten": [],
                                                                        "shown": ["pky"]}), "decoding.words.shown"),
    "word cases without a list": (*manifest("decoding", "word_cases", value={"lower": [], "upper": []}),
                                  "decoding.word_cases"),
    "word cases in plain text": (*manifest("decoding", "word_cases", value={
        "lower": ["van"], "upper": [], "title": [], "mixed": [], "mixed_prefixes": []}), "decoding.word_cases.lower"),
    "trailing zeros unknown rule": (*manifest("decoding", "trailing_zeros", value="stripped"),
                                    "decoding.trailing_zeros"),
    "word rewrites a list": (*manifest("decoding", "word_rewrites", value=["lb"]), "decoding.word_rewrites"),
    "word rewrites in plain text": (*manifest("decoding", "word_rewrites", value={"pound": []}),
                                    "decoding.word_rewrites"),
    "word rewritten into plain text": (*manifest("decoding", "word_rewrites", value={"0123456789abcdef": ["lb"]}),
                                       "decoding.word_rewrites.0123456789abcdef"),
    "last words in plain text": (*manifest("decoding", "word_last", value=["pkwy", "st"]), "decoding.word_last"),
    "last words an object": (*manifest("decoding", "word_last", value={"0123456789abcdef": []}), "decoding.word_last"),
    "words with an unknown list": (*manifest("decoding", "words", value={"always_rewritten": [], "ever_rewritten": [],
                                                                         "kept": []}), "decoding.words"),
    "disagree_shift text": (*manifest("calibration", "disagree_shift", value="-2"), "calibration.disagree_shift"),
    "lost_char_shift infinite": (*manifest("calibration", "lost_char_shift", value=float("-inf")),
                                 "calibration.lost_char_shift"),
    "calibration scale text": (*manifest("calibration", "scale", value="x"), "calibration.scale"),
    "calibration scale infinite": (*manifest("calibration", "scale", value=float("inf")), "calibration.scale"),
    "calibration unknown parameter": (*manifest("calibration", "temperature", value=2.0), "calibration.temperature"),
    "int8 calibration NaN": (*manifest("precision", "int8", "calibration", "shift", value=float("nan")),
                             "precision.int8.calibration.shift"),
    "precision default int16": (*manifest("precision", "default", value="int16"), "precision.default"),
    "int8 default without graphs": (*manifest("precision", "int8", value=None), "precision.int8"),
    "int8 files elsewhere": (*manifest("precision", "int8", "files", value=["../x.onnx", "decoder_step.int8.onnx"]),
                             "precision.int8.files"),
    "int8 gate rows text": (*manifest("precision", "int8", "gate", "rows", value="many"), "precision.int8.gate.rows"),
    "name a number": (*manifest("name", value=42), "name"),
    "training_inputs sha256 short": (*manifest("training_inputs", value={"sha256": "abc"}), "training_inputs.sha256"),
    "manifest known max_distance 10**9": (*manifest("decoding", "known_values", "max_distance", value=10**9),
                                 "decoding.known_values.max_distance"),
    "known prior_weight negative": (*manifest("decoding", "known_values", "prior_weight", value=-1),
                                    "decoding.known_values.prior_weight"),
    "known file elsewhere": (*manifest("decoding", "known_values", "file", value="../known.json"),
                             "decoding.known_values.file"),
    "vocab truncated": ("vocab.json", truncate("vocab.json"), "not valid JSON"),
    "vocab a list": ("vocab.json", edit_json("vocab.json", lambda data: data["chars"], whole=True), "(the whole file)"),
    "vocab chars as text": (*vocab(setter("chars", value="abc")), "chars"),
    "vocab duplicate char": (*vocab(lambda data: data["chars"].__setitem__(-1, data["chars"][0])), "chars"),
    "vocab two-character entry": (*vocab(lambda data: data["chars"].__setitem__(5, "ab")), "chars[5]"),
    "vocab number entry": (*vocab(lambda data: data["chars"].__setitem__(5, 7)), "chars[5]"),
    "vocab specials reordered": (*vocab(_swap_specials), "specials"),
    "vocab other format": (*vocab(setter("format", value="strseq-charvocab/2")), "format"),
    "vocab one char short": (*vocab(lambda data: data["chars"].pop()), "chars"),
    "known truncated": ("known_values.json", truncate("known_values.json"), "not valid JSON"),
    "known values as text": (*known(setter("values", value="Smith, John")), "values"),
    "known value a number": (*known(lambda data: data["values"].append(3)), "values[3]"),
    "known value repeated": (*known(lambda data: data["values"].append(KNOWN[0])), "values"),
    "known value blank": (*known(lambda data: data["values"].append("  ")), "values[3]"),
    "known value edited": (*known(lambda data: data["values"].__setitem__(0, "Smith, Joan")), "values"),
    "file known max_distance 10**9": (*known(setter("max_distance", value=10**9)), "max_distance"),
    "known max_distance text": (*known(setter("max_distance", value="2")), "max_distance"),
    "known values missing": (*known(dropper("values")), "values"),
}


@pytest.fixture(scope="module")
def known_bundle(tiny_bundle, tmp_path_factory) -> Path:
    """``tiny_bundle`` with a known-values list, as training with --known-values writes it."""
    folder = tmp_path_factory.mktemp("sense") / "model"
    shutil.copytree(tiny_bundle, folder)
    values = KnownValues(KNOWN)
    (folder / "known_values.json").write_text(values.to_json(), encoding="utf-8")
    path = folder / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["files"]["known_values.json"] = ""
    data["decoding"]["known_values"] = {"file": "known_values.json", "values": len(values), "max_distance": 2,
                                        "fingerprint": values.fingerprint(), "prior_weight": 0.0}
    path.write_text(json.dumps(data), encoding="utf-8")
    reseal(folder)
    assert Normalizer(folder).known == values and Normalizer(folder).precision == "int8"
    return folder


@pytest.fixture
def bundle_copy(known_bundle, tmp_path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(known_bundle, folder)
    return folder


def _tampered(case: str, folder: Path) -> tuple[str, str]:
    name, tamper, field = MODEL_CASES[case]
    tamper(folder)
    reseal(folder)
    return name, field


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_normalizer_refuses_a_senseless_value(case, bundle_copy):
    name, field = _tampered(case, bundle_copy)
    with pytest.raises(BundleError) as caught:
        Normalizer(bundle_copy)
    assert str(bundle_copy / name) in str(caught.value) and field in str(caught.value), str(caught.value)


@pytest.mark.parametrize("case", sampled(MODEL_CASES, "predict-senseless"))  # every case in-process above
def test_predict_refuses_a_senseless_value(case, bundle_copy, tmp_path, ledger):
    name, field = _tampered(case, bundle_copy)
    source = write_csv(tmp_path / "inputs.csv", ["input"], [["SMITH, John"]])
    output = tmp_path / "out.csv"
    proc = run_strseq("predict", "--model", bundle_copy, "--input", source, "--out", output)
    ledger("tampering", f"strseq predict, checksums recomputed after an edit: {case}", "model bundle",
           error=proc.stderr.strip().removeprefix("error: "))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert name in proc.stderr and field in proc.stderr, proc.stderr
    assert not output.exists()


# case -> (file, tampering, field named in the error)
LM_CASES = {
    "lm vocab_size 10**9": (*manifest("lm_config", "vocab_size", value=10**9), "lm_config.vocab_size"),
    "lm emb_dim 10**6": (*manifest("lm_config", "emb_dim", value=10**6), "lm_config.emb_dim"),
    "lm emb_dim not the weights'": (*manifest("lm_config", "emb_dim", value=32), "lm_config.emb_dim"),
    "lm dec_hidden as text": (*manifest("lm_config", "dec_hidden", value="256"), "lm_config.dec_hidden"),
    "lm unknown setting": (*manifest("lm_config", "layers", value=2), "lm_config.layers"),
    "lm dropout 2": (*manifest("lm_config", "dropout", value=2.0), "lm_config.dropout"),
    "lm held-out bits as text": (*manifest("heldout", "bits_per_char", value="low"), "heldout.bits_per_char"),
    "lm vocab truncated": ("vocab.json", truncate("vocab.json"), "not valid JSON"),
    "lm vocab duplicate char": (*vocab(lambda data: data["chars"].__setitem__(-1, data["chars"][0])), "chars"),
    "lm vocab one char short": (*vocab(lambda data: data["chars"].pop()), "chars"),
}


@pytest.fixture
def lm_copy(tmp_path) -> Path:
    from strseq_tasks.learn.lm_bundle import default_lm_path

    folder = tmp_path / "lm"
    shutil.copytree(default_lm_path(), folder)
    return folder


@pytest.mark.parametrize("case", sampled(LM_CASES, "lm-senseless"))
def test_lm_refused_by_load_and_by_train(case, lm_copy, tmp_path, ledger):
    from strseq_tasks.learn.lm_bundle import load_lm

    name, tamper, field = LM_CASES[case]
    tamper(lm_copy)
    reseal(lm_copy)
    with pytest.raises(BundleError) as caught:
        load_lm(lm_copy)
    assert str(lm_copy / name) in str(caught.value) and field in str(caught.value), str(caught.value)
    pairs = write_csv(tmp_path / "pairs.csv", ["input", "target"], [(w, w.upper()) for w in ("ab", "cd", "ef", "gh")])
    proc = run_strseq("train", "--pairs", pairs, "--out", tmp_path / "model", "--pretrained", lm_copy, "--quiet")
    ledger("tampering", f"strseq train --pretrained, checksums recomputed after an edit: {case}", "LM bundle",
           error=proc.stderr.strip().removeprefix("error: "))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert name in proc.stderr and field in proc.stderr, proc.stderr
    assert not (tmp_path / "model").exists()


def test_training_refuses_a_model_no_bundle_could_hold(name_pairs, tmp_path):
    """What training accepts, a bundle accepts: a max_len above the ceiling is refused before training."""
    from strseq_tasks.learn.build import train_bundle
    from strseq_tasks.learn.training import TrainConfig
    from strseq_tasks.serve.bundle_schema import MAX_LEN_CEILING

    for overrides in ({"max_len": MAX_LEN_CEILING + 1}, {"max_len": 0}, {"dec_hidden": 10**6}):
        with pytest.raises(ValueError, match="model_config"):
            train_bundle(name_pairs[:8], tmp_path / "m", TrainConfig(max_epochs=1), {**TINY_SIZES, **overrides})
    with pytest.raises(ValueError, match="max_distance"):
        train_bundle(name_pairs[:8], tmp_path / "m", TrainConfig(max_epochs=1), TINY_SIZES,
                     known=KnownValues(KNOWN, max_distance=1000))
    assert not (tmp_path / "m").exists()
