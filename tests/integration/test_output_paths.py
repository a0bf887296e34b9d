"""A command never writes over its own inputs, and an output it cannot write is refused before
any work: through the real commands, on real files, CSV and Parquet. --force changes neither.

Before this, `train --pairs p.csv --out p.csv --force` replaced the pairs with a model folder,
`evaluate --pairs P --out P` rewrote the pairs (a duplicate dropped, NFD made NFC), and an
output in a folder, under a file or in a read-only folder failed with a traceback after the work.
"""

from __future__ import annotations

import csv
import os
import shutil
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from campaign import sampled  # tests/ is on sys.path

from .cli_harness import run_strseq
from .refusal import assert_refused, error_line, fingerprint, listing

NFD = unicodedata.normalize("NFD", "José Müller")
PAIRS = [("SMITH, John", "John Smith"), ("mary o'neil", "Mary O'Neil"), ("SMITH, John", "John Smith"),
         (NFD, NFD), ("ann  lee", "Ann Lee")]  # a duplicate (evaluate drops it) and an NFD value (made NFC)
INPUTS = [("jhon smith", "1"), (NFD, "2"), ("mary", "3")]


def write_rows(path: Path, header: list[str], rows: list[tuple[str, ...]]) -> Path:
    if path.suffix == ".parquet":
        pd.DataFrame(rows, columns=header).to_parquet(path)
    else:
        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows([header, *rows])
    return path


def read_rows(path: Path) -> list[dict] | None:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path).to_dict("records")
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except Exception:  # a folder now, or not a table any more: every row is lost
        return None


def rows_lost(path: Path, header: list[str], rows: list[tuple[str, ...]]) -> int:
    """Rows of the input that are no longer in it, value for value (a rewrite that drops a row or
    turns NFD into NFC loses those rows; a folder in its place loses all)."""
    after = read_rows(path) if path.is_file() else None
    if after is None:
        return len(rows)
    remaining = [tuple(str(r.get(c)) for c in header) for r in after]
    lost = 0
    for row in rows:
        if row in remaining:
            remaining.remove(row)
        else:
            lost += 1
    return lost


def inputs_changed(before: dict[str, str]) -> int:
    """Input files (of ``before``'s fingerprint) whose bytes changed: 0 when every input is intact."""
    after = fingerprint(*map(Path, before))
    return sum(after.get(name) != digest for name, digest in before.items())


def refused_and_untouched(proc, folder: Path, before_files: dict, before_listing: list[str], *fragments):
    message = assert_refused(proc, *fragments)
    assert fingerprint(*map(Path, before_files)) == before_files  # inputs byte for byte
    assert listing(folder) == before_listing  # nothing written, no temporary file, no folder made
    return message


# --- 4. an output that is an input -------------------------------------------------------------


@pytest.mark.parametrize("spelling, fmt", sampled([(s, f) for s in ("same path", "./ prefix", "symlink", "hard link")
                                                   for f in ("csv", "parquet")], "over-input", share=2))
def test_evaluate_and_predict_refuse_to_write_over_their_input(spelling, fmt, tiny_bundle, tmp_path, ledger):
    pairs = write_rows(tmp_path / f"pairs.{fmt}", ["input", "target"], PAIRS)
    inputs = write_rows(tmp_path / f"inputs.{fmt}", ["input", "id"], INPUTS)
    if spelling == "symlink":
        (tmp_path / f"pairs-link.{fmt}").symlink_to(pairs.name)
        (tmp_path / f"inputs-link.{fmt}").symlink_to(inputs.name)
    elif spelling == "hard link":
        os.link(pairs, tmp_path / f"pairs-link.{fmt}")
        os.link(inputs, tmp_path / f"inputs-link.{fmt}")

    def other_name(path: Path) -> str:  # the input under the name the case gives it
        linked = path.name.replace(".", "-link.", 1)
        return {"same path": path.name, "./ prefix": f"./{path.name}"}.get(spelling, linked)

    before, names = fingerprint(pairs, inputs, tiny_bundle), listing(tmp_path)
    runs = {
        "evaluate --out": ("--pairs", pairs, ["evaluate", "--model", tiny_bundle, "--pairs", pairs.name,
                                                 "--out", other_name(pairs)]),
        "evaluate --json-out": ("--pairs", pairs, ["evaluate", "--model", tiny_bundle, "--pairs", pairs.name,
                                               "--json-out", other_name(pairs)]),
        "predict --out": ("--input", inputs, ["predict", "--model", tiny_bundle, "--input", inputs.name,
                                                 "--out", other_name(inputs)]),
    }
    for name, (option, victim, args) in runs.items():
        proc = run_strseq(*args, cwd=tmp_path)
        header, rows = (["input", "target"], PAIRS) if victim == pairs else (["input", "id"], INPUTS)
        ledger("hostile input", f"{name} is the {option} file ({spelling})", fmt,
               rows_lost=rows_lost(victim, header, rows), error=error_line(proc))
        refused_and_untouched(proc, tmp_path, before, names, option, "would destroy the input")


