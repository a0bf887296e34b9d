"""Prefect retries what may work in a moment, and nothing a person must fix first."""

from __future__ import annotations

import pytest
from prefect import flow, task

from strseq_tasks.data.db import DatabaseUnavailable
from strseq_tasks.data.files import InputFileError
from strseq_tasks.serve.refs import RegistryError
from strseq_tasks.tasks import worth_retrying


def _attempts(error: BaseException) -> int:
    calls = []

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=worth_retrying)
    def fails() -> None:
        calls.append(1)
        raise error

    @flow
    def run() -> None:
        fails()

    with pytest.raises(type(error)):
        run()
    return len(calls)


@pytest.mark.parametrize("error", [RegistryError("model 'names' has no alias 'prodution'"),
                                   InputFileError("pairs.csv", "no such file")],
                         ids=["misspelled alias", "missing pairs file"])
def test_a_mistake_is_tried_once(error):
    assert _attempts(error) == 1


@pytest.mark.parametrize("error", [DatabaseUnavailable("cannot connect to postgresql://db/x"),
                                   ConnectionResetError("connection reset by peer")],
                         ids=["database did not answer", "network error"])
def test_what_may_pass_in_a_moment_is_retried(error):
    assert _attempts(error) == 3


def test_the_flows_tasks_that_retry_use_the_condition():
    from strseq_tasks.flows import clean, retrain_tasks

    retrying = [t for module in (clean, retrain_tasks) for t in vars(module).values()
                if getattr(t, "retries", 0) and hasattr(t, "retry_condition_fn")]
    assert {t.name for t in retrying} == {"load-model", "load-pairs", "load-decisions", "load-adapt-strings",
                                          "find-unchanged", "fetch-production", "publish", "promote", "review-queue"}
    assert all(t.retry_condition_fn is worth_retrying for t in retrying)
