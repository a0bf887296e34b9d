"""Run the reliability tests and write docs/reliability.md from what they measured.

    .venv/bin/python scripts/reliability_report.py                # run `pytest -m reliability`, write the doc
    .venv/bin/python scripts/reliability_report.py --ledger L.json  # only render a ledger a run wrote

Every test that takes the ``ledger`` fixture records the cases it tried (tests/reliability_ledger.py):
the fault or input, the backend, rows lost, rows applied twice, and the error the user saw. Set
``STRSEQ_TEST_POSTGRES_URL`` (as `.ci/run` does) to include the PostgreSQL cases. The run's
outcome decides the exit code: 1 if any test failed, and the doc still shows what failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
AREAS = ("crash", "database fault", "concurrency", "hostile input", "tampering")

# Families of failure: each a rule the code now holds for every case of its kind, and the tests
# (node ids, without "tests/") that try it. A hostile tester's finding names a family; a new
# finding in a family means the rule does not hold yet. The first families are older campaigns'.
FAMILIES = [
    ("killed at any point", "a SIGKILL anywhere leaves the table, bundle and registry whole; a re-run applies "
     "each row once; revert restores byte for byte",
     ["integration/test_crash_points.py", "integration/test_cleaning_crash.py", "integration/test_build_crash_points",
      "integration/test_publish_crash_points.py", "integration/test_command_crash_points.py",
      "integration/test_registry_prune.py::test_a_prune_killed"]),
    ("database faults", "a dropped connection or a held lock costs a retry; a read-only role is refused before it "
     "writes", ["integration/test_database_faults.py"]),
    ("CSV shape", "every row of every CSV reader has exactly the header's fields, or the file is refused naming "
     "the row; nothing is padded, shifted or made an index",
     ["integration/test_csv_shape.py", "unit/test_io_properties.py", "integration/test_hostile_values.py",
      "integration/test_bad_input.py::test_train_refuses_bad", "integration/test_bad_input.py::test_predict_refuses"]),
    ("inputs and outputs", "no command writes over one of its inputs (any spelling of the path), and an output it "
     "cannot write is refused before the work", ["integration/test_output_paths.py"]),
    ("keys", "a key is unique by a constraint on that column alone; NULL and non-text keys are refused up front; a "
     "batch holding a key twice, or an update touching other than one row, is rolled back",
     ["integration/test_hostile_tables.py::test_a_key_not", "integration/test_hostile_tables.py::test_an_invalid",
      "integration/test_hostile_tables.py::test_rows_sharing", "integration/test_hostile_tables.py::test_a_unique",
      "integration/test_hostile_tables.py::test_null_keys", "integration/test_hostile_tables.py::test_sqlite_keys",
      "integration/test_hostile_tables.py::test_random_hostile",
      "integration/test_hostile_tables.py::test_clean_refuses_the_reported",
      "integration/test_hostile_tables.py::test_cleaning_the_key"]),
    ("the table's own rules", "a suggestion longer than the output column holds goes to review; a constraint or "
     "trigger that refuses a write rolls its batch back and stops the run with one clear error",
     ["integration/test_hostile_tables.py::test_an_output_column",
      "integration/test_hostile_tables.py::test_a_constraint"]),
    ("identifiers and query text", "table and column names and a pairs query reach SQL and GX as written ('%', "
     "':', quotes, semicolons)",
     ["integration/test_hostile_tables.py::test_percent", "integration/test_cleaning.py",
      "integration/test_sources.py::test_a_query"]),
    ("values that are not text", "a BLOB or bytes that are not UTF-8 in a SQLite text column are left alone and "
     "counted, run after run, and never stop validation",
     ["integration/test_hostile_tables.py::test_values_that", "integration/test_hostile_tables.py::test_validation"]),
    ("databases and tables that are not there", "a mistyped SQLite path, an unknown dialect, a port nobody "
     "listens on, a table or column dropped before a revert: one error line, nothing created",
     ["integration/test_hostile_tables.py::test_commands_refuse", "integration/test_hostile_tables.py::test_revert",
      "integration/test_sources.py::test_a_mistyped"]),
    ("shared files and locks", "every read-modify-write of shared state holds a lock (alias moves; one SQLite file "
     "spelled two ways is one lock)",
     ["integration/test_registry.py::test_concurrent", "integration/test_registry.py::test_a_move_waits",
      "integration/test_registry_cli.py::test_promotes", "integration/test_hostile_tables.py::test_one_sqlite",
      "flows/test_clean_partitions.py"]),
    ("secrets", "a password in a URL reaches the database and nothing else: no record, report, log, message or "
     "Prefect parameter", ["flows/test_retrain_secrets.py", "integration/test_deploy_config.py::test_refused"]),
    ("values read from bundles and the registry", "every value read back is checked for sense before use, not only "
     "for integrity: manifests, vocabularies, known values, alias files, version folders, selectors",
     ["integration/test_bundle.py", "integration/test_bundle_sense.py", "integration/test_registry_cli.py",
      "integration/test_registry.py", "unit/test_no_unpickling.py"]),
    ("values returned unchanged", "what strseq promises to return unchanged comes back byte for byte (NFD too)",
     ["integration/test_unchanged.py"]),
    ("a finished training is kept", "an export refused by the check, or failing, keeps the training; float32 "
     "rounding is not an export bug", ["integration/test_unexported.py"]),
]


def family_of(test: str) -> str:
    """The family a test's cases belong to (the first whose prefix its node id starts with)."""
    test = test.removeprefix("tests/")
    return next((name for name, _, prefixes in FAMILIES if any(test.startswith(p) for p in prefixes)), "other")