@pytest.mark.parametrize("how", ["same file", "parent folder", "symlink to the file"])
def test_train_refuses_an_out_that_is_or_holds_its_pairs_even_with_force(how, tmp_path, ledger):
    data = tmp_path / "data"
    data.mkdir()
    pairs = write_rows(data / "pairs.csv", ["input", "target"], PAIRS)
    out = {"same file": pairs, "parent folder": data, "symlink to the file": tmp_path / "model"}[how]
    if how == "symlink to the file":
        out.symlink_to(pairs)
    before, names = fingerprint(pairs), listing(tmp_path)
    proc = run_strseq("train", "--pairs", pairs, "--out", out, "--force", "--max-epochs", 1, "--precision", "fp32")
    ledger("hostile input", f"train --out is the --pairs file's {how}, with --force", "file",
           rows_lost=rows_lost(pairs, ["input", "target"], PAIRS), error=error_line(proc))
    refused_and_untouched(proc, tmp_path, before, names, "--out", "--pairs", "input")


def test_every_input_of_every_command_is_protected(tiny_bundle, tmp_path, ledger):
    """Known-values files, corpus files, --from and --pretrained folders and the model folder."""
    pairs = write_rows(tmp_path / "pairs.csv", ["input", "target"], PAIRS)
    inputs = write_rows(tmp_path / "inputs.csv", ["input", "id"], INPUTS)
    known = tmp_path / "known.txt"
    known.write_text("John Smith\nAnn Lee\n", encoding="utf-8")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"name {i}\n" for i in range(40)), encoding="utf-8")
    lm = tmp_path / "lm"
    lm.mkdir()
    (lm / "manifest.json").write_text("{}", encoding="utf-8")  # the check comes before the LM is read
    model = tmp_path / "model"
    shutil.copytree(tiny_bundle, model)
    cases = {
        "train --out is a --known-values file": (
            ["train", "--pairs", pairs, "--known-values", known, "--out", known, "--force"], "--known-values"),
        "train --out inside the --pretrained folder": (
            ["train", "--pairs", pairs, "--pretrained", lm, "--out", lm / "model"], "inside the input --pretrained"),
        "pretrain --out is a --corpus file": (
            ["pretrain", "--corpus", corpus, "--out", corpus, "--force"], "--corpus"),
        "pretrain --out is the --from folder": (["pretrain", "--corpus", corpus, "--from", lm, "--out", lm, "--force"],
                                                "--from"),
        "predict --out is a --known-values file": (
            ["predict", "--model", model, "--input", inputs, "--known-values", known, "--out", known],
            "--known-values"),
        "predict --out inside the model folder": (
            ["predict", "--model", model, "--input", inputs, "--out", model / "out.csv"],
            "inside the input --model"),
        "evaluate --json-out inside the model folder": (
            ["evaluate", "--model", model, "--pairs", pairs, "--json-out", model / "metrics.json"], "--model"),
        "evaluate --json-out and --out the same file": (
            ["evaluate", "--model", model, "--pairs", pairs, "--json-out", tmp_path / "m.csv", "--out",
             tmp_path / "m.csv"], "same file"),
    }
    before, names = fingerprint(pairs, inputs, known, corpus, lm, model), listing(tmp_path)
    for case, (args, fragment) in cases.items():
        proc = run_strseq(*args)
        ledger("hostile input", case, "file", rows_lost=inputs_changed(before), error=error_line(proc))
        refused_and_untouched(proc, tmp_path, before, names, fragment)


# --- 10. an output that cannot be written ----------------------------------------------------


