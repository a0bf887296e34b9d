"""Nothing in strseq unpickles: a tampered bundle or registry file can be refused, never executed.

A static scan of every module of strseq_tasks/ and flows/: no pickle-family import, no call
that unpickles (torch.load, numpy.load, pandas.read_pickle, ...). Weights are safetensors, graphs
ONNX, everything else JSON."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted([*(ROOT / "strseq_tasks").rglob("*.py"), *(ROOT / "flows").rglob("*.py")])
BANNED_IMPORTS = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "joblib", "shelve", "marshal"}
BANNED_CALLS = {"load", "loads", "read_pickle", "Unpickler"}  # as attributes of the modules below
UNPICKLING_OWNERS = {"torch", "np", "numpy", "pd", "pandas", "pickle"}


def _offences(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in BANNED_IMPORTS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in BANNED_IMPORTS:
            found.append(f"from {node.module} import ...")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and isinstance(node.func.value, ast.Name) and node.func.value.id in UNPICKLING_OWNERS
              and node.func.attr in BANNED_CALLS):
            found.append(f"{node.func.value.id}.{node.func.attr}(...) at line {node.lineno}")
    return found


def test_no_module_unpickles(ledger):
    assert len(MODULES) > 30  # the scan sees the package
    offences = {str(p.relative_to(ROOT)): o for p in MODULES if (o := _offences(p))}
    ledger("tampering", f"static scan of {len(MODULES)} modules for anything that unpickles "
           "(pickle-family imports, torch.load, numpy.load, pandas.read_pickle)", "code",
           error="; ".join(f"{k}: {', '.join(v)}" for k, v in offences.items()))
    assert offences == {}


def test_the_scan_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "bad.py"
    sample.write_text("import pickle\nfrom cloudpickle import loads\nimport torch\nx = torch.load('w.pt')\n")
    assert _offences(sample) == ["import pickle", "from cloudpickle import ...", "torch.load(...) at line 4"]
