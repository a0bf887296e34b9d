"""Layout programs in the runtime (``Normalizer``, ``strseq predict``, ``strseq clean``): on a
column with many values per layout, verified programs answer most rows, and every answer is the
one the model gives that row itself."""

from __future__ import annotations

from strseq_tasks.serve.runtime import BY_MODEL, BY_PROGRAM, Normalizer
from strseq_tasks.serve.workers import normalize_parallel

from .cli_harness import read_csv_raw, run_strseq, write_csv


def test_programs_answer_most_rows_with_the_models_own_outputs(names_lower_bundle, upper_names):
    model = Normalizer(names_lower_bundle, threads=1, programs=False)
    served = Normalizer(names_lower_bundle, threads=1)
    own = model.normalize(upper_names)
    got = served.normalize(upper_names)
    by_program = [i for i, p in enumerate(got) if p.by == BY_PROGRAM]
    assert len(by_program) > len(upper_names) // 2
    assert all(p.by == BY_MODEL for p in own)
    assert [got[i].text for i in by_program] == [own[i].text for i in by_program]
    assert [p.text for p in got] == [v.lower() for v in upper_names]
    assert all(0 < got[i].confidence <= 1 for i in by_program)
    summary = served.programs.summary()
    assert summary["programs"] >= 1 and summary["covered"] == len(by_program)
    assert [s["program"] for s in summary["shown"]] == ["lower($1) copy($2) lower($3)"]


def test_programs_are_learned_once_in_the_parent_of_worker_processes(names_lower_bundle, upper_names):
    one = Normalizer(names_lower_bundle, threads=1).normalize(upper_names)
    many = normalize_parallel(Normalizer(names_lower_bundle, threads=1), upper_names, workers=2)
    assert [(p.text, p.by) for p in many] == [(p.text, p.by) for p in one]


def test_a_column_the_programs_cover_is_decoded_in_one_process_under_auto(names_lower_bundle, upper_names):
    normalizer = Normalizer(names_lower_bundle, threads=1)
    got = normalize_parallel(normalizer, upper_names, workers=2, auto=True)
    assert [p.text for p in got] == [p.text for p in Normalizer(names_lower_bundle, threads=1).normalize(upper_names)]


def test_predict_logs_the_programs_and_no_programs_turns_them_off(names_lower_bundle, upper_names, tmp_path):
    source = tmp_path / "in.csv"
    write_csv(source, ["input"], [(v,) for v in upper_names])
    done = run_strseq("predict", "--model", names_lower_bundle, "--input", source, "--out", tmp_path / "a.csv")
    assert done.returncode == 0, done.stderr
    assert "layout programs:" in done.stderr and "lower($1)" in done.stderr
    done = run_strseq("predict", "--model", names_lower_bundle, "--input", source, "--out", tmp_path / "b.csv",
                      "--no-programs")
    assert done.returncode == 0, done.stderr
    assert "layout programs:" not in done.stderr
    (_, with_programs), (_, without) = read_csv_raw(tmp_path / "a.csv"), read_csv_raw(tmp_path / "b.csv")
    assert [r[1] for r in with_programs] == [r[1] for r in without]  # the same predictions


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
