"""Output paths checked before any work: never an input (or inside one, or holding one), and
writable (``check_output``). Every command that writes a file or folder asks here first."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from strseq_tasks.data.files import JSONL_SUFFIXES, PARQUET_MISSING, PARQUET_SUFFIXES, parquet_missing
from strseq_tasks.errors import StrseqError


class OutputPathError(StrseqError, ValueError):
    """An output path that must not or cannot be written, found before any work is done."""


Inputs = Sequence[tuple[str, Path | str | None]]  # (option, path) pairs, e.g. ("--pairs", "p.csv")
TABLE_SUFFIXES = (".csv", *PARQUET_SUFFIXES, *JSONL_SUFFIXES)  # a written table's format, by its suffix


def check_table_suffix(option: str, output: Path | str) -> None:
    """Refuse a table output whose suffix names no format written (``files.write_table`` chooses
    by it): ``out.xlsx`` or ``out.tsv`` would be a CSV file under another format's name."""
    output = Path(output)
    if output.suffix.lower() not in TABLE_SUFFIXES:
        which = f"and {output.suffix} is none of these" if output.suffix else "and it has none"
        raise OutputPathError(f"{option} {output}: the file's suffix chooses what is written, .csv, .parquet (.pq) "
                              f"or .jsonl (.ndjson), {which}; name the file with one")


def check_output(option: str, output: Path | str, inputs: Inputs = (), folder: bool = False,
                 replaced: bool = True) -> None:
    """Refuse, before any work, an output that is one of the command's inputs (by resolved path,
    or the same file through a hard link), lies inside an input folder, or (a folder) contains
    an input, which replacing it would delete; and one that cannot be written: a folder where a
    file is expected or a file where a folder is, a file on the way, a folder not writable.
    Missing folders on the way are fine: writing creates them. ``replaced``: the output is
    written beside and renamed into place (files, bundles), not written into (a work folder)."""
    output = Path(output)
    where = f"{option} {output}"
    if not folder and parquet_missing(output):
        raise OutputPathError(f"{where}: {PARQUET_MISSING}")
    try:
        target = output.resolve()
        for name, raw in inputs:
            if raw is not None:
                _check_not_input(where, output, target, name, Path(raw), folder)
        _check_writable(where, output, folder, replaced)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise OutputPathError(f"{where} cannot be checked: {exc}") from None


def same_file(a: Path | str, b: Path | str) -> bool:
    """One file under two names: the same resolved path (symlinks, ``./``), or a hard link."""
    a, b = Path(a), Path(b)
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))


def _check_not_input(where: str, output: Path, target: Path, name: str, raw: Path, folder: bool) -> None:
    source = raw.resolve()
    if same_file(output, raw):
        raise OutputPathError(f"{where} is the input {name} {raw}: writing it would destroy the input; "
                              "choose another path")
    if folder and target in source.parents:
        raise OutputPathError(f"{where} contains the input {name} {raw}: replacing it would delete the input; "
                              "choose another path")
    if source in target.parents:
        raise OutputPathError(f"{where} is inside the input {name} {raw}: writing there would change the input; "
                              "choose another path")


def _check_writable(where: str, output: Path, folder: bool, replaced: bool) -> None:
    if output.is_dir() and not folder:
        raise OutputPathError(f"{where} is a folder; give the path of a file to write")
    if output.exists() and not output.is_dir() and folder:
        raise OutputPathError(f"{where} is a file, not a folder; give a folder path"
                              + (" (--force replaces only a folder)" if replaced else ""))
    if folder and output.is_dir():
        if not os.access(output, os.W_OK | os.X_OK):  # replacing a folder rewrites its '..' entry
            raise OutputPathError(f"{where} cannot be written: the folder is not writable")
        if not replaced:
            return  # written into: its parent is not touched
    ancestor = output.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:  # the first folder that exists is written in
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathError(f"{where} cannot be written: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f"{where} cannot be written: folder {ancestor} is not writable")
