"""A CSV row with more or fewer fields than its header is refused by every reader, through the
real commands: never padded, never shifted (pandas made the first field an index when rows had
one field too many, and `predict` wrote `input` = the id column, exit 0)."""

from __future__ import annotations

import csv
import json

import pytest

from .cli_harness import run_strseq
from .refusal import assert_refused, error_line, fingerprint, listing

# case -> (file text, the `input` values as the user meant them, fragments of the error)
SHAPES = {
    "every row has one field more than the header": (
        "input,id\nfoo bar,1,EXTRA\nbaz qux,2,EXTRA\n", ["foo bar", "baz qux"],
        ["line 2", "row 1", "3 field(s)", "header has 2", "quoted"]),
    "only the first row has one field more": (
        "input,id\nfoo bar,1,EXTRA\nbaz qux,2\n", ["foo bar", "baz qux"], ["line 2", "row 1", "3 field(s)"]),
    "only the last row has one field more": (
        "input,id\nfoo bar,1\nbaz qux,2\nann lee,3,EXTRA\n", ["foo bar", "baz qux", "ann lee"],
        ["line 4", "row 3", "3 field(s)"]),
    "a row has one field fewer": (
        "input,id\nfoo bar,1\nbaz qux\n", ["foo bar", "baz qux"], ["line 3", "row 2", "1 field(s)", "header has 2"]),
    "a one-column file with a comma in a value": (
        "input\nfoo,X\nbar\n", ["foo,X", "bar"], ["line 2", "row 1", "2 field(s)", "header has 1"]),
    "a long row after a multi-line value and a blank line": (
        'input,id\n"foo\nbar",1\n\nbaz,2,EXTRA\n', ["foo\nbar", "baz"], ["line 5", "row 2", "3 field(s)"]),
    "a header with a trailing comma": (
        "input,id,\nfoo,1,\nbar,2,\n", ["foo", "bar"], ["line 1", "header column 3 of 3", "no name"]),
    "an empty header name": ("input,,id\nfoo,x,1\n", ["foo"], ["line 1", "header column 2", "no name"]),
    "text after a closing quote": ('input,id\n"foo"bar,1\nbaz,2\n', ['"foo"bar', "baz"], ["line 2", "expected after"]),
}


def rows_lost(output, intended: list[str]) -> int:
    """Rows whose input value did not come out where it went in (all of them when none came out
    of a run that claimed success; none when the run was refused and wrote nothing)."""
    if not output.exists():
        return 0
    with open(output, newline="", encoding="utf-8") as f:
        got = [row.get("input") for row in csv.DictReader(f)]
    return sum(a != b for a, b in zip(intended, got)) + abs(len(intended) - len(got))


@pytest.mark.parametrize("case", list(SHAPES))
def test_predict_refuses_a_row_whose_field_count_is_not_the_header_s(case, tiny_bundle, tmp_path, ledger):
    text, intended, fragments = SHAPES[case]
    source, output = tmp_path / "inputs.csv", tmp_path / "out.csv"
    source.write_text(text, encoding="utf-8")
    before = fingerprint(source, tiny_bundle)
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", output)
    ledger("hostile input", f"predict: {case}", "csv", rows_lost=rows_lost(output, intended),
           rows_double_applied=0, error=error_line(proc))
    message = assert_refused(proc, str(source), *fragments)
    assert "Traceback" not in message
    assert fingerprint(source, tiny_bundle) == before
    assert listing(tmp_path) == ["inputs.csv"]  # no output, no temporary file


SHIFTED_PAIRS = "input,target\n" + "".join(f"jhon smyth {i},John Smyth {i},x\n" for i in range(12))
SHORT_PAIR = "input,target\njhon,John\nmary\nann,Ann\n" + "".join(f"bo {i},Bo {i}\n" for i in range(10))


@pytest.mark.parametrize("pairs_text, fragments", [
    (SHIFTED_PAIRS, ["line 2", "row 1", "3 field(s)", "header has 2"]),
    (SHORT_PAIR, ["line 3", "row 2", "1 field(s)"]),
], ids=["every pair has a third field", "a pair misses its target"])
@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_train_and_evaluate_refuse_shifted_pairs(command, pairs_text, fragments, tiny_bundle, tmp_path, ledger):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(pairs_text, encoding="utf-8")
    before = fingerprint(pairs, tiny_bundle)
    if command == "train":
        out = tmp_path / "model"
        proc = run_strseq("train", "--pairs", pairs, "--out", out, "--max-epochs", 1, "--precision", "fp32")
    else:
        out = tmp_path / "rows.csv"
        proc = run_strseq("evaluate", "--model", tiny_bundle, "--pairs", pairs, "--out", out)
    # a model or a score built on shifted pairs: every pair is lost
    lost = 0 if proc.returncode == 2 else pairs_text.count("\n") - 1
    ledger("hostile input", f"{command}: pairs whose rows do not match the header ({fragments[2]})", "csv",
           rows_lost=lost, error=error_line(proc))
    assert_refused(proc, str(pairs), *fragments)
    assert fingerprint(pairs, tiny_bundle) == before
    assert listing(tmp_path) == ["pairs.csv"]


