"""Odd and hostile values through `strseq predict`, CSV and Parquet, end to end: every row comes
out, in order, with its input and other columns exactly as they went in."""

from __future__ import annotations

import unicodedata

import pandas as pd
import pytest

from .cli_harness import read_csv_raw, run_strseq, write_csv

# class -> value (each one row)
VALUES = {
    "CRLF inside a quoted value": "line one\r\nline two",
    "lone CR inside a value": "before\rafter",
    "quotes and an embedded newline": 'she said "hi"\nand left',
    "zero-width space": "zoë\u200bsmith",
    "combining accent (NFD)": unicodedata.normalize("NFD", "José Müller"),
    "precomposed accent (NFC)": unicodedata.normalize("NFC", "José Müller"),
    "right-to-left text": "שלום עולם",
    "right-to-left mark inside": "abc\u200fdef",
    "emoji and astral-plane letters": "😀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 👩‍👩‍👧",
    "1 MB value": "x" * 1_000_000,
    "whitespace only": "   ",
    "number stored as text": "000123",
    "SQL-looking value": "'; DROP TABLE people; --",
    "spreadsheet formula prefix =": "=HYPERLINK(\"http://x\",\"y\")",
    "spreadsheet formula prefix +": "+SUM(A1:A9)",
    "spreadsheet formula prefix -": "-2+3",
    "spreadsheet formula prefix @": "@cmd",
}


def _predict(tiny_bundle, source, output):
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", output, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_odd_values_come_out_exactly_as_they_went_in(fmt, tiny_bundle, tmp_path, ledger):
    names, values = list(VALUES), list(VALUES.values())
    ids = [str(i) for i in range(1, len(values) + 1)]
    source, output = tmp_path / f"in.{fmt}", tmp_path / f"out.{fmt}"
    if fmt == "csv":
        write_csv(source, ["input", "id"], zip(values, ids))
    else:
        pd.DataFrame({"input": values, "id": ids}).to_parquet(source)
    _predict(tiny_bundle, source, output)
    if fmt == "csv":
        header, rows = read_csv_raw(output)
        got = [dict(zip(header, r)) for r in rows]
    else:
        got = pd.read_parquet(output).to_dict("records")
    by_id = {r["id"]: r for r in got}
    for name, value, key in zip(names, values, ids):
        row = by_id.get(key)
        lost = int(row is None or row["input"] != value)
        ledger("hostile input", f"predict: {name}", fmt, rows_lost=lost, rows_double_applied=0,
               error="" if row is None else ("" if row["status"] == "ok" else f"status {row['status']}"))
    assert [r["id"] for r in got] == ids  # every row, once, in order
    assert [r["input"] for r in got] == values  # byte for byte
    assert all(r["status"] in ("ok", "too_long", "empty") for r in got)
    blank = by_id[ids[names.index("whitespace only")]]  # the model reads whitespace collapsed: nothing
    assert blank["status"] == "empty" and blank["prediction"] == VALUES["whitespace only"]
    assert [r["name"] for r in [{"name": n, **by_id[k]} for n, k in zip(names, ids)]
            if r["status"] == "empty"] == ["whitespace only"]
    long_row = by_id[ids[names.index("1 MB value")]]
    assert long_row["status"] == "too_long" and long_row["prediction"] == VALUES["1 MB value"]


@pytest.mark.parametrize("ending", ["\r", "\n", "\r\n"], ids=["CR (old Mac)", "LF", "CRLF"])
def test_csv_files_with_any_line_ending_load_the_same(tmp_path, ending, ledger):
    from strseq_tasks.data.files import read_inputs, read_pairs

    pairs = tmp_path / "pairs.csv"
    pairs.write_bytes(ending.join(["input,target", "jhon smyth,John Smith", '"a\rb",ab', ""]).encode())
    inputs = tmp_path / "inputs.csv"
    inputs.write_bytes(ending.join(["input", "jhon", "MARY  ann", ""]).encode())
    got = read_pairs(pairs, 64).pairs, list(read_inputs(inputs)["input"])
    ledger("hostile input", f"CSV files whose rows end with {ending!r}", "csv", rows_lost=0 if got == (
        [("jhon smyth", "John Smith"), ("a\rb", "ab")], ["jhon", "MARY  ann"]) else 1)
    assert got == ([("jhon smyth", "John Smith"), ("a\rb", "ab")], ["jhon", "MARY  ann"])