def unprivileged() -> list[str]:
    """The command prefix under which a read-only folder is read-only for the command too (root
    writes anywhere: as root, the command runs without the capabilities that let it)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: a read-only folder cannot be made")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.parametrize("fmt", ["csv", pytest.param("parquet", marks=pytest.mark.long)])  # ~17 s each
def test_outputs_that_cannot_be_written_are_refused_before_the_work(fmt, tiny_bundle, tmp_path, ledger):
    from .refusal import run_strseq_with

    pairs = write_rows(tmp_path / f"pairs.{fmt}", ["input", "target"], PAIRS)
    inputs = write_rows(tmp_path / f"inputs.{fmt}", ["input", "id"], INPUTS)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("a file, not a folder\n", encoding="utf-8")
    (tmp_path / "a folder").mkdir()
    (tmp_path / "a folder" / "keep.txt").write_text("x", encoding="utf-8")
    locked = tmp_path / "read-only"
    locked.mkdir()
    predict = ["predict", "--model", tiny_bundle, "--input", inputs, "--out"]
    evaluate = ["evaluate", "--model", tiny_bundle, "--pairs", pairs]
    cases = {
        "predict --out is a folder": ([*predict, tmp_path / "a folder"], "is a folder"),
        "predict --out under a file": ([*predict, a_file / f"out.{fmt}"], "is a file, not a folder"),
        "predict --out two levels under a file": ([*predict, a_file / "x" / f"out.{fmt}"], "is a file"),
        "evaluate --out is a folder": ([*evaluate, "--out", tmp_path / "a folder"], "is a folder"),
        "evaluate --json-out under a file": ([*evaluate, "--json-out", a_file / "m.json"], "is a file, not a folder"),
        "evaluate --json-out is a folder": ([*evaluate, "--json-out", tmp_path / "a folder"], "is a folder"),
        "train --out is a file (with --force)": (["train", "--pairs", pairs, "--out", a_file, "--force"],
                                                 "is a file, not a folder"),
        "train --out under a file": (["train", "--pairs", pairs, "--out", a_file / "model"], "is a file"),
        "pretrain --out under a file": (["pretrain", "--corpus", inputs, "--out", a_file / "lm"], "is a file"),
        "demo --out is a file": (["demo", "--out", a_file, "--smoke"], "is a file, not a folder"),
    }
    prefix = unprivileged()
    locked_cases = {
        "predict --out in a read-only folder": [*predict, locked / f"out.{fmt}"],
        "predict --out in a missing folder of a read-only folder": [*predict, locked / "new" / f"out.{fmt}"],
        "evaluate --json-out in a read-only folder": [*evaluate, "--json-out", locked / "m.json"],
        "train --out in a read-only folder": ["train", "--pairs", pairs, "--out", locked / "model"],
    }
    before, names = fingerprint(pairs, inputs, a_file, tiny_bundle), listing(tmp_path)
    runs = [(case, lambda args=args: run_strseq(*args), fragment) for case, (args, fragment) in cases.items()]
    runs += [(case, lambda args=args: run_strseq_with(prefix, *args), "not writable")
             for case, args in locked_cases.items()]
    for case, run, fragment in runs:
        locked.chmod(0o555)
        try:
            proc = run()
        finally:
            locked.chmod(0o755)
        ledger("hostile input", case, fmt, rows_lost=inputs_changed(before), error=error_line(proc))
        refused_and_untouched(proc, tmp_path, before, names, fragment)


def test_missing_folders_on_an_output_path_are_created_for_every_output(tiny_bundle, tmp_path):
    pairs = write_rows(tmp_path / "pairs.csv", ["input", "target"], PAIRS)
    inputs = write_rows(tmp_path / "inputs.csv", ["input", "id"], INPUTS)
    proc = run_strseq("evaluate", "--model", tiny_bundle, "--pairs", pairs, "--out", tmp_path / "a" / "rows.csv",
                      "--json-out", tmp_path / "b" / "c" / "metrics.json")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a" / "rows.csv").is_file() and (tmp_path / "b" / "c" / "metrics.json").is_file()
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", inputs, "--out", tmp_path / "d" / "out.csv")
    assert proc.returncode == 0 and (tmp_path / "d" / "out.csv").is_file(), proc.stderr
    umask = os.umask(0)
    os.umask(umask)
    for written in ("a/rows.csv", "b/c/metrics.json", "d/out.csv"):  # as readable as any new file, not 0600
        assert (tmp_path / written).stat().st_mode & 0o777 == 0o666 & ~umask, written


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_write_that_fails_anyway_is_one_error_line_and_leaves_no_partial_file(fmt, tiny_bundle, tmp_path, ledger):
    """A file-size limit (RLIMIT_FSIZE) fails the write itself, as a full disk does."""
    from .refusal import run_strseq_with

    inputs = write_rows(tmp_path / f"inputs.{fmt}", ["input", "id"], [(f"jhon smith {i}", str(i)) for i in range(300)])
    pairs = write_rows(tmp_path / f"pairs.{fmt}", ["input", "target"], PAIRS)
    before, names = fingerprint(inputs, pairs, tiny_bundle), listing(tmp_path)
    runs = {
        f"predict --out {fmt}: the disk fills while writing": (
            ["predict", "--model", tiny_bundle, "--input", inputs, "--out", tmp_path / f"out.{fmt}"], "--out"),
        "evaluate --json-out: the disk fills while writing": (
            ["evaluate", "--model", tiny_bundle, "--pairs", pairs, "--json-out", tmp_path / "metrics.json"],
            "--json-out"),
    }
    for case, (args, option) in runs.items():
        proc = run_strseq_with([], *args, file_size_limit=200)
        ledger("hostile input", case, fmt, rows_lost=inputs_changed(before), error=error_line(proc))
        refused_and_untouched(proc, tmp_path, before, names, option, "could not be written", "nothing was written")


@pytest.mark.parametrize("registry", ["the pairs file", "a path under a file"])
def test_retrain_refuses_a_registry_it_could_not_publish_to_before_training(registry, tmp_path, ledger):
    """The registry is retrain's output: a file there failed with a traceback after the training."""
    pairs = tmp_path / "pairs.csv"
    with open(pairs, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("input", "target"), *((f"NAME {i}", f"name {i}") for i in range(30))])
    before = fingerprint(pairs)
    target = pairs if registry == "the pairs file" else pairs / "models"
    proc = run_strseq("retrain", "--pairs", pairs, "--registry", target, "--name", "names", "--max-epochs", 1,
                      "--min-pairs", 4)
    error = assert_refused(proc, str(target), "nothing was published")
    ledger("hostile input", f"retrain --registry {registry}", "registry (folder)",
           rows_lost=0 if fingerprint(pairs) == before else 30, error=error)
    assert fingerprint(pairs) == before and listing(tmp_path) == ["pairs.csv"]
    assert "Starting temporary server" not in proc.stderr  # refused before any flow ran, let alone training


