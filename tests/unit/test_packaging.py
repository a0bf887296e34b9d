"""Every package strseq imports is one pyproject.toml declares (issue 23: pyyaml and pydantic
came only with Prefect). Reads the imports of strseq_tasks/ (flows/ included, through its link)
with ``ast``, maps each top-level module to the distribution that installs it, and compares with
the base dependencies and every extra."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"strseq_tasks"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return {_normal(Requirement(spec).name) for spec in specs}


def imported_modules(folder: Path) -> dict[str, str]:
    """Top-level module -> one file that imports it, over every .py file under ``folder``."""
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(folder.parent)))
    return found


def test_every_imported_package_is_declared():
    owners = packages_distributions()
    known = declared()
    missing = []
    for module, where in imported_modules(ROOT / "strseq_tasks").items():
        if module in FIRST_PARTY or module in sys.stdlib_module_names:
            continue
        distributions = {_normal(d) for d in owners.get(module, [])}
        assert distributions, f"{module} (imported in {where}) is not installed in this environment"
        if not distributions & known:
            missing.append(f"{module} ({', '.join(sorted(distributions))}; imported in {where})")
    assert not missing, "imported but not declared in pyproject.toml: " + "; ".join(missing)


def test_the_check_sees_an_undeclared_import(tmp_path):
    # the scan finds imports inside functions too, where optional dependencies usually live
    (tmp_path / "mod.py").write_text("def f():\n    import yaml\n    from pydantic import BaseModel\n")
    assert set(imported_modules(tmp_path)) == {"yaml", "pydantic"}
