"""Unlabeled strings for pretraining a language model: text files a string a line, or one column of a table."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from strseq_tasks.core.vocab import normalize_text
from strseq_tasks.data.files import (
    JSONL_SUFFIXES,
    PARQUET_SUFFIXES,
    ColumnError,
    InputFileError,
    check_text_value,
    decode_utf8,
    not_a_file,
    read_table,
)
from strseq_tasks.params import MAX_LEN

LINE_ENDS = re.compile(r"\r\n|\r|\n")  # only these end a line (str.splitlines also splits on U+2028, ...)


@dataclass(frozen=True)
class CorpusReport:
    texts: list[str]
    sources: list[dict]  # per file: path, column (tables), strings kept
    blank: int  # blank lines / empty or null values skipped
    too_long: int  # strings longer than max_len skipped


def _corpus_column(path: Path, frame: pd.DataFrame, column: str | None) -> str:
    if column is not None:
        if column not in frame.columns:
            found = ", ".join(map(str, frame.columns)) or "none"
            raise ColumnError(path, f"no column {column!r} (found: {found})")
        return column
    if len(frame.columns) == 1:
        return str(frame.columns[0])
    if "input" in frame.columns:
        return "input"
    raise ColumnError(path, f"has several columns ({', '.join(map(str, frame.columns))}) and none was named")


def read_corpus(paths: Sequence[Path | str], column: str | None = None, max_len: int = MAX_LEN.default) -> CorpusReport:
    """Unlabeled strings for language-model pretraining, in file order (repeats kept).

    Text files give one string per line (UTF-8; CRLF and CR line ends are accepted); CSV and
    Parquet files give one column (``column``, or the only column, or ``input``). Blank and
    null values are skipped, and so are strings longer than ``max_len`` (both counted).
    """
    texts: list[str] = []
    sources: list[dict] = []
    blank = too_long = 0
    for raw in paths:
        path = Path(raw)
        suffix = path.suffix.lower()
        if suffix in PARQUET_SUFFIXES or suffix in (*JSONL_SUFFIXES, ".json") or suffix == ".csv":
            frame = read_table(path, ())
            name = _corpus_column(path, frame, column)
            values = frame[name]
            for i, value in enumerate(values):
                if value is not None and not pd.isna(value):
                    check_text_value(path, value, i + 1, name)
            candidates = [v for v in values if isinstance(v, str)]
            blank += len(values) - len(candidates)
            where = {"path": str(path), "column": name}
        else:
            if not path.is_file():
                raise not_a_file(path)
            candidates = LINE_ENDS.split(decode_utf8(path, path.read_bytes()))
            where = {"path": str(path)}
        kept = 0
        for value in candidates:
            value = normalize_text(value)
            if not value.strip():
                blank += 1
            elif len(value) > max_len:
                too_long += 1
            else:
                texts.append(value)
                kept += 1
        sources.append({**where, "strings": kept})
    if not texts:
        raise InputFileError(", ".join(map(str, paths)), "no usable strings (every value was blank or too long)")
    return CorpusReport(texts, sources, blank, too_long)