def test_known_values_and_corpus_files_are_checked_too(tiny_bundle, tmp_path, ledger):
    known = tmp_path / "known.csv"
    known.write_text("value,note\nJohn Smith,a\nAnn Lee,b,EXTRA\n", encoding="utf-8")
    inputs = tmp_path / "inputs.csv"
    inputs.write_text("input\njhon smith\n", encoding="utf-8")
    before = fingerprint(known, inputs)
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", inputs, "--out", tmp_path / "out.csv",
                      "--known-values", known, "--known-column", "value")
    ledger("hostile input", "predict --known-values: a CSV row with a field more than the header", "csv",
           rows_lost=0 if proc.returncode == 2 else 1, error=error_line(proc))
    assert_refused(proc, "--known-values", str(known), "line 3", "row 2", "3 field(s)")

    corpus = tmp_path / "corpus.csv"
    corpus.write_text("input,id\n" + "".join(f"value {i},{i},x\n" for i in range(30)), encoding="utf-8")
    before |= fingerprint(corpus)
    proc = run_strseq("pretrain", "--corpus", corpus, "--out", tmp_path / "lm", "--max-minutes", 0.02,
                      "--max-epochs", 1)
    ledger("hostile input", "pretrain: a CSV corpus whose rows have a field more than the header", "csv",
           rows_lost=0 if proc.returncode == 2 else 30, error=error_line(proc))
    assert_refused(proc, str(corpus), "line 2", "row 1", "3 field(s)")
    assert fingerprint(known, inputs, corpus) == before
    assert listing(tmp_path) == ["corpus.csv", "inputs.csv", "known.csv"]


def test_retrain_refuses_a_file_source_with_shifted_rows(tmp_path, ledger):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(SHIFTED_PAIRS, encoding="utf-8")
    before = fingerprint(pairs)
    registry = tmp_path / "registry"
    proc = run_strseq("retrain", "--pairs", pairs, "--registry", registry, "--name", "names", "--max-epochs", 1,
                      "--min-pairs", 4, "--min-exact-match", 0, "--max-harm", 1, timeout=600)
    ledger("hostile input", "retrain: a pairs file whose rows have a field more than the header", "file",
           rows_lost=0 if proc.returncode == 2 else 12, error=error_line(proc))
    # refused before Prefect starts: no flow run, no task traceback in Prefect's log
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and all(f in errors[0] for f in (str(pairs), "line 2, row 1", "3 field(s)",
                                                               "nothing was published")), errors
    assert fingerprint(pairs) == before
    assert not any(registry.rglob("manifest.json"))  # no version published


# a file of another separator reads as one column: named as such, whatever the command
SEPARATED = {
    "predict: a tab-separated file": (
        "inputs.tsv", "input\tid\nfoo bar\t1\nbaz qux\t2\n", ["tab-separated", "'input\\tid'"],
        lambda f, tmp, bundle: ("predict", "--model", bundle, "--input", f, "--out", tmp / "out.csv")),
    "train: semicolon-separated pairs (Excel in many locales)": (
        "pairs.csv", "input;target\n" + "".join(f"jhon {i};John {i}\n" for i in range(12)), ["semicolon-separated"],
        lambda f, tmp, bundle: ("train", "--pairs", f, "--out", tmp / "model", "--max-epochs", 1)),
    "pretrain: a semicolon-separated corpus (read as its one column)": (
        "corpus.csv", "input;id\n" + "".join(f"value {i};{i}\n" for i in range(30)), ["semicolon-separated"],
        lambda f, tmp, bundle: ("pretrain", "--corpus", f, "--out", tmp / "lm", "--max-epochs", 1)),
    "retrain: pipe-separated pairs": (
        "pairs.csv", "input|target\n" + "".join(f"jhon {i}|John {i}\n" for i in range(12)), ["pipe-separated"],
        lambda f, tmp, bundle: ("retrain", "--pairs", f, "--registry", tmp / "registry", "--name", "names")),
}


