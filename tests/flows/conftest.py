"""Flow tests: one Prefect test harness (a temporary API on SQLite) for the whole session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def lower_bundle(tmp_path_factory):
    """A tiny bundle that has learnt to lower-case names: it changes upper-case values (the
    cleaning tests need a model that writes something)."""
    from fixtures.data import TINY_MODEL, lowercase_pairs  # tests/ is on sys.path

    from strseq_tasks.pipeline import train_bundle
    from strseq_tasks.training import TrainConfig

    out = tmp_path_factory.mktemp("bundles") / "lower"
    train_bundle(lowercase_pairs(), out, TrainConfig(max_epochs=8, seed=0), TINY_MODEL, name="lower", pretrained=None)
    return out
