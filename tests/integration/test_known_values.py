"""Known values end to end: stored by `train --known-values`, used by `predict` and `evaluate`,
replaced or turned off per run, verified like every bundle file."""

from __future__ import annotations

import json

import pytest

from strseq_tasks.core.known import KnownValues
from strseq_tasks.learn.decoding_choices import KNOWN_PRIORS
from strseq_tasks.serve.bundle import KNOWN_FILE, BundleError
from strseq_tasks.serve.runtime import Normalizer

from .cli_harness import read_csv_raw, run_strseq, write_csv

WORDS = ["receive", "believe", "separate", "definitely", "necessary", "occurrence", "restaurant", "tomorrow",
         "government", "beginning", "business", "calendar", "cemetery", "embarrass", "environment"]
# typo -> word, over the first eight words only: the others are never seen in the pairs
PAIRS = [("recieve", "receive"), ("beleive", "believe"), ("seperate", "separate"), ("definately", "definitely"),
         ("neccessary", "necessary"), ("occurence", "occurrence"), ("restaraunt", "restaurant"),
         ("tommorrow", "tomorrow"), ("receive", "receive"), ("believe", "believe"), ("separate", "separate"),
         ("recieev", "receive"), ("belive", "believe"), ("seprate", "separate")]
UNSEEN = {"goverment": "government", "begining": "beginning", "buisness": "business", "calender": "calendar",
          "cemetary": "cemetery", "embarass": "embarrass", "enviroment": "environment"}


@pytest.fixture(scope="module")
def known_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("known")
    pairs = write_csv(folder / "pairs.csv", ["input", "target"], PAIRS)
    words = folder / "words.txt"
    words.write_text("\n".join(WORDS[8:]) + "\n", encoding="utf-8")  # the pair targets are added by train
    out = folder / "model"
    proc = run_strseq("train", "--pairs", pairs, "--out", out, "--max-epochs", 2, "--known-values", words)
    assert proc.returncode == 0, proc.stderr
    return folder, out, proc


def test_train_stores_the_known_values_with_the_pair_targets(known_model):
    _, out, proc = known_model
    normalizer = Normalizer(out)
    assert set(normalizer.known.values) == set(WORDS)
    info = normalizer.manifest["decoding"]["known_values"]
    assert info["values"] == len(WORDS) and info["max_distance"] == 2
    assert info["fingerprint"] == normalizer.known.fingerprint()
    assert info["prior_weight"] in KNOWN_PRIORS and normalizer.known_prior == info["prior_weight"]
    assert KNOWN_FILE in normalizer.manifest["files"]
    assert "known values: 15" in proc.stdout


def test_predict_corrects_words_the_pairs_never_showed(known_model):
    folder, out, _ = known_model
    inputs = write_csv(folder / "inputs.csv", ["input"], [[w] for w in [*UNSEEN, *WORDS, "zzzz"]])
    proc = run_strseq("predict", "--model", out, "--input", inputs, "--out", folder / "pred.csv")
    assert proc.returncode == 0, proc.stderr
    _, rows = read_csv_raw(folder / "pred.csv")
    got = {r[0]: r[1] for r in rows}
    assert {k: got[k] for k in UNSEEN} == UNSEEN
    assert all(got[w] == w for w in WORDS)  # a known value is never changed
    assert "zzzz" in got  # nothing near: decoded freely (whatever a 2-epoch model says)


def test_evaluate_with_and_without_the_known_values(known_model):
    folder, out, _ = known_model
    pairs = write_csv(folder / "heldout.csv", ["input", "target"], [*UNSEEN.items(), *((w, w) for w in WORDS[8:])])
    with_known = run_strseq("evaluate", "--model", out, "--pairs", pairs, "--json-out", folder / "with.json")
    without = run_strseq("evaluate", "--model", out, "--pairs", pairs, "--no-known-values",
                         "--json-out", folder / "without.json")
    assert with_known.returncode == 0 and without.returncode == 0, with_known.stderr + without.stderr
    metrics = json.loads((folder / "with.json").read_text())["metrics"]
    assert metrics["exact_match"] == 1.0 and metrics["harm"] == 0.0
    assert json.loads((folder / "without.json").read_text())["metrics"]["exact_match"] < 1.0


def test_a_list_given_at_predict_time_replaces_the_models(tiny_bundle, tmp_path):
    names = tmp_path / "names.csv"
    write_csv(names, ["name", "count"], [["Jonathan Smith", "3"], ["Maria Garcia", "1"]])
    inputs = write_csv(tmp_path / "inputs.csv", ["input"], [["Jonathon Smith"], ["Maria Garcia"], ["Ann Lee"]])
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", inputs, "--out", tmp_path / "out.csv",
                      "--known-values", names, "--known-column", "name", "--max-distance", 1)
    assert proc.returncode == 0, proc.stderr
    _, rows = read_csv_raw(tmp_path / "out.csv")
    assert [r[1] for r in rows[:2]] == ["Jonathan Smith", "Maria Garcia"]
    assert "decoding prefers 2 known values (within 1 edits)" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--known-values", "missing.txt"], "no such file"),
    (["--known-values", "names.csv", "--known-column", "nope"], "no column 'nope'"),
    (["--known-values", "names.csv", "--no-known-values"], "exclude each other"),
    (["--known-values", "names.csv", "--max-distance", "-1"], "--max-distance must be >= 0"),
])
def test_bad_known_values_options_fail_clearly(tiny_bundle, tmp_path, args, message):
    write_csv(tmp_path / "names.csv", ["name"], [["Ann"]])
    inputs = write_csv(tmp_path / "inputs.csv", ["input"], [["x"]])
    args = [str(tmp_path / a) if a.endswith((".txt", ".csv")) else a for a in args]
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", inputs, "--out", tmp_path / "o.csv", *args)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "o.csv").exists()


def test_altered_known_values_are_refused(known_model, tmp_path):
    import shutil

    _, out, _ = known_model
    copy = tmp_path / "model"
    shutil.copytree(out, copy)
    data = json.loads((copy / KNOWN_FILE).read_text(encoding="utf-8"))
    data["values"].append("hijacked")
    (copy / KNOWN_FILE).write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(BundleError, match="altered"):
        Normalizer(copy)
    assert isinstance(Normalizer(out).known, KnownValues)
