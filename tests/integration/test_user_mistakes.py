"""The mistakes a user makes on a first day: each is one `error:` line naming the fix, exit 2, no
traceback, and no flow run (the command stops before Prefect starts).

Every case runs the real command in a fresh process against a real SQLite database and a real
registry. "No flow run" is checked where Prefect would have kept it: each command gets a fresh
$PREFECT_HOME and no API URL, so a flow run would have started Prefect's temporary server, whose
database lives in $PREFECT_HOME; the folder must still be empty afterwards.

`scripts/user_mistakes_report.py` runs this file with $STRSEQ_MISTAKES_LEDGER set and writes
docs/user-mistakes.md: the table of cases, the error line each printed and its time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from campaign import sampled  # tests/ is on sys.path

from strseq_tasks.serve.refs import PRODUCTION
from strseq_tasks.serve.registry import Registry

from .cli_harness import ONE_THREAD

LEDGER_ENV = "STRSEQ_MISTAKES_LEDGER"


class Setup:
    """What the cases run against: a CRM table, its curated pairs (in the database and as a CSV)
    and a registry whose model `names` has version 1 in production."""

    def __init__(self, root: Path, bundle: Path):
        self.root = root
        self.db_path = root / "crm.db"
        with sqlite3.connect(self.db_path) as conn:
            conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, code TEXT)")
            conn.executemany("INSERT INTO customers VALUES (?, ?, ?)",
                             [(i, f"SMITH, John {i}", "A" if i % 2 else "B") for i in range(1, 21)])
            conn.execute("CREATE TABLE curated_pairs (input TEXT, target TEXT)")
            conn.executemany("INSERT INTO curated_pairs VALUES (?, ?)",
                             [(f"SMITH, John {i}", f"John Smith {i}") for i in range(30)])
        (root / "pairs.csv").write_text("input,target\n" + "".join(f"SMITH {i},Smith {i}\n" for i in range(30)),
                                        encoding="utf-8")
        (root / "inputs.csv").write_text("input\nSMITH, John\n", encoding="utf-8")
        (root / "pairs-excel.csv").write_text(  # Excel's CSV where the decimal mark is a comma
            "input;target\n" + "".join(f"SMITH {i};Smith {i}\n" for i in range(30)), encoding="utf-8")
        (root / "inputs-cased.csv").write_text("Input\nJohn Smith\n", encoding="utf-8")
        self.registry = root / "models"
        registry = Registry(str(self.registry))
        version = registry.publish("names", bundle)
        registry.set_alias("names", PRODUCTION, version, "set up for the test")

    @property
    def db(self) -> str:
        return f"sqlite:///{self.db_path}"

    def clean(self, **changes: str) -> list[str]:
        options = {"--db": self.db, "--table": "customers", "--key": "id", "--column": "name",
                   "--model": f"{self.registry}/names@production", **changes}
        return ["clean", *[str(x) for pair in options.items() for x in pair]]

    def retrain(self, *extra: str, **changes: str) -> list[str]:
        options = {"--pairs": self.db, "--pairs-table": "curated_pairs", "--name": "names",
                   "--registry": str(self.registry), **changes}
        return ["retrain", *[str(x) for pair in options.items() for x in pair], *extra]


def _postgres(database: str) -> str:
    url = os.environ.get("STRSEQ_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("no PostgreSQL server (STRSEQ_TEST_POSTGRES_URL)")
    return url.rsplit("/", 1)[0] + "/" + database


# (id, the mistake as a user would describe it, the command's arguments, what the error line names)
CASES = [
    ("dialect-typo", "database URL with a misspelled dialect (postgres+psycopg://)",
     lambda s: s.clean(**{"--db": "postgres+psycopg://postgres@127.0.0.1:5432/test"}), "not a database URL"),
    ("wrong-port", "database URL with a port nobody listens on",
     lambda s: s.clean(**{"--db": "postgresql+psycopg://postgres:secret@127.0.0.1:9/test"}), "cannot connect"),
    ("wrong-database", "database URL naming a database the server does not have",
     lambda s: s.clean(**{"--db": _postgres("strseq_no_such_database")}), "strseq_no_such_database"),
    ("sqlite-typo", "SQLite path mistyped", lambda s: s.clean(**{"--db": f"sqlite:///{s.root}/crn.db"}),
     "no SQLite database"),
    ("unset-env", "database given as env:VAR, with VAR unset",
     lambda s: s.clean(**{"--db": "env:STRSEQ_UNSET_IN_THIS_TEST"}), "STRSEQ_UNSET_IN_THIS_TEST is not set"),
    ("table-typo", "table misspelled", lambda s: s.clean(**{"--table": "custmers"}), "no table 'custmers'"),
    ("column-typo", "column misspelled", lambda s: s.clean(**{"--column": "nmae"}), "'nmae'"),
    ("key-typo", "key column misspelled", lambda s: s.clean(**{"--key": "idd"}), "no key column 'idd'"),
    ("key-not-unique", "key column that is not unique", lambda s: s.clean(**{"--key": "code"}),
     "neither the primary key nor unique"),
    ("output-missing", "output column that does not exist (without --create-output-column)",
     lambda s: s.clean(**{"--output-column": "name_clean"}), "--create-output-column"),
    ("alias-typo", "model alias misspelled (names@prodution)",
     lambda s: s.clean(**{"--model": f"{s.registry}/names@prodution"}), "no alias 'prodution'"),
    ("model-typo", "model name misspelled", lambda s: s.clean(**{"--model": f"{s.registry}/nmes@production"}),
     "no model 'nmes'"),
    ("version-missing", "model version that was never published",
     lambda s: s.clean(**{"--model": f"{s.registry}/names@7"}), "7"),
    ("model-folder-missing", "model folder that does not exist", lambda s: s.clean(**{"--model": s.root / "model"}),
     "not a model folder"),
    ("pairs-missing", "retrain: pairs file that does not exist",
     lambda s: ["retrain", "--pairs", s.root / "pairs.cvs", "--name", "names", "--registry", s.registry],
     "no such file"),
    ("pairs-table-typo", "retrain: pairs table misspelled", lambda s: s.retrain(**{"--pairs-table": "curated"}),
     "'curated'"),
    ("pairs-column-typo", "retrain: target column misspelled",
     lambda s: s.retrain(**{"--target-column": "targte"}), "targte"),
    ("pretrained-missing", "retrain: --pretrained LM folder that does not exist",
     lambda s: s.retrain(**{"--pretrained": s.root / "lm"}), "not a language-model folder"),
    ("known-values-missing", "retrain: --known-values file that does not exist",
     lambda s: s.retrain(**{"--known-values": s.root / "known.txt"}), "no such file"),
    ("bad-model-name", "retrain: a model name with a slash", lambda s: s.retrain(**{"--name": "crm/names"}),
     "invalid model name"),
    ("option-out-of-range", "retrain: a gate outside 0..1 (--max-harm 2)",
     lambda s: s.retrain(**{"--max-harm": "2"}), "--max-harm"),
    ("threshold-nan", "clean: --threshold nan (a float that is no number)",
     lambda s: s.clean(**{"--threshold": "nan"}), "--threshold: Input should be a finite number"),
    ("predict-alias-typo", "predict: model alias misspelled",
     lambda s: ["predict", "--model", f"{s.registry}/names@prodution", "--input", s.root / "inputs.csv",
                "--out", s.root / "out.csv"], "no alias 'prodution'"),
    ("pairs-semicolons", "retrain: a pairs CSV saved with semicolons (Excel in many locales)",
     lambda s: ["retrain", "--pairs", s.root / "pairs-excel.csv", "--name", "names", "--registry", s.registry],
     "semicolon-separated"),
    ("predict-header-case", "predict: the input file's header says Input, not input",
     lambda s: ["predict", "--model", s.registry / "names" / "versions" / "1", "--input", s.root / "inputs-cased.csv",
                "--out", s.root / "out.csv"], "only in case or spaces"),
    ("predict-out-xlsx", "predict: --out out.xlsx (strseq writes CSV, Parquet or JSON Lines)",
     lambda s: ["predict", "--model", s.registry / "names" / "versions" / "1", "--input", s.root / "inputs.csv",
                "--out", s.root / "out.xlsx"], ".xlsx is none of these"),
    ("revert-unknown-run", "revert: a run id that does not exist",
     lambda s: ["revert", "--db", s.db, "--run-id", "not-a-run"], "no strseq runs"),
    ("promote-unknown-version", "models promote: a version that does not exist",
     lambda s: ["models", "promote", "--registry", s.registry, "--name", "names", "--model-version", "9"], "9"),
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_bundle) -> Setup:
    return Setup(tmp_path_factory.mktemp("mistakes"), tiny_bundle)


def _record(case: str, what: str, argv: list, line: str, seconds: float) -> None:
    path = os.environ.get(LEDGER_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"case": case, "what": what, "command": "strseq " + str(argv[0]) + (
                f" {argv[1]}" if argv[0] == "models" else ""), "error": line, "seconds": round(seconds, 2)}) + "\n")


@pytest.mark.parametrize("case, what, argv, names", sampled(CASES, "user-mistakes", share=3), ids=[c[0] for c in CASES])
def test_a_mistake_is_one_error_line_and_no_flow_run(setup, tmp_path, case, what, argv, names):
    args = [str(a) for a in argv(setup)]
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = {**os.environ, **ONE_THREAD, "PREFECT_HOME": str(home), "PYTHONIOENCODING": "utf-8"}
    env.pop("PREFECT_API_URL", None)
    before = sorted(p.name for p in setup.root.iterdir())
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "strseq_tasks.cli", *args], capture_output=True, text=True,
                          encoding="utf-8", env=env, timeout=120, cwd=tmp_path)
    seconds = time.perf_counter() - started
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-3000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-3000:]
    assert names.lower() in lines[0].lower(), (names, lines[0])
    assert "secret" not in proc.stderr and "secret" not in proc.stdout  # the password of wrong-port
    assert list(home.iterdir()) == [], "Prefect started: a flow run may have been created"
    assert sorted(p.name for p in setup.root.iterdir()) == before  # nothing created beside the inputs
    _record(case, what, args, lines[0], seconds)
