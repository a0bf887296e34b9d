"""One name per concept: every option of every command of the real ``strseq`` app is a row of
docs/commands.md's vocabulary table, under the commands, value kind and environment variable the
table gives, and the older spellings the table lists are exactly the hidden aliases that work."""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

import pytest
import typer.main
from typer.core import TyperGroup, TyperOption

from strseq_tasks.cli import app
from strseq_tasks.cli.vocabulary import ALIASES, translate

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "commands.md"
SECTION = "## Options: one name per concept"

# Options of files others are changing now (cli/models.py): names that break the table, reported
# to them. Each must still exist (a fixed one fails here, so it is taken off this list).
PENDING: dict = {}  # (command, option) -> why it is not yet in line with the table

# Names that would say an existing concept again (the first of each group is the one in use).
SYNONYMS = [
    ("--out", "--output", "--output-file", "--dest", "--dir", "--output-dir"),
    ("--db", "--database", "--url", "--db-url", "--dsn"),
    ("--registry", "--registry-url", "--models"),
    ("--max-epochs", "--epochs"),
    ("--max-minutes", "--minutes", "--time-budget"),
    ("--json-out", "--json-file", "--metrics"),
    ("--quiet", "--silent"),
    ("--input-column", "--source-column", "--dirty-column"),
    ("--target-column", "--clean-column"),
]


def _cells(line: str) -> list[str]:
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def _tables(text: str) -> list[list[list[str]]]:
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(_cells(line))
        elif current:
            tables.append(current)
            current = []
    return [t[2:] for t in tables + ([current] if current else [])]  # without header and rule


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(SECTION)
    return text[start: text.index("\n## ", start + len(SECTION))]


def _spellings(cell: str) -> tuple[str, ...]:
    return tuple(re.findall(r"`([^`]+)`", cell))


VOCABULARY, OLD_SPELLINGS = _tables(_section())[:2]
ROWS = {_spellings(r[1]): dict(concept=r[0], env=r[2].strip("`") or None, value=r[3],
                               commands={c.strip() for c in r[4].split(",")}) for r in VOCABULARY}


def _options() -> dict[tuple[str, str], TyperOption]:
    """(command path, first spelling) -> option, over every command and group of the real app;
    `strseq` is the app itself. Hidden options (tests' own switches) are not the vocabulary."""
    found = {}

    def walk(command, path: str) -> None:
        for param in command.params:
            if isinstance(param, TyperOption) and not param.hidden:
                found[(path or "strseq", param.opts[0])] = param
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return found


OPTIONS = _options()
LIVE = {k: v for k, v in OPTIONS.items() if k not in PENDING}


def _row(param: TyperOption) -> dict | None:
    return ROWS.get(tuple([*param.opts, *param.secondary_opts]))


def test_the_walk_and_the_table_see_everything():
    """The extraction itself: a broken parser would make the checks below pass on nothing."""
    commands = {path for path, _ in OPTIONS}
    assert {"train", "predict", "evaluate", "pretrain", "export", "retrain", "clean", "revert", "demo", "serve",
            "models list", "models promote", "review list", "review approve", "review export", "strseq"} <= commands
    assert len(OPTIONS) > 200 and len(ROWS) > 80 and len(OLD_SPELLINGS) == len(ALIASES)


def test_every_option_is_a_row_of_the_table_under_its_commands():
    outside = [f"strseq {path} {name}" for (path, name), p in LIVE.items() if _row(p) is None]
    assert not outside, f"options outside docs/commands.md's vocabulary table: {outside}"
    unlisted = [f"strseq {path} {name}" for (path, name), p in LIVE.items() if path not in _row(p)["commands"]]
    assert not unlisted, f"the table's commands column lacks: {unlisted}"
    for spellings, row in ROWS.items():
        having = {path for (path, name), p in LIVE.items() if name == spellings[0]}
        assert row["commands"] == having, f"{spellings[0]}: the table says {sorted(row['commands'])}, " \
                                          f"the app has it in {sorted(having)}"


def test_one_concept_one_name_and_one_name_one_kind():
    concepts = [row["concept"] for row in ROWS.values()]
    assert len(concepts) == len(set(concepts)), "a concept with two rows (two names)"
    for (path, name), param in LIVE.items():
        row = _row(param)
        assert (row["value"] == "flag") == param.is_flag, f"strseq {path} {name}: flag in one place, a value in another"
        annotation = param.type_descriptor.annotation
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            assert row["value"] == "|".join(e.value for e in annotation), f"strseq {path} {name}: another Choice"
        assert param.envvar == row["env"], f"strseq {path} {name}: env var {param.envvar}, the table {row['env']}"
        assert param.help, f"strseq {path} {name} has no help text"
    in_use = {name for _, name in LIVE}
    for group in SYNONYMS:
        assert len(in_use & set(group)) <= 1, f"one concept, several names: {sorted(in_use & set(group))}"


def test_the_older_spellings_are_the_aliases_and_none_is_still_an_option():
    listed = {(_spellings(old)[0].split()[0], _spellings(new)[0].split()[0]):
              {c.strip() for c in re.sub(r"\(.*?\)", "", cmds).split(",")} for old, new, cmds in OLD_SPELLINGS}
    assert listed == {(a.old, a.new): set(a.commands) for a in ALIASES}
    for alias in ALIASES:
        for path in alias.commands:
            names = {n for (where, _), p in OPTIONS.items() if where == path for n in p.opts}
            assert alias.new in names, f"{alias.old} -> {alias.new}: no {alias.new} in strseq {path}"
            if not alias.with_value:
                assert alias.old not in names, f"strseq {path} has both {alias.old} and {alias.new}"


def test_the_pending_names_are_still_there_and_reported_in_the_docs():
    for (path, name), why in PENDING.items():
        assert (path, name) in OPTIONS, f"strseq {path} {name} is fixed: take it off PENDING ({why})"
    assert ("Not yet in line" in _section()) == bool(PENDING)


@pytest.mark.parametrize("path, args, expected", [
    ("predict", ["--output", "o.csv"], ["--out", "o.csv"]),
    ("predict", ["--output=o.csv"], ["--out=o.csv"]),
    # a value is data, never a spelling: an input column named "--output"
    ("predict", ["--input-column", "--output", "--output", "o.csv"], ["--input-column", "--output", "--out", "o.csv"]),
    ("predict", ["--", "--output"], ["--", "--output"]),
    ("evaluate", ["--json", "m.json", "--quiet"], ["--json-out", "m.json", "--quiet"]),
    ("evaluate", ["--json", "--quiet"], ["--json", "--quiet"]),  # the flag
    ("evaluate", ["--quiet", "--json"], ["--quiet", "--json"]),
    ("train", ["--epochs", "3"], ["--max-epochs", "3"]),
    ("clean", ["--column", "name"], ["--column", "name"]),  # --column is pretrain's old spelling only
    ("pretrain", ["--column", "name", "--minutes", "1"], ["--input-column", "name", "--max-minutes", "1"]),
    ("models promote", ["--version", "2", "--reason", "x"], ["--model-version", "2", "--note", "x"]),
])
def test_translate_rewrites_old_spellings_only(path, args, expected, capsys):
    command = typer.main.get_command(app)
    for name in path.split():  # a group's command: "models promote"
        command = command.commands[name]
    assert translate(path, command, args) == expected
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == sum(a != b for a, b in zip(args, expected))
    assert all(w.startswith("warning: ") and "deprecated" in w for w in warnings)
