"""The package's shape: folders that show the architecture, imports that only run downward.

The import graph is read from the source (every ``import``, function-level ones included, since
a lazy import is still a dependency), so nothing needs to be installed or imported to check it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "strseq_tasks"

# Each folder of strseq_tasks, by layer: a module imports from its own layer or the ones below,
# never above. Within a layer, folders may import each other as long as there is no cycle.
LAYERS = [
    {"(root)", "errors", "params", "core"},  # numpy only, no I/O; the error root; the parameters
    {"data"},  # files, sources, databases, validation
    {"serve"},  # onnxruntime, torch-free: bundles, runtime, registry
    {"learn"},  # torch: models, training, export
    {"jobs", "demo", "review"},  # retrain and clean as plain functions; the demo's data; the review page
    {"runner", "tasks", "flows"},  # Prefect: deployments, tasks for users' flows, the flows
    {"cli"},  # typer
]
RANK = {folder: rank for rank, layer in enumerate(LAYERS) for folder in layer}


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name; flows/ is the package's strseq_tasks.flows."""
    found = {}
    for base, prefix in ((ROOT / PACKAGE, PACKAGE), (ROOT / "flows", f"{PACKAGE}.flows")):
        for path in sorted(base.rglob("*.py")):
            parts = [prefix, *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            if not name.startswith(f"{PACKAGE}.flows") or base.name == "flows":  # the link is read once
                found[name] = path
    return found


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``name`` imports (``from strseq_tasks.x import y``: x.y if it is
    a module, else x)."""
    found = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            candidates = [f"{base}.{alias.name}" for alias in node.names]
            found.update(c for c in candidates if c in modules)
            if not any(c in modules for c in candidates) and base in modules:
                found.add(base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "(root)"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (a -> b -> ... -> a), or None."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_is_read_from_the_source():
    graph = import_graph()
    assert len(graph) > 40
    assert "strseq_tasks.flows.retrain" in graph and "strseq_tasks.cli.common" in graph
    assert "strseq_tasks.jobs.retrain" in graph["strseq_tasks.flows.retrain"]
    assert "strseq_tasks.core.vocab" in graph["strseq_tasks.core.batching"]


def test_no_module_imports_one_that_imports_it_back():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_run_only_downward():
    graph = import_graph()
    unknown = sorted({folder(m) for m in graph} - set(RANK))
    assert not unknown, f"folders without a layer in this test: {unknown}"
    upward = [f"{m} -> {t}" for m, targets in sorted(graph.items()) for t in sorted(targets)
              if RANK[folder(t)] > RANK[folder(m)]]
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


def test_the_runtime_side_never_imports_the_training_side():
    """serve/, data/ and core/ run on CPU servers without torch; learn/ is where torch lives."""
    graph = import_graph()
    below = {m for m in graph if RANK[folder(m)] < RANK["learn"]}
    reach = [f"{m} -> {t}" for m in sorted(below) for t in sorted(graph[m]) if folder(t) == "learn"]
    assert not reach


@pytest.mark.parametrize("cycle_graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b"}, "b": set(), "c": {"a"}}, None),
])
def test_find_cycle_finds_cycles_and_only_cycles(cycle_graph, expected):
    assert find_cycle(cycle_graph) == expected


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60  # its code: the lines from `def` to its end, less its docstring


def _function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in module_files().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by concept): {long}"


def test_a_function_over_60_lines_says_why():
    """A `# long: <why>` comment inside it (one typer option a line, a loop whose parts share
    its state, ...); otherwise it is split."""
    unexplained = []
    for name, path in module_files().items():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _function_lines(node) > MAX_FUNCTION_LINES:
                body = lines[node.lineno - 1: node.end_lineno]
                if not any(line.strip().startswith("# long:") and len(line.strip()) > 20 for line in body):
                    unexplained.append(f"{name}.{node.name} ({_function_lines(node)} lines)")
    assert not unexplained, "functions over 60 lines without a '# long:' comment: " + ", ".join(unexplained)
