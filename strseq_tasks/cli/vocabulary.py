"""One name per concept across every ``strseq`` command, and the older spellings kept working.

docs/commands.md's vocabulary table lists every option (concept, option, environment variable,
commands); tests/integration/test_vocabulary.py holds the real app to it. An option renamed to
fit the table keeps its old spelling as a hidden alias here, so a scheduled job written against
it runs on, with one warning line naming the new spelling.
"""

from __future__ import annotations

from dataclasses import dataclass

import typer
from typer.core import TyperGroup, TyperOption


@dataclass(frozen=True)
class Alias:
    old: str
    new: str
    commands: tuple[str, ...]  # command paths as typed: "predict", "review list"
    with_value: bool = False  # only when a value follows (evaluate's old `--json PATH`; `--json` alone is the flag)


ALIASES = (
    Alias("--output", "--out", ("predict", "evaluate")),
    Alias("--json", "--json-out", ("evaluate",), with_value=True),
    Alias("--dir", "--out", ("demo",)),
    Alias("--pairs", "--pairs-per-field", ("demo",)),  # a count there; --pairs is a file of pairs elsewhere
    Alias("--epochs", "--max-epochs", ("train", "retrain", "pretrain")),
    Alias("--minutes", "--max-minutes", ("pretrain", "demo")),
    Alias("--column", "--input-column", ("pretrain",)),
    Alias("--version", "--model-version", ("models show", "models promote")),  # strseq --version is a flag
    Alias("--reason", "--note", ("models promote",)),  # --reason filters the review queue
)


def _value_options(command) -> set[str]:
    """The spellings of ``command``'s options that take a value (the token after them is data)."""
    return {name for p in command.params if isinstance(p, TyperOption) and not p.is_flag and not p.count
            for name in p.opts}


def translate(path: str, command, args: list[str]) -> list[str]:
    """``args`` of command ``path`` with every deprecated spelling replaced by the current one
    (one warning line each). Option values are data and never rewritten (`--note --output`)."""
    aliases = {a.old: a for a in ALIASES if path in a.commands}
    if not aliases:
        return args
    takes_value, out, warned, i = _value_options(command), [], set(), 0
    while i < len(args):
        token = args[i]
        if token == "--":  # everything after it is an argument
            return [*out, *args[i:]]
        name, eq, value = token.partition("=")
        alias = aliases.get(name)
        following = args[i + 1] if i + 1 < len(args) else None
        if alias and (not alias.with_value or eq or (following is not None and not following.startswith("-"))):
            if alias.old not in warned:
                warned.add(alias.old)
                typer.echo(f"warning: {alias.old} is deprecated in `strseq {path}`: use {alias.new} "
                           "(the old spelling keeps working for now)", err=True)
            name, token = alias.new, alias.new + eq + value
        out.append(token)
        if name in takes_value and not eq and following is not None:
            out.append(following)
            i += 1
        i += 1
    return out


class VocabularyGroup(TyperGroup):
    """The ``strseq`` app: before a command parses its options, older spellings become current ones."""

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        path, leaf, head = [name], command, []
        while isinstance(leaf, TyperGroup) and rest and rest[0] in leaf.commands:  # `strseq review list ...`
            path.append(rest[0])
            head.append(rest[0])
            leaf, rest = leaf.commands[rest[0]], rest[1:]
        return name, command, [*head, *translate(" ".join(path), leaf, rest)]
