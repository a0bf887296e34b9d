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


@pytest.fixture(scope="session")
def harness_api(prefect_harness) -> dict[str, str]:
    """The environment that sends a ``strseq`` subprocess's flow runs to this session's harness
    (``run_strseq(..., env=harness_api)``). Commands run without it start Prefect's temporary local
    server, as on a laptop: the first CLI retrain of test_cli_retrain.py and the demo do."""
    from prefect.settings import get_current_settings

    return {"PREFECT_API_URL": get_current_settings().api.url}
