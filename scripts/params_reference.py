"""Write the flows' parameter tables in docs/deployment.md from ``strseq_tasks/params.py``.

    .venv/bin/python scripts/params_reference.py          # rewrite the tables in place
    .venv/bin/python scripts/params_reference.py --check  # exit 1 if the doc differs (the tests run this)

Each table sits between ``<!-- params: NAME -->`` and ``<!-- /params -->``; the rest of the page
is written by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from strseq_tasks.params import CLEAN, GATES, RETRAIN, Param

DOC = Path(__file__).resolve().parents[1] / "docs" / "deployment.md"
TABLES = {"clean": CLEAN, "retrain": RETRAIN, "gates": GATES}
BLOCK = re.compile(r"(<!-- params: (\w+) -->\n)(.*?)(<!-- /params -->)", re.S)


def _value(value) -> str:
    if value is ...:
        return "required"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return f"`{value}`"


def _bounds(spec: Param) -> str:
    parts = [f"{sign} {v}" for sign, v in ((">=", spec.ge), (">", spec.gt), ("<=", spec.le), ("<", spec.lt))
             if v is not None]
    return ", ".join(parts)


def table(specs: dict[str, Param]) -> str:
    rows = ["| parameter | option | default | bounds | meaning |", "|---|---|---|---|---|"]
    for name, spec in specs.items():
        rows.append(f"| `{name}` | `{spec.flag(name)}` | {_value(spec.default)} | {_bounds(spec)} | "
                    f"{spec.help.replace('|', '/')} |")
    return "\n".join(rows) + "\n"


def render(text: str) -> str:
    return BLOCK.sub(lambda m: m.group(1) + table(TABLES[m.group(2)]) + m.group(4), text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the doc's tables are not current")
    args = parser.parse_args()
    text = DOC.read_text(encoding="utf-8")
    found = {m.group(2) for m in BLOCK.finditer(text)}
    if found != set(TABLES):
        print(f"error: {DOC} has tables {sorted(found)}, expected {sorted(TABLES)}", file=sys.stderr)
        return 2
    new = render(text)
    if args.check:
        if new != text:
            print(f"{DOC} is out of date: run scripts/params_reference.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