def families_table(entries: list[dict]) -> list[str]:
    lines = ["## Families of failure", "", "Each family is a rule the code holds for every case of its kind; "
             "its cases are in the sections below.", "",
             "| family | the rule | cases | failed | rows lost | rows applied twice |", "|---|---|---:|---:|---:|---:|"]
    for name, rule, _ in [*FAMILIES, ("other", "cases of no family above", [])]:
        rows = [e for e in entries if family_of(e["test"]) == name]
        if rows:
            lines.append(f"| {name} | {rule} | {len(rows)} | {sum(e['outcome'] == 'failed' for e in rows)} | "
                         f"{sum(e['rows_lost'] or 0 for e in rows)} | "
                         f"{sum(e['rows_double_applied'] or 0 for e in rows)} |")
    return [*lines, ""]


def _cell(value: object) -> str:
    if value is None:
        return "n/a"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _natural(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def render(entries: list[dict], commit: str, when: str, command: str, campaign: dict | None = None) -> str:
    counts = Counter(e["outcome"] for e in entries)
    lost = sum(e["rows_lost"] or 0 for e in entries)
    double = sum(e["rows_double_applied"] or 0 for e in entries)
    lines = [
        "# Reliability: faults and hostile input tried, and what happened",
        "",
        f"Generated by `{command}` from the test run's ledger (commit {commit}, {when}); do not edit",
        "by hand. Each row is one case a test in `tests/` tried and asserted: what was done, where,",
        "the rows lost or applied twice it measured (n/a where no rows are at stake) and the first line",
        "of the error or warning the user saw (none: nothing to tell; the job carried on).",
        "",
        f"**{len(entries)} cases: {counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed; "
        f"{lost} rows lost, {double} rows applied twice.**",
        "",
    ]
    if campaign:
        lines += [f"Crash points seeded with {campaign['seed']} at scale {campaign['scale']}, "
                  f"{campaign['fuzz_examples']:,} fuzzing examples of the CSV loader (replay: "
                  f"`STRSEQ_CRASH_SEED={campaign['seed']} STRSEQ_CRASH_SCALE={campaign['scale']} "
                  f"STRSEQ_FUZZ_EXAMPLES={campaign['fuzz_examples']}`; longer campaigns: "
                  "`benchmarks/reliability_campaign.py`).", ""]
    lines += families_table(entries)
    areas = [a for a in AREAS if any(e["area"] == a for e in entries)]
    areas += sorted({e["area"] for e in entries} - set(areas))
    for area in areas:
        rows = [e for e in entries if e["area"] == area]
        lines += [f"## {area.capitalize()} ({len(rows)} cases)", "",
                  "| case | backend | rows lost | rows applied twice | error shown | result | test |",
                  "|---|---|---:|---:|---|---|---|"]
        for e in sorted(rows, key=lambda e: (e["backend"], _natural(e["case"]))):
            test = e["test"].split("::", 1)
            where = f"`{test[0].removeprefix('tests/')}::{test[1].split('[')[0]}`" if len(test) == 2 else e["test"]
            cells = [e["case"], e["backend"], e["rows_lost"], e["rows_double_applied"], e["error"] or "none",
                     e["outcome"]]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + f" | {where} |")
        lines.append("")
    return "\n".join(lines)


def run_tests(ledger: Path, pytest_args: list[str], env: dict[str, str] | None = None) -> int:
    """``pytest -m reliability`` writing its ledger to ``ledger``; pytest's exit code."""
    env = {**os.environ, **(env or {}), "STRSEQ_RELIABILITY_LEDGER": str(ledger),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "reliability", "--long", *pytest_args],
                          cwd=ROOT, env=env).returncode


def read_ledger(path: Path) -> tuple[dict | None, list[dict]]:
    """(the campaign's seed, scale and fuzzing examples, the entries) of a ledger a run wrote."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, list):  # a ledger from before the campaign settings were recorded
        return None, data
    return data["campaign"], data["entries"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ledger", type=Path, help="render this ledger instead of running the tests")
    parser.add_argument("--out", type=Path, default=DOC)
    parser.add_argument("pytest_args", nargs="*", help="more arguments for pytest (after --)")
    args = parser.parse_args()
    code = 0
    if args.ledger:
        ledger = args.ledger
    else:
        ledger = Path(tempfile.mkdtemp(prefix="strseq-reliability-")) / "ledger.json"
        code = run_tests(ledger, args.pytest_args)
        if not ledger.exists():
            print(f"the test run wrote no ledger (pytest exit code {code})", file=sys.stderr)
            return code or 1
    campaign, entries = read_ledger(ledger)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(entries, commit, when, "scripts/reliability_report.py", campaign) + "\n",
                        encoding="utf-8")
    failed = sum(e["outcome"] == "failed" for e in entries)
    print(f"wrote {args.out}: {len(entries)} cases, {failed} failed")
    return code or (1 if failed else 0)


if __name__ == "__main__":
    raise SystemExit(main())
