"""`strseq demo`: the demo database as a newcomer gets it, and the command end to end (tiny
models: the plumbing of retrain -> publish -> promote -> clean -> report, not the accuracy)."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from integration.cli_harness import run_strseq  # tests/ is on sys.path

from strseq_tasks.demo.crm import CUSTOMERS, FIELDS, PAIRS, build_demo_database, db_url, pairs_query


def test_the_demo_database_holds_dirty_records_and_curated_pairs_that_never_give_the_answer(tmp_path):
    counts = build_demo_database(tmp_path, rows=120, pairs=50, seed=3)
    assert counts == {CUSTOMERS: 120, PAIRS: 150}
    engine = sa.create_engine(db_url(tmp_path))
    with engine.connect() as conn:
        columns = [c["name"] for c in sa.inspect(conn).get_columns(CUSTOMERS)]
        assert columns == ["id", "name", "birth_date", "phone"]
        for field in FIELDS:
            pairs = conn.execute(sa.text(pairs_query(field))).fetchall()
            values = conn.execute(sa.text(f"SELECT {field.column} FROM {CUSTOMERS}")).scalars().all()
            assert len(pairs) == 50
            assert any(v in (None, "") for v in values)  # a few missing values, to be skipped
            targets = {t for _, t in pairs}
            dirty = [v for v in values if v]
            assert len(set(dirty)) > 0.9 * len(dirty)
            # the table's clean values are never the pairs' targets: cleaning it is generalization
            assert not targets & set(dirty)
    engine.dispose()


@pytest.mark.long  # ~80 s: scripts/test.sh --long; scripts/demo.sh runs the real demo
def test_strseq_demo_end_to_end(tmp_path):
    folder = tmp_path / "demo"
    done = run_strseq("demo", "--out", folder, "--rows", 60, "--pairs-per-field", 40, "--max-minutes", 0.2,
                      "--smoke", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for field in FIELDS:
        assert f"{field.model} version 1 promoted to production" in out
    assert "Where to look" in out and "strseq revert --db" in out
    engine = sa.create_engine(db_url(folder))
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT status FROM strseq_runs WHERE model_name != 'person' ORDER BY started"))
        runs = runs.scalars().all()
        handled = conn.execute(sa.text("SELECT count(DISTINCT table_name || column_name || key) FROM strseq_processed"))
        handled = handled.scalar()
        decided = conn.execute(sa.text("SELECT count(*) FROM strseq_decisions WHERE decided_by = 'demo reviewer'"))
        decided = decided.scalar()
        open_after = conn.execute(sa.text("SELECT count(*) FROM strseq_review WHERE status = 'open'")).scalar()
        columns = {c["name"] for c in sa.inspect(conn).get_columns(CUSTOMERS)}
    engine.dispose()
    # every non-empty value of every column was handled (tiny models mostly keep their input), twice
    # over: the cleaning runs, then again after the human loop's retrain
    assert runs == ["completed"] * 6 and 0.9 * 3 * 60 <= handled < 3 * 60
    loop = out[out.index("== 4/4 the human loop"):]
    answered = sum(int(line.split()[1]) for line in loop.splitlines() if line.startswith("  ") and
                   line.split()[0] in {f.column for f in FIELDS} and line.split()[1].isdigit())
    assert decided == answered and "open questions before -> after" in loop
    assert open_after <= sum(int(x) for x in re.findall(r"(\d+) -> \d+", loop))  # answered questions closed
    assert {f"{f.column}_clean" for f in FIELDS} <= columns
    again = run_strseq("demo", "--out", folder, "--rows", 60, "--max-minutes", 0.2, "--smoke")
    assert again.returncode == 2 and "--force" in again.stderr  # an existing demo is not overwritten silently
    (folder / "notes.txt").write_text("mine")
    forced = run_strseq("demo", "--out", folder, "--force", "--smoke")
    assert forced.returncode == 2 and "not touching it" in forced.stderr and (folder / "notes.txt").exists()
