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


def pins() -> dict[str, str]:
    """deploy/constraints.txt (scripts/lock.sh): distribution -> pinned version."""
    out = {}
    for line in (ROOT / "deploy" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"deploy/constraints.txt: {line!r} is not NAME==VERSION"
            out[_normal(name)] = version.strip()
    return out


def test_the_constraints_pin_every_declared_dependency_within_its_range():
    """A reproducible install pins everything pyproject.toml asks for, each pin inside the declared
    range (a pin outside it would make `pip install -c` fail); regenerate with scripts/lock.sh."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = [Requirement(s) for s in project["dependencies"]]
    specs += [Requirement(s) for extra in project["optional-dependencies"].values() for s in extra]
    pinned = pins()
    unpinned = sorted({_normal(r.name) for r in specs} - set(pinned))
    assert not unpinned, f"not in deploy/constraints.txt (run scripts/lock.sh): {', '.join(unpinned)}"
    outside = [f"{r.name}=={pinned[_normal(r.name)]} (declared {r.specifier})" for r in specs
               if not r.specifier.contains(pinned[_normal(r.name)], prereleases=True)]
    assert not outside, "pins outside the declared ranges: " + "; ".join(outside)
    assert pinned["torch"] == "2.13.0"  # the CPU wheel on these machines; anything else fetches CUDA
