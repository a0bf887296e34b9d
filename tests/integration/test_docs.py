"""The guide cannot rot: every command the READMEs show is checked against the real CLI, and run.

- Every ``strseq ...`` command in README.md, deploy/README.md and docs/ (code blocks and inline code)
  names a real subcommand and only options that subcommand has; a complete one (no
  placeholders) also has every required option.
- Every documented subcommand is run end to end by a test (``run_strseq("clean", ...)`` in
  tests/); this file checks that such a test exists.
- Blocks marked ``<!-- doc-test: run -->`` are run here as written, in a copy of examples/
  (``strseq train`` gets ``--max-epochs 1`` added, to take seconds).
- Benchmark commands use only options their script has; scripts the READMEs name exist.
- The Python snippets run in tests/flows/test_docs_snippets.py (they need Prefect's harness).
"""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main
from fixtures.docs import DOCS  # README.md, deploy/README.md, docs/*.md (hand-written)

from strseq_tasks.cli import app

from .cli_harness import run_strseq

ROOT = Path(__file__).resolve().parents[2]
RUN_MARK = "<!-- doc-test: run -->"
# what the marked blocks' commands get added in the test, to take seconds
QUICK = {"train": ["--max-epochs", "1"]}
# inline code that is a command: `strseq review --db URL`, `prefect server start`, `scripts/demo.sh`
INLINE = re.compile(r"(?<!`)`((?:strseq |prefect |\.venv/bin/python benchmarks/|scripts/\S+\.sh|deploy/\S+\.sh)"
                    r"[^`\n]*)`")


@dataclass(frozen=True)
class Command:
    doc: str
    line: int
    text: str
    run: bool = False  # in a block marked to be run
    inline: bool = False  # named in the text (`strseq review`), not shown as a command to type

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"


def _fenced(text: str):
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        before = text[: match.start()].rstrip()
        yield match.group(1), match.group(2), text[: match.start(2)].count("\n") + 1, before.endswith(RUN_MARK)


def _block_commands(body: str, first_line: int):
    """Commands of a shell block: backslash and indented continuations joined, comments dropped."""
    current, start = "", first_line
    for offset, raw in enumerate(body.splitlines()):
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if current and (current.endswith("\\") or (raw[:1].isspace() and line.strip())):
            current = current.rstrip("\\").rstrip() + " " + line.strip()
            continue
        if current:
            yield start, current
        current, start = line.strip(), first_line + offset
    if current:
        yield start, current


def documented_commands() -> list[Command]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        name = str(doc.relative_to(ROOT))
        for lang, body, line, run in _fenced(text):
            if lang not in ("", "bash", "sh"):
                continue
            found += [Command(name, n, c, run) for n, c in _block_commands(body, line) if c]
        for match in INLINE.finditer(text):
            found.append(Command(name, text[: match.start()].count("\n") + 1, match.group(1), inline=True))
    return found


@functools.cache
def _click_app():  # building it takes ~0.2 s: once for the module, not once per documented command
    return typer.main.get_command(app)


def _expand(tokens: list[str]) -> list[list[str]]:
    """``models list|show`` stands for two commands."""
    for i, token in enumerate(tokens):
        if re.fullmatch(r"[a-z]+(\|[a-z]+)+", token):
            return [[*tokens[:i], alt, *tokens[i + 1:]] for alt in token.split("|")]
    return [tokens]


def _resolve(tokens: list[str]):
    """The click command a ``strseq`` token list names, and the tokens after its name."""
    command, rest = _click_app(), tokens[1:]
    while rest and hasattr(command, "commands") and rest[0] in command.commands:
        command, rest = command.commands[rest[0]], rest[1:]
    return command, rest


def _options(command) -> dict[str, object]:
    opts = {"--help": None}
    for param in command.params:
        for opt in [*param.opts, *param.secondary_opts]:
            opts[opt] = param
    return opts


def _is_complete(text: str) -> bool:
    """No placeholders: runnable as written (``strseq demo --help``, not ``--db URL``)."""
    return not re.search(r"[\[\]|]|\.\.\.|\b[A-Z][A-Z0-9_]{1,}\b", text.split("--help")[0])


# `strseq COMMAND --help` speaks of every subcommand at once: not one to check
STRSEQ = [c for c in documented_commands()
          if c.text.startswith("strseq ") and not re.fullmatch(r"[A-Z_]+", shlex.split(c.text)[1])]


def test_the_docs_show_the_commands():
    """The extraction itself: a broken pattern would make the checks below pass on nothing."""
    subcommands = {shlex.split(c.text)[1] for c in STRSEQ}
    assert {"train", "predict", "evaluate", "pretrain", "retrain", "models", "clean", "revert", "review",
            "demo", "serve"} <= subcommands
    assert any(c.run for c in STRSEQ), f"no block marked {RUN_MARK}"


@pytest.mark.parametrize("command", STRSEQ, ids=str)
def test_documented_command_matches_the_cli(command: Command):
    for tokens in _expand(shlex.split(command.text)):
        click_command, rest = _resolve(tokens)
        if hasattr(click_command, "commands"):  # a group: only named in the text (`strseq models`), or its own options
            assert command.inline and set(rest) <= set(_options(click_command)), f"{command}: no such subcommand"
            continue
        known = _options(click_command)
        used = [re.sub(r"[\[\]]", "", t).split("=")[0] for t in rest if t.lstrip("[").startswith("--")]
        unknown = [u for u in used if u not in known]
        assert not unknown, f"{command}: {unknown} are not options of `strseq {' '.join(tokens[1:2])}`"
        if not command.inline and _is_complete(command.text) and "--help" not in used:
            # an option an environment variable can give (--db: STRSEQ_DB) may be left out
            missing = [p.opts[0] for p in click_command.params
                       if p.required and not getattr(p, "envvar", None) and not set(p.opts) & set(used)]
            assert not missing, f"{command}: required {missing} missing"


