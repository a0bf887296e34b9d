"""Layout programs kept between cleaning runs (``strseq_programs``, ``jobs/program_store.py``): a
nightly run over a few new rows starts with the programs the first full run read and verified."""

from __future__ import annotations

import json

import sqlalchemy as sa
from fixtures.tables import people
from integration.cli_harness import run_strseq  # tests/ is on sys.path

from strseq_tasks.data.db import PROGRAMS
from strseq_tasks.flows.clean import clean
from strseq_tasks.jobs.clean_params import CleanParams


def _table(url: str, rows: list[tuple[int, str]]) -> sa.Engine:
    engine = sa.create_engine(url)
    people(engine, rows)
    return engine


def test_a_nightly_run_starts_with_the_programs_earlier_runs_verified(database_url, names_lower_bundle, upper_names,
                                                                   harness_api):
    engine = _table(database_url, list(enumerate(upper_names[:470])))
    params = CleanParams(db=database_url, table="people", key="id", column="name", model=str(names_lower_bundle),
                         create_output_column=True, threshold=0.0)
    dry = clean(params.model_copy(update={"dry_run": True}))
    assert dry["by_program"] > 300 and not sa.inspect(engine).has_table(PROGRAMS)  # a dry run writes nothing
    first = clean(params)
    assert first["by_program"] > 300
    with engine.connect() as conn:
        stored = conn.execute(sa.text(f"SELECT model_sha, shape, status, program FROM {PROGRAMS}")).all()
    assert [(r.shape, r.status) for r in stored] == [("AA AA", "accepted")]
    assert json.loads(stored[0].program)["parts"][0] == ["lower", 0, ""]
    with engine.begin() as conn:  # the night's new rows: 30, too few to read a program from
        conn.execute(sa.text("INSERT INTO people (id, name) VALUES (:id, :name)"),
                     [{"id": i, "name": n} for i, n in enumerate(upper_names[470:], start=470)])
    # the next night is a new process: what it knows of programs is what the database kept
    nightly = run_strseq("clean", "--db", database_url, "--table", "people", "--key", "id", "--column", "name",
                         "--model", names_lower_bundle, "--threshold", "0", env=harness_api)
    assert nightly.returncode == 0, nightly.stderr
    assert "500 rows read, 30 changed" in nightly.stdout and "; 30 answered by layout programs" in nightly.stdout
    assert "layout programs: 1 kept from earlier runs of this model" in nightly.stderr
    with engine.connect() as conn:
        values = dict(conn.execute(sa.text("SELECT name, name_clean FROM people WHERE id >= 470")).all())
    assert values == {n: n.lower() for n in upper_names[470:]}
    unaided = clean(params.model_copy(update={"no_programs": True, "output_column": "other"}))
    assert unaided["changed"] == 500 and unaided["by_program"] == 0
    engine.dispose()
