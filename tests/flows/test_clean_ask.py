"""The Prefect-native review: the cleaning flow pauses on its questions, a person answers in
Prefect's form (here, through Prefect's API as the UI does), and the answers are decisions."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from fixtures.tables import people

from strseq_tasks.data.db import AUDIT, DECISIONS
from strseq_tasks.flows.clean import clean
from strseq_tasks.jobs.clean_params import CleanParams

NAMES = ["Ann Lee", "BOB RAY", "Cy Young", "DEE DEE", "Eve Adams", "FRANK OCEAN", "Gil Scott", "HAL JORDAN",
         "Ida Wells", "JOHN DOE"]  # the lower-case model changes most


@pytest.fixture
def table(tmp_path):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = sa.create_engine(url)
    people(engine, enumerate(NAMES, start=1))
    yield url, engine
    engine.dispose()


def paused_run(started: float, timeout: float = 120):
    """The flow run paused for input, once it is."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=["PAUSED"]))))
        runs = [r for r in runs if r.state.state_details.run_input_keyset]
        if runs:
            return runs[0]
        time.sleep(0.5)
    pytest.fail("the cleaning flow never paused for input")


def in_thread(params: CleanParams) -> tuple[threading.Thread, dict]:
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(clean(params)), daemon=True)
    thread.start()
    return thread, result


def test_the_flow_pauses_on_its_questions_and_the_answers_become_decisions(table, lower_bundle):
    from prefect.flow_runs import resume_flow_run

    url, engine = table
    params = CleanParams(db=url, table="people", key="id", column="name", model=str(lower_bundle),
                         create_output_column=True, threshold=1.0, ask_in_ui=3, ask_timeout=300)
    thread, result = in_thread(params)  # threshold 1.0: every change is a question
    run = paused_run(time.monotonic())
    schema = _schema(run)
    questions = sorted(k for k in schema["properties"] if k.startswith("q") and not k.endswith("_value"))
    assert len(questions) == 3 and "reviewer" in schema["properties"]
    first, second, third = questions
    resume_flow_run(run.id, run_input={"reviewer": "ana", first: "approve", second: "reject",
                                       f"{third}_value": "Right Value"})
    thread.join(timeout=120)
    assert not thread.is_alive() and result["asked"] == 3 and result["answered"] == 3
    with engine.connect() as conn:
        decided = {r.review_id: (r.action, r.decided_by) for r in conn.execute(sa.text(f"SELECT * FROM {DECISIONS}"))}
        written = conn.execute(sa.text(f"SELECT count(*) FROM {AUDIT} WHERE model_name = 'person'")).scalar()
    assert sorted(decided.values()) == [("approve", "ana"), ("edit", "ana"), ("reject", "ana")]
    assert {f"q{i}" for i in decided} == set(questions) and written == 2  # a rejection writes nothing


def test_nobody_answering_in_time_leaves_the_questions_in_the_queue(table, lower_bundle):
    url, engine = table
    params = CleanParams(db=url, table="people", key="id", column="name", model=str(lower_bundle),
                         create_output_column=True, threshold=1.0, ask_in_ui=2, ask_timeout=3)
    result = clean(params)
    assert result["asked"] == 2 and result["answered"] is None and result["review"] >= 2
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM strseq_review WHERE status = 'open'")).scalar() >= 2
        assert conn.execute(sa.text(f"SELECT count(*) FROM {DECISIONS}")).scalar() == 0


def _schema(run) -> dict:
    """The form's JSON schema, as Prefect's UI reads it."""
    import json

    from prefect import get_client
    from prefect.input.run_input import keyset_from_paused_state

    keyset = keyset_from_paused_state(run.state)
    with get_client(sync_client=True) as client:
        stored = client.read_flow_run_input(run.id, keyset["schema"])
    return json.loads(stored)


def test_the_form_says_what_each_question_stands_for_and_what_set_it_apart():
    from strseq_tasks.runner.ask import question_form

    rows = [{"id": 7, "key": "3", "value": "Loretto Ó Scanaill", "suggestion": "Loretto Scanaill", "confidence": 0.4,
             "signals": "character no pair held: 'Ó'", "stands_for": 3, "group": "Aa A Aa"},
            {"id": 8, "key": "4", "value": "x" * 300, "suggestion": None, "confidence": 0.0, "signals": None}]
    fields = question_form(rows).model_fields
    assert fields["q7"].description == ("suggested 'Loretto Scanaill' at confidence 0.400; 2 more like it (Aa A Aa); "
                                        "unlike the pairs: character no pair held: 'Ó'")
    assert fields["q8"].description == "suggested (too long for the model) at confidence 0.000"
