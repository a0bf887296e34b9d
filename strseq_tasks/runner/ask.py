"""Ask a person in Prefect's UI: a cleaning run pauses on its questions and waits for answers.

For teams that live in Prefect's UI rather than in ``strseq review``: after a run, the cleaning
flow (``CleanParams.ask_in_ui``) pauses with a form of up to N of the run's questions, most
useful first (``review_queue.teaching_order``). Per question the form offers approve, reject or
a right value typed in; the answers are applied by ``jobs.decide`` like any decision (audited,
one revertible run, recorded as the form's reviewer's). Questions left on "skip", or all of them
when nobody answers within the timeout, stay in ``strseq_review``.
"""

from __future__ import annotations

import logging
from typing import Literal

import sqlalchemy as sa
from pydantic import Field, create_model

from strseq_tasks.jobs.decide import Decided, Decision, decide
from strseq_tasks.jobs.review_queue import QueueFilter, like_it, queue

log = logging.getLogger("strseq.review")
Answer = Literal["skip", "approve", "reject"]


def question_form(rows: list[dict]):
    """A ``RunInput`` with, per question, its answer and an optional right value (which wins)."""
    from prefect.input import RunInput

    fields: dict = {"reviewer": (str, Field("", description="Your name, recorded with each decision."))}
    for row in rows:
        like = f"; {like_it(row)}" if like_it(row) else ""
        like += f"; unlike the pairs: {row['signals']}" if row.get("signals") else ""
        shown = "(too long for the model)" if row["suggestion"] is None else repr(row["suggestion"])
        fields[f"q{row['id']}"] = (Answer, Field("skip", title=f"#{row['id']} key {row['key']}: {row['value']!r}",
                                                 description=f"suggested {shown} at confidence "
                                                             f"{row['confidence'] or 0:.3f}{like}"))
        fields[f"q{row['id']}_value"] = (str, Field("", title=f"#{row['id']} the right value (instead)",
                                                    description="Leave empty unless the suggestion is wrong."))
    return create_model("StrseqQuestions", __base__=RunInput, **fields)


def answers(form, rows: list[dict]) -> list[Decision]:
    """The decisions a filled form holds: a typed value is an edit; skipped questions are none."""
    out = []
    for row in rows:
        value, answer = getattr(form, f"q{row['id']}_value").strip(), getattr(form, f"q{row['id']}")
        if value:
            out.append(Decision(row["id"], "edit", value))
        elif answer != "skip":
            out.append(Decision(row["id"], answer))
    return out


def ask_in_ui(engine: sa.Engine, run_id: str, limit: int, timeout: int, schema: str | None = None
              ) -> tuple[int, Decided | None]:
    """Pause the current flow run on up to ``limit`` of ``run_id``'s open questions; apply the
    answers. Returns (questions asked, what was decided; None if nobody answered in time)."""
    from prefect.exceptions import FlowPauseTimeout
    from prefect.flow_runs import pause_flow_run

    _, rows = queue(engine, QueueFilter(run_id=run_id), schema, limit=limit)
    if not rows:
        return 0, None
    log.info("pausing for a person: %d question(s) of run %s in Prefect's UI (resume the flow run with the "
             "form; %d s)", len(rows), run_id, timeout)
    try:
        form = pause_flow_run(wait_for_input=question_form(rows), timeout=timeout, poll_interval=2)
    except FlowPauseTimeout:
        log.warning("nobody answered within %d s: the %d question(s) stay in strseq_review", timeout, len(rows))
        return len(rows), None
    decisions = answers(form, rows)
    if not decisions:
        return len(rows), Decided(False)
    return len(rows), decide(engine, decisions, form.reviewer.strip() or "Prefect UI", "answered in Prefect's UI",
                             schema)