@pytest.mark.parametrize("case", list(SEPARATED))
def test_a_file_of_another_separator_is_named_as_such(case, tiny_bundle, tmp_path, ledger):
    name, text, fragments, command = SEPARATED[case]
    source = tmp_path / name
    source.write_text(text, encoding="utf-8")
    before = fingerprint(source)
    proc = run_strseq(*command(source, tmp_path, tiny_bundle))
    ledger("hostile input", case, "csv", rows_lost=0 if proc.returncode == 2 else text.count("\n") - 1,
           error=error_line(proc))
    assert_refused(proc, str(source), "comma-separated", *fragments)
    assert fingerprint(source) == before
    assert listing(tmp_path) == [name]


def test_a_one_column_file_whose_values_hold_a_separator_is_read(tiny_bundle, tmp_path):
    source = tmp_path / "inputs.csv"
    source.write_text("input\nfoo;bar\nbaz;qux\n", encoding="utf-8")
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", tmp_path / "out.csv")
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as f:
        assert [row["input"] for row in csv.DictReader(f)] == ["foo;bar", "baz;qux"]


def test_an_input_that_is_a_folder_is_named_as_such(tiny_bundle, tmp_path):
    folder = tmp_path / "inputs.csv"
    folder.mkdir()
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", folder, "--out", tmp_path / "out.csv")
    assert_refused(proc, str(folder), "is a directory, not a file")


@pytest.mark.parametrize("header, near", [("Input,id", "'Input'"), (" input ,id", "' input '")],
                         ids=["case", "spaces"])
def test_a_header_that_differs_only_in_case_or_spaces_is_pointed_at(header, near, tiny_bundle, tmp_path):
    source = tmp_path / "inputs.csv"
    source.write_text(f"{header}\nsally,1\n", encoding="utf-8")
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", tmp_path / "out.csv")
    assert_refused(proc, str(source), "missing column(s) input", f"{near} differs from 'input' only in case or spaces",
                   "--input-column")
    assert listing(tmp_path) == ["inputs.csv"]


@pytest.mark.parametrize("command", ["predict", "pretrain"])
def test_a_nul_character_in_a_json_lines_value_is_refused(command, tiny_bundle, tmp_path, ledger):
    """A CSV with a NUL byte is refused as binary; a JSON Lines value may hold "\\u0000", which strseq
    then wrote into a CSV output its own reader refused (and PostgreSQL text cannot hold)."""
    source = tmp_path / "inputs.jsonl"
    source.write_text("".join(json.dumps({"input": f"value {i}" + ("\0x" if i == 2 else "")}) + "\n"
                              for i in range(30)), encoding="utf-8")
    before = fingerprint(source)
    if command == "predict":
        proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", tmp_path / "out.csv")
    else:
        proc = run_strseq("pretrain", "--corpus", source, "--out", tmp_path / "lm", "--max-minutes", 0.02,
                          "--max-epochs", 1)
    ledger("hostile input", f"{command}: a JSON Lines value holding a NUL character", "jsonl",
           rows_lost=0 if proc.returncode == 2 else 1, error=error_line(proc))
    assert_refused(proc, str(source), "row 3", "column 'input'", "NUL character")
    assert fingerprint(source) == before
    assert listing(tmp_path) == ["inputs.jsonl"]


@pytest.mark.parametrize("name, text, read", [
    ("inputs.json", '{"input": "foo"}\n{"input": "bar"}\n', True),  # JSON Lines under .json (a BigQuery export)
    ("inputs.json", json.dumps([{"input": "foo"}, {"input": "bar"}]), False),
    ("inputs.jsonl", json.dumps([{"input": "foo"}, {"input": "bar"}], indent=2), False),  # pretty-printed
], ids=["json-lines-as-json", "array", "pretty-printed-array"])
def test_json_lines_under_json_is_read_and_one_json_document_is_named(name, text, read, tiny_bundle, tmp_path):
    source = tmp_path / name
    source.write_text(text, encoding="utf-8")
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", tmp_path / "out.csv")
    if read:
        assert proc.returncode == 0, proc.stderr[-2000:]
        with open(tmp_path / "out.csv", newline="", encoding="utf-8") as f:
            assert [row["input"] for row in csv.DictReader(f)] == ["foo", "bar"]
    else:
        assert_refused(proc, str(source), "one JSON document (an array), not JSON Lines", "jq -c '.[]'")
        assert listing(tmp_path) == [name]
