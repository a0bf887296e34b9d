"""The reliability ledger: what each fault or hostile-input test tried and what it measured.

A test takes the ``ledger`` fixture and calls it once per case it tries, with what it measured
(rows lost, rows applied twice, the error a user saw). The hooks in ``conftest.py`` add each
test's outcome; with ``$STRSEQ_RELIABILITY_LEDGER`` set, the session writes every entry there as
JSON, and ``scripts/reliability_report.py`` renders it into ``docs/reliability.md``. Tests still
assert what they record: a failing case shows in the table as failed, with its figures.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

LEDGER_ENV = "STRSEQ_RELIABILITY_LEDGER"
FUZZ_ENV = "STRSEQ_FUZZ_EXAMPLES"  # examples of the CSV loader fuzzing (tests/unit/test_io_properties.py)
# a test's temporary folders in messages: keep the last part ("…/vocab.json"), the rest differs per run
TEMP_PATH = re.compile(r"(?:/[^/\s:'\"]+)+/([^/\s:'\"]+)")


@dataclass
class Entry:
    area: str  # "crash", "database fault", "concurrency", "hostile input", "tampering"
    case: str  # what was done, e.g. "SIGKILL after 7 of 40 rows written"
    backend: str = ""  # "sqlite", "postgresql", "csv", "registry", ...
    rows_lost: int | None = None  # None: not a question for this case
    rows_double_applied: int | None = None
    error: str = ""  # what the user was told, first line
    test: str = ""  # pytest node id
    outcome: str = "not run"  # "passed" / "failed", set from the test's report


@dataclass
class Ledger:
    entries: list[Entry] = field(default_factory=list)

    def recorder(self, test: str):
        def record(area: str, case: str, backend: str = "", rows_lost: int | None = None,
                   rows_double_applied: int | None = None, error: object = "") -> Entry:
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            first = TEMP_PATH.sub(r"…/\1", first)
            entry = Entry(area, case, backend, rows_lost, rows_double_applied, first[:200], test)
            self.entries.append(entry)
            return entry
        return record

    def set_outcome(self, test: str, outcome: str) -> None:
        for entry in self.entries:
            if entry.test == test and (entry.outcome == "not run" or outcome == "failed"):
                entry.outcome = outcome

    def write(self) -> Path | None:
        path = os.environ.get(LEDGER_ENV)
        if not path:
            return None
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        from campaign import SCALE, SEED  # tests/ is on sys.path

        data = {"campaign": {"seed": SEED, "scale": SCALE, "fuzz_examples": int(os.environ.get(FUZZ_ENV, "300"))},
                "entries": [asdict(e) for e in self.entries]}
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(out)
        return out


LEDGER = Ledger()
