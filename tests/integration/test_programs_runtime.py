"""Layout programs in the runtime (``Normalizer``, ``strseq predict``, ``strseq clean``): on a
column with many values per layout, verified programs answer most rows, and every answer is the
one the model gives that row itself."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import sqlalchemy as sa

from strseq_tasks.serve.runtime import BY_MODEL, BY_PROGRAM, Normalizer
from strseq_tasks.serve.workers import normalize_parallel

from .cli_harness import read_csv_raw, run_strseq, write_csv

FIRST = ["ANNA", "BORIS", "CLARA", "DAVID", "ELENA", "FELIX", "GRETA", "HUGO", "IRIS", "JONAS", "KARIN", "LUKAS",
         "MARTA", "NILS", "OLGA", "PAUL", "RITA", "SVEN", "TINA", "URS"]
LAST = ["BERG", "DAHL", "EKMAN", "FALK", "GRAN", "HOLM", "ISAK", "KROG", "LIND", "MOBERG", "NORD", "OLSEN",
        "PERS", "QUIST", "ROSEN", "SAND", "TELL", "UDD", "VIK", "WALL", "YNGVE", "ZETTER", "ALM", "BJORK", "CARL"]


@pytest.fixture(scope="module")
def column() -> list[str]:
    """500 distinct upper-case names (FIRST LAST), in a seeded order."""
    values = [f"{first} {last}" for first in FIRST for last in LAST]
    random.Random(3).shuffle(values)
    return values


@pytest.fixture(scope="module")
def lower_bundle(tmp_path_factory, column) -> Path:
    """A tiny model that lower-cases such names, trained on 150 of them (30 epochs, about 20 s; it
    gets the other 350 right): the programs must reproduce a model that is consistent on a layout."""
    from fixtures.data import TINY_MODEL

    from strseq_tasks.learn.build import train_bundle
    from strseq_tasks.learn.training import TrainConfig

    out = tmp_path_factory.mktemp("bundles") / "names-lower"
    train_bundle([(v, v.lower()) for v in column[:150]], out, TrainConfig(max_epochs=30, seed=0, precision="fp32"),
                 TINY_MODEL, name="names-lower", pretrained=None)
    return out


def test_programs_answer_most_rows_with_the_models_own_outputs(lower_bundle, column):
    model = Normalizer(lower_bundle, threads=1, programs=False)
    served = Normalizer(lower_bundle, threads=1)
    own = model.normalize(column)
    got = served.normalize(column)
    by_program = [i for i, p in enumerate(got) if p.by == BY_PROGRAM]
    assert len(by_program) > len(column) // 2
    assert all(p.by == BY_MODEL for p in own)
    assert [got[i].text for i in by_program] == [own[i].text for i in by_program]
    assert [p.text for p in got] == [v.lower() for v in column]
    assert all(0 < got[i].confidence <= 1 for i in by_program)
    summary = served.programs.summary()
    assert summary["programs"] >= 1 and summary["covered"] == len(by_program)
    assert [s["program"] for s in summary["shown"]] == ["lower($1) copy($2) lower($3)"]


def test_programs_are_learned_once_in_the_parent_of_worker_processes(lower_bundle, column):
    one = Normalizer(lower_bundle, threads=1).normalize(column)
    many = normalize_parallel(Normalizer(lower_bundle, threads=1), column, workers=2)
    assert [(p.text, p.by) for p in many] == [(p.text, p.by) for p in one]


def test_a_column_the_programs_cover_is_decoded_in_one_process_under_auto(lower_bundle, column):
    normalizer = Normalizer(lower_bundle, threads=1)
    got = normalize_parallel(normalizer, column, workers=2, auto=True)
    assert [p.text for p in got] == [p.text for p in Normalizer(lower_bundle, threads=1).normalize(column)]


def test_predict_logs_the_programs_and_no_programs_turns_them_off(lower_bundle, column, tmp_path):
    source = tmp_path / "in.csv"
    write_csv(source, ["input"], [(v,) for v in column])
    done = run_strseq("predict", "--model", lower_bundle, "--input", source, "--out", tmp_path / "a.csv")
    assert done.returncode == 0, done.stderr
    assert "layout programs:" in done.stderr and "lower($1)" in done.stderr
    done = run_strseq("predict", "--model", lower_bundle, "--input", source, "--out", tmp_path / "b.csv",
                      "--no-programs")
    assert done.returncode == 0, done.stderr
    assert "layout programs:" not in done.stderr
    (_, with_programs), (_, without) = read_csv_raw(tmp_path / "a.csv"), read_csv_raw(tmp_path / "b.csv")
    assert [r[1] for r in with_programs] == [r[1] for r in without]  # the same predictions


def test_clean_reports_the_rows_programs_answered(lower_bundle, column, tmp_path):
    url = f"sqlite:///{tmp_path / 'people.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(sa.text("INSERT INTO people (id, name) VALUES (:id, :name)"),
                     [{"id": i, "name": v} for i, v in enumerate(column)])
    engine.dispose()
    done = run_strseq("clean", "--db", url, "--table", "people", "--key", "id", "--column", "name", "--model",
                      lower_bundle, "--create-output-column", "--threshold", "0")
    assert done.returncode == 0, done.stderr
    answered = int(done.stdout.split(" answered by layout programs")[0].rsplit(" ", 1)[-1])
    assert answered > len(column) // 2


def test_the_run_report_shows_the_programs_once_however_many_partitions_shared_them():
    from strseq_tasks.jobs.clean_params import CleanParams
    from strseq_tasks.jobs.clean_report import ModelIdentity, RunReport, clean_report_markdown

    params = CleanParams(db="sqlite:///x.db", table="people", key="id", column="name", model="models/names")
    shown = [{"shape": "AA AA", "program": "lower($1) copy($2) lower($3)", "covered": 40, "status": "accepted"}]
    report, partition = RunReport("r1", False, rows_read=100, by_program=60), RunReport("r1", False)
    report.programs, partition.programs = list(shown), [{**shown[0], "covered": 55}]
    report.add(partition)
    text = clean_report_markdown(params, ModelIdentity("names", 3, "ab" * 32), report)
    assert "### Layout programs: 60 of the rows read were answered by one" in text
    assert text.count("lower($1) copy($2) lower($3)") == 1 and "| 55 |" in text