def _tests_running(subcommand: list[str]) -> list[Path]:
    quoted = ", ".join(f'"{s}"' for s in subcommand)
    pattern = re.compile(r"run_strseq\(\s*" + re.escape(quoted))
    return [p for p in (ROOT / "tests").rglob("test_*.py") if pattern.search(p.read_text(encoding="utf-8"))]


def test_every_documented_subcommand_is_run_by_a_test():
    subcommands = set()
    for command in STRSEQ:
        for tokens in _expand(shlex.split(command.text)):
            click_command, rest = _resolve(tokens)
            subcommands.add(tuple(tokens[1 : len(tokens) - len(rest)]))
    unrun = [" ".join(s) for s in sorted(subcommands) if not _tests_running(list(s))]
    assert not unrun, f"documented but run by no test: {unrun}"


def test_marked_blocks_run_as_written(tmp_path):
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    ran = []
    for command in (c for c in STRSEQ if c.run):
        tokens = shlex.split(command.text)[1:]
        result = run_strseq(*tokens, *QUICK.get(tokens[0], []), cwd=tmp_path)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        ran.append(tokens[0])
    assert "train" in ran and "predict" in ran
    assert (tmp_path / "predictions.csv").exists()


BENCHMARKS = [c for c in documented_commands() if c.text.startswith(".venv/bin/python benchmarks/")]


@pytest.mark.parametrize("script", sorted({shlex.split(c.text)[1] for c in BENCHMARKS}))
def test_documented_benchmark_commands_use_real_options(script):
    assert (ROOT / script).is_file(), script
    shown = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr
    for command in (c for c in BENCHMARKS if shlex.split(c.text)[1] == script):
        options = [t.split("=")[0] for t in shlex.split(command.text) if t.startswith("--")]
        unknown = [o for o in options if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", shown.stdout)]
        assert not unknown, f"{command}: {unknown} not in `{script} --help`"


def test_documented_scripts_exist():
    scripts = {t for c in documented_commands() for t in c.text.split()[:1]
               if t.startswith(("scripts/", "deploy/")) and t.endswith(".sh")}
    assert {"scripts/demo.sh", "scripts/test.sh", "deploy/cpu_server_check.sh"} <= scripts
    for script in scripts:
        path = ROOT / script
        assert path.is_file() and path.stat().st_mode & 0o111, f"{script} is missing or not executable"


def test_configuration_reference_is_written_from_the_parameters():
    """docs/deployment.md's parameter tables are scripts/params_reference.py's output, and list
    every field of the flows' records."""
    from strseq_tasks.jobs.clean_params import CleanParams
    from strseq_tasks.jobs.retrain import Gates, RetrainParams

    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "params_reference.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    text = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    reference = text[text.index("## Configuration reference"):]
    missing = [f"{model.__name__}.{field}" for model in (CleanParams, RetrainParams, Gates)
               for field in model.model_fields if f"`{field}`" not in reference]
    assert not missing, f"the configuration reference lacks {missing}"


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def test_every_link_between_the_docs_leads_somewhere():
    """Relative links in README.md, deploy/README.md and docs/ name a file that exists and, with
    #anchor, a heading of that file."""
    broken = []
    for doc in DOCS:
        text = re.sub(r"^```.*?^```", "", doc.read_text(encoding="utf-8"), flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            if not dest.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


def test_the_front_page_is_short_and_names_every_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 300, "README.md is the front page: move detail into docs/"
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert [p for p in pages if f"docs/{p}" not in readme] == [], "a docs page the README does not link"


def test_documented_prefect_commands_are_run_by_the_deployment_test():
    """`prefect work-pool create`, `prefect deploy`, `prefect worker start`, ... as the guide shows them."""
    test = (ROOT / "tests" / "integration" / "test_deployments_server.py").read_text(encoding="utf-8")
    commands = [c for c in documented_commands() if c.text.startswith("prefect ")]
    assert len(commands) >= 4
    unrun = []
    for command in commands:
        words = [t for t in shlex.split(command.text)[1:] if not t.startswith("-")][:2]
        words = words[:1] if words[0] == "deploy" else words
        if ", ".join(f'"{w}"' for w in words) not in test:
            unrun.append(str(command))
    assert not unrun, f"prefect commands the guide shows but no test runs: {unrun}"


def test_the_readme_speed_paragraph_is_written_from_the_benchmark_results():
    """README's speed paragraph is what `benchmarks/predict_throughput.py --readme` writes from the
    results file docs/benchmarks.md shows: a re-run's figures, never typed by hand."""
    results = ROOT / "benchmarks" / "results" / "programs" / "predict_throughput.json"
    script = ROOT / "benchmarks" / "predict_throughput.py"
    done = subprocess.run([sys.executable, str(script), "--readme", str(results)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in (ROOT / "README.md").read_text(encoding="utf-8")
