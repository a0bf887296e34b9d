"""Flow tests: one Prefect test harness (a temporary API on SQLite) for the whole session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    from strseq_tasks.runner.server_guard import guard_temporary_server

    guard_temporary_server()  # a pytest killed with SIGKILL (a CI timeout) leaves no server behind
    with prefect_test_harness(server_startup_timeout=120):
        yield
