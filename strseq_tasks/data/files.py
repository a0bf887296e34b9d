"""Pairs and inputs from CSV or Parquet files, with errors that name file, row and column;
tables and reports written atomically, to output paths checked before any work.

CSV files are UTF-8 (a byte-order mark is accepted and dropped), RFC 4180 quoting, with a
header row. Every value is read as text, exactly as written: "NA", "null", "0012" stay strings.
Every row has exactly the header's fields: a row with more or fewer is refused (a value with a
comma must be quoted), and so are a header name that is empty (a trailing comma) and text after
a closing quote, and a file that reads as one column whose header and first rows all split alike
by a tab, semicolon or pipe (another separator's table). Nothing is padded, shifted or made an index.
Rows are counted from 1 after the header (row 1 is the first data row); errors also name the
physical line (encoding and NUL-byte errors, found before parsing, name only the line). A file
that is not text (compressed, a workbook, UTF-16: ``NOT_TEXT``) is named as what it is.
Blank lines (empty, or only spaces and tabs) are skipped (write an empty value in a one-column
file as ``""``).
Values are normalized to Unicode NFC when they are read. A value holding a NUL character (a
JSON Lines or Parquet file's can) is refused: no CSV file or PostgreSQL text can hold it.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from strseq_tasks.core.pairs import PairsError, check_pairs
from strseq_tasks.data.safe_files import write_atomically
from strseq_tasks.errors import StrseqError

PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson")  # JSON Lines: one JSON object a line, its keys the columns
# pyarrow is a third of the runtime install (170 of 487 MB, measured 2026-12-06): an extra
PARQUET_MISSING = "Parquet needs pyarrow, which is not installed: pip install 'strseq[parquet]' (or use a .csv)"


def parquet_missing(path: Path | str) -> bool:
    """Whether ``path`` is a Parquet file this install cannot read or write (no pyarrow)."""
    return Path(path).suffix.lower() in PARQUET_SUFFIXES and importlib.util.find_spec("pyarrow") is None
# values of a megabyte and more are legal (the csv module refuses fields over 128 KiB by default)
csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


class InputFileError(StrseqError, ValueError):
    """A problem with an input file, located as precisely as it can be."""

    def __init__(self, path: Path | str, message: str, row: int | None = None, column: str | None = None,
                 line: int | None = None):
        self.path, self.row, self.column, self.line = str(path), row, column, line
        where = [self.path]
        if line is not None:
            where.append(f"line {line}")
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}")


class ColumnError(InputFileError):
    """A file without the column(s) a command reads, or with several and none named; the message
    lists the columns it has (the command adds the option that names them)."""


def _decode_csv(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise InputFileError(path, "the file is empty (expected a header row)")
    return decode_utf8(path, data)


# files users hand over as text that are not: their first bytes, what they are, what to do
NOT_TEXT = (
    (b"\x1f\x8b", "a gzip-compressed file, not text", "decompress it first (gunzip)"),
    (b"PK\x03\x04", "a ZIP archive, not text (an Excel .xlsx workbook is one)",
     "save the sheet as CSV UTF-8, or unzip it"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel .xls workbook, not text", "save the sheet as CSV UTF-8"),
    (b"PAR1", "a Parquet file, not text", "give it a .parquet suffix"),
    (b"SQLite format 3\x00", "an SQLite database, not text", "clean its table with strseq clean --db sqlite:///PATH"),
    (b"\xfd7zXZ\x00", "an xz-compressed file, not text", "decompress it first (unxz)"),
    (b"(\xb5/\xfd", "a zstd-compressed file, not text", "decompress it first (unzstd)"),
    (b"\xff\xfe", "UTF-16 text, not UTF-8", "re-save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text, not UTF-8", "re-save it as UTF-8"),
)


def decode_utf8(path: Path, data: bytes) -> str:
    for magic, what, todo in NOT_TEXT:
        if data.startswith(magic):
            raise InputFileError(path, f"is {what}: {todo}")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InputFileError(path, "contains a NUL byte (is it a binary or UTF-16 file?)",
                             line=data.count(b"\n", 0, nul) + 1)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputFileError(path, f"is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                                   "re-save it as UTF-8", line=line) from None


def not_a_file(path: Path) -> InputFileError:
    """The error for an input path that is not a regular file."""
    return InputFileError(path, "is a directory, not a file" if path.is_dir() else "no such file")


# what a file of another separator looks like to a comma-separated reader: one column whose name
# holds the separator, as does every row (a semicolon is Excel's in many locales; a tab, TSV's)
OTHER_SEPARATORS = {"\t": "tab", ";": "semicolon", "|": "pipe"}


def _other_separator(path: Path, frame: pd.DataFrame) -> InputFileError | None:
    """The error for a CSV file read as one column that is another separator's table (its header
    and first rows split into the same number of fields by it), or None."""
    if len(frame.columns) != 1:
        return None
    header, column = str(frame.columns[0]), frame.iloc[:5, 0]
    for sep, name in OTHER_SEPARATORS.items():
        if header.count(sep) and all(isinstance(v, str) and v.count(sep) == header.count(sep) for v in column):
            return InputFileError(path, f"reads as one column, {header!r}, which looks {name}-separated: strseq "
                                        "reads comma-separated CSV files (RFC 4180); save it with commas, or as "
                                        "Parquet or JSON Lines")
    return None


def read_table(path: Path | str, required: Sequence[str]) -> pd.DataFrame:
    """All columns of a CSV, Parquet or JSON Lines file; ``required`` columns must be present, as text."""
    path = Path(path)
    if not path.is_file():
        raise not_a_file(path)
    if parquet_missing(path):
        raise InputFileError(path, PARQUET_MISSING)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise InputFileError(path, f"cannot be read as Parquet: {exc}") from None
    elif path.suffix.lower() in (*JSONL_SUFFIXES, ".json"):  # BigQuery, among others, exports JSON Lines as .json
        frame = _read_jsonl(path)
    else:
        frame = _read_csv(path)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns)) or "none"
        near = [f"{name!r} differs from {want!r} only in case or spaces" for want in missing
                for name in map(str, frame.columns) if name.strip().casefold() == want.strip().casefold()]
        raise ColumnError(path, f"missing column(s) {', '.join(missing)}; the header must include "
                                f"{','.join(required)} (found: {found}{''.join('; ' + n for n in near)})")
    for column in required:
        _check_text_column(path, frame, column)
    return frame


def _read_jsonl(path: Path) -> pd.DataFrame:
    """One JSON object a line (blank lines skipped); a key some objects lack is null in them."""
    records = []
    text = decode_utf8(path, path.read_bytes())
    # split at LF only: U+2028 and friends are legal, unescaped, inside a JSON string
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _one_json_document(path, text, records) or InputFileError(
                path, f"is not valid JSON Lines ({exc.msg} at column {exc.colno})", line=number) from None
        if not isinstance(record, dict):
            raise _one_json_document(path, text, records) or InputFileError(
                path, f"each line must be a JSON object, found {type(record).__name__}", line=number)
        records.append(record)
    if not records:
        raise InputFileError(path, "the file is empty (expected one JSON object a line)")
    return pd.DataFrame.from_records(records)


def _one_json_document(path: Path, text: str, records: list) -> InputFileError | None:
    """The error for a file that is one JSON document (an array of objects, pretty-printed) rather
    than JSON Lines, or None."""
    if records:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return None
    what = {list: "an array", dict: "an object"}.get(type(document), f"a {type(document).__name__}")
    return InputFileError(path, f"is one JSON document ({what}), not JSON Lines: write one JSON object a line "
                                "(jq -c '.[]' turns an array of objects into JSON Lines)")


def _jsonl(frame: pd.DataFrame) -> str:
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    # numpy scalars (a carried-through integer column) as the Python numbers they hold
    return "".join(json.dumps(r, ensure_ascii=False, default=lambda v: v.item()) + "\n" for r in records)


class _Lines:
    """The lines of a text, remembering the last one handed to the csv reader (to tell a blank
    line from a quoted blank value, which the parsed record alone cannot)."""

    def __init__(self, text: str):
        # newline="": CR, LF and CRLF all end a line (old Mac files end rows with CR), kept in the line
        self.lines, self.last = io.StringIO(text, newline=""), ""

    def __iter__(self):
        return self

    def __next__(self) -> str:
        self.last = next(self.lines)
        return self.last


def _read_csv(path: Path) -> pd.DataFrame:
    """The csv module parses, and the frame is built from its records: what is checked is what is
    loaded (pandas' own parser made a column the index when rows had one field too many)."""
    text = _decode_csv(path)
    records = _regular_records(text)
    if records is None:
        header, rows = _records_by_line(path, text)
    else:
        header, rows = _check_header(path, records[0], 1), records[1:]
    frame = pd.DataFrame(rows, columns=header, dtype=str) if rows else pd.DataFrame(columns=header, dtype=str)
    if (separated := _other_separator(path, frame)) is not None:
        raise separated
    return frame


def _records_by_line(path: Path, text: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of ``text``, blank lines skipped, read a record at a time to say on
    which line and row a file goes wrong. (Most files are regular, and read in one pass by
    ``_regular_records``: the same records, as a property test checks.)"""
    lines = _Lines(text)
    reader = csv.reader(lines, strict=True)  # strict: '"a"b' and an unclosed quote are errors
    header: list[str] | None = None
    rows: list[list[str]] = []
    start = 1  # physical line where the current record starts
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not record or (len(record) == 1 and reader.line_num == line and not lines.last.strip(" \t\r\n")):
                continue  # a blank line
            if header is None:
                header = _check_header(path, record, line)
            elif len(record) != len(header):
                hint = "a value holding a comma must be quoted" if len(record) > len(header) else \
                    "an empty value still needs its comma"
                raise InputFileError(path, f"{len(record)} field(s) where the header has {len(header)} "
                                           f"({','.join(header)}); {hint}", row=len(rows) + 1, line=line)
            else:
                rows.append(record)
    except csv.Error as exc:
        raise InputFileError(path, f"is not a well-formed CSV file: {exc}", line=start) from None
    if header is None:
        raise InputFileError(path, "the file is empty (expected a header row)")
    return header, rows


def _regular_records(text: str) -> list[list[str]] | None:
    """Every record of ``text``, header first, when each has the header's number of fields and
    none could be a blank line (a one-column file's whitespace-only field); else None."""
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return None
    if not records or not records[0]:
        return None  # empty, or a blank first line
    width = len(records[0])
    if any(len(record) != width for record in records):
        return None  # a blank line ([]) or a row of another width
    if width == 1 and any(not record[0].strip(" \t\r\n") for record in records):
        return None  # a blank line, or a quoted empty value: only the physical line tells which
    return records


def _check_header(path: Path, header: list[str], line: int) -> list[str]:
    unnamed = [i for i, name in enumerate(header, start=1) if not name.strip()]
    if unnamed:
        raise InputFileError(path, f"header column {unnamed[0]} of {len(header)} has no name "
                                   "(a trailing comma?); every column needs one", line=line)
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InputFileError(path, f"the header repeats column(s) {', '.join(repeated)}", line=line)
    return header


def _check_text_column(path: Path, frame: pd.DataFrame, column: str) -> None:
    values = frame[column]
    nulls = values.isna().to_numpy().nonzero()[0]
    if len(nulls):
        raise InputFileError(path, "missing value (null)", row=int(nulls[0]) + 1, column=column)
    if not isinstance(values.dtype, pd.StringDtype):  # a string column's values are text or null (as a CSV's)
        for i, value in enumerate(values):
            check_text_value(path, value, i + 1, column)
    nul = values.str.contains("\x00", regex=False).to_numpy().nonzero()[0]
    if len(nul):
        raise InputFileError(path, NUL_VALUE, row=int(nul[0]) + 1, column=column)


NUL_VALUE = ("holds a NUL character (U+0000), which no CSV file or PostgreSQL text value can hold: "
             "remove it from the value")


def check_text_value(path: Path, value: object, row: int, column: str) -> None:
    """A value read from a table is text without a NUL character (a JSON Lines or Parquet file's can be anything)."""
    if not isinstance(value, str):
        raise InputFileError(path, f"expected text, found {type(value).__name__} {value!r}", row=row, column=column)
    if "\x00" in value:
        raise InputFileError(path, NUL_VALUE, row=row, column=column)


@dataclass(frozen=True)
class PairsReport:
    pairs: list[tuple[str, str]]
    rows: int  # data rows in the file
    duplicates: int  # exact duplicate pairs dropped


def read_pairs(path: Path | str, max_len: int, input_column: str = "input",
               target_column: str = "target") -> PairsReport:
    """Curated ``(input, target)`` pairs, by the rules every pair follows (``core.pairs``), from the
    file's columns ``input_column`` and ``target_column``."""
    path = Path(path)
    frame = read_table(path, (input_column, target_column))
    if frame.empty:
        raise InputFileError(path, "has a header but no pairs")
    rows = zip(range(1, len(frame) + 1), frame[input_column], frame[target_column], strict=True)
    try:
        checked = check_pairs(rows, max_len)
    except PairsError as exc:
        named = {"input": input_column, "target": target_column}.get(exc.column, exc.column)  # as the file names it
        raise InputFileError(path, exc.message, row=exc.row, column=named) from None
    return PairsReport(checked.pairs, len(frame), checked.duplicates)


def read_inputs(path: Path | str, column: str = "input") -> pd.DataFrame:
    """Rows to normalize: the column ``column`` (other columns are carried through untouched)."""
    return read_table(path, (column,))


def _csv_quoting(frame: pd.DataFrame) -> int:
    """Quote every field when some value holds a carriage return: the csv module quotes only the
    line terminator's characters ("\\n"), and readers end a line at a bare CR, so "a\\rb" written
    unquoted comes back as two rows."""
    for column in frame.columns:
        values = frame[column]
        if isinstance(values.dtype, pd.StringDtype):
            holds = values.str.contains("\r", regex=False, na=False).any()
        elif pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype):
            continue  # numbers, booleans and times are written without a carriage return
        else:
            holds = any(isinstance(v, str) and "\r" in v for v in values)
        if holds:
            return csv.QUOTE_ALL
    return csv.QUOTE_MINIMAL


def write_table(frame: pd.DataFrame, path: Path | str) -> None:
    """Write CSV (UTF-8, no byte-order mark), Parquet or JSON Lines atomically: a temporary file, then rename."""
    if Path(path).suffix.lower() in PARQUET_SUFFIXES:
        write_atomically(path, lambda tmp: frame.to_parquet(tmp, index=False))
    elif Path(path).suffix.lower() in JSONL_SUFFIXES:
        text = _jsonl(frame)
        write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    else:
        write_atomically(path, lambda tmp: frame.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n",
                                                         quoting=_csv_quoting(frame)))


def write_text(text: str, path: Path | str) -> None:
    """Write a UTF-8 text file (a JSON report) atomically."""
    write_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