def test_a_table_output_whose_suffix_names_no_format_written_is_refused(tiny_bundle, tmp_path, ledger):
    """A table's format comes from its suffix: out.xlsx or out.tsv would be a CSV file under the
    name of another format (Excel reports a damaged file), so they are refused before the work."""
    pairs = write_rows(tmp_path / "pairs.csv", ["input", "target"], PAIRS)
    inputs = write_rows(tmp_path / "inputs.csv", ["input", "id"], INPUTS)
    cases = {
        "predict --out out.xlsx": (["predict", "--model", tiny_bundle, "--input", inputs, "--out",
                                    tmp_path / "out.xlsx"], ".xlsx is none of these"),
        "predict --out out.tsv": (["predict", "--model", tiny_bundle, "--input", inputs, "--out",
                                   tmp_path / "out.tsv"], ".tsv is none of these"),
        "evaluate --out without a suffix": (["evaluate", "--model", tiny_bundle, "--pairs", pairs, "--out",
                                             tmp_path / "rows"], "it has none"),
        "review export --out out.json": (["review", "export", "--db", f"sqlite:///{tmp_path / 'none.db'}",
                                          "--out", tmp_path / "out.json"], ".json is none of these"),
    }
    before, names = fingerprint(pairs, inputs, tiny_bundle), listing(tmp_path)
    for case, (args, fragment) in cases.items():
        proc = run_strseq(*args)
        ledger("hostile input", case, "file", rows_lost=inputs_changed(before), error=error_line(proc))
        refused_and_untouched(proc, tmp_path, before, names, fragment)
        assert "the file's suffix chooses what is written" in proc.stderr
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", inputs, "--out", tmp_path / "OUT.CSV")
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "OUT.CSV", newline="", encoding="utf-8") as f:
        assert [r["id"] for r in csv.DictReader(f)] == ["1", "2", "3"]  # any case of a suffix written
