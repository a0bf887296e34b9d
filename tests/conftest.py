"""Shared fixtures: tiny models trained once per session on tiny data (seconds)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Prefect in tests: its own home in a temp folder (never the developer's), no telemetry. Set
# before anything imports prefect (settings are read at import).
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="strseq-test-prefect-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.pop("PREFECT_API_URL", None)
os.environ.setdefault("STRSEQ_GX_DIR", "ephemeral")  # GX stores nothing unless a test names a project folder

from fixtures.data import EXAMPLES, TINY_MODEL, read_csv_pairs  # noqa: E402  (tests/ is on sys.path)
from reliability_ledger import LEDGER, LEDGER_ENV  # noqa: E402

POSTGRES_ENV = "STRSEQ_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _find_postgres() -> str:
    """$STRSEQ_TEST_POSTGRES_URL, or the default address when a server answers there (then set in
    the environment, so every test and the commands they start use it): the README's one test
    command runs the PostgreSQL tests wherever a server is. Returns what the report header says."""
    if os.environ.get(POSTGRES_ENV):
        return f"PostgreSQL tests on ${POSTGRES_ENV}"
    try:
        import psycopg

        psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - no server, no driver, no database: the tests skip
        return f"PostgreSQL tests SKIPPED: nothing answers at {DEFAULT_POSTGRES_URL} ({str(exc).strip()[:120]})"
    os.environ[POSTGRES_ENV] = DEFAULT_POSTGRES_URL
    return f"PostgreSQL tests on {DEFAULT_POSTGRES_URL} (a server answers there)"


POSTGRES_STATUS = _find_postgres()


def pytest_report_header(config):
    return POSTGRES_STATUS


@pytest.fixture
def ledger(request):
    """``ledger(area, case, backend, rows_lost=..., rows_double_applied=..., error=...)``: record a
    fault or hostile-input case for docs/reliability.md (see tests/reliability_ledger.py)."""
    return LEDGER.recorder(request.node.nodeid)


def pytest_addoption(parser):
    parser.addoption("--long", action="store_true",
                     help="also run the tests marked `long` and every crash point (scripts/test.sh --long)")


LONG_SKIP = pytest.mark.skip(reason="long end-to-end test: run with --long (scripts/test.sh --long)")


def pytest_collection_modifyitems(config, items):
    for item in items:  # `pytest -m reliability` runs every test that records into the ledger
        if "ledger" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.reliability)
        if "long" in item.keywords and not config.getoption("--long"):
            item.add_marker(LONG_SKIP)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or report.failed:
        LEDGER.set_outcome(item.nodeid, "failed" if report.failed else "passed")


def pytest_configure(config):
    import campaign  # tests/ is on sys.path

    campaign.QUICK = not config.getoption("--long")
    if os.environ.get(LEDGER_ENV) and (getattr(config.option, "numprocesses", None) or 0):
        raise pytest.UsageError(f"${LEDGER_ENV} is written by one process: run pytest without -n "
                                "(scripts/test.sh: STRSEQ_TEST_WORKERS=0)")


def pytest_sessionfinish(session):
    LEDGER.write()


@pytest.fixture(scope="session", autouse=True)
def single_threaded_torch():
    """Toy tensors gain nothing from threads; on a busy 2-core machine torch's spinning OpenMP
    pool made tiny training ~20x slower. Results do not depend on it. (Subprocesses: OMP_NUM_THREADS.)"""
    try:
        import torch
    except ImportError:  # a torch-free environment: nothing to set
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)



def built_once(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)`` once per test run, shared by the xdist workers (whose session fixtures
    are otherwise built once per worker: the same seeded training twice), under a file lock in
    the run's common temp folder; each worker gets its own copy, so a test that alters its
    bundle alters no other worker's."""
    import shutil

    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    built = shared / "built-once" / name
    built.parent.mkdir(exist_ok=True)
    with FileLock(str(built) + ".lock"):
        if not (built / "done").exists():
            shutil.rmtree(built, ignore_errors=True)  # a build interrupted in an earlier worker
            build(built / "bundle")
            (built / "done").touch()
    if shared == base:
        return built / "bundle"
    out = tmp_path_factory.mktemp("bundles") / name
    shutil.copytree(built / "bundle", out)
    return out


@pytest.fixture(scope="session")
def name_pairs() -> list[tuple[str, str]]:
    return read_csv_pairs(EXAMPLES / "names_pairs.csv")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, name_pairs) -> Path:
    """A real bundle (ONNX graphs, vocab, manifest) from a tiny model trained for a few epochs."""
    from strseq_tasks.learn.build import train_bundle
    from strseq_tasks.learn.training import TrainConfig

    return built_once(tmp_path_factory, "tiny", lambda out: train_bundle(
        name_pairs[:80], out, TrainConfig(max_epochs=3, seed=0), TINY_MODEL, name="tiny", pretrained=None))


@pytest.fixture(scope="session")
def lower_bundle(tmp_path_factory):
    """A tiny bundle that has learnt to lower-case names: it changes upper-case values (the
    cleaning tests need a model that writes something)."""
    from fixtures.data import TINY_MODEL, lowercase_pairs  # tests/ is on sys.path

    from strseq_tasks.learn.build import train_bundle
    from strseq_tasks.learn.training import TrainConfig

    return built_once(tmp_path_factory, "lower", lambda out: train_bundle(
        lowercase_pairs(), out, TrainConfig(max_epochs=8, seed=0), TINY_MODEL, name="lower", pretrained=None))


UPPER_FIRST = ["ANNA", "BORIS", "CLARA", "DAVID", "ELENA", "FELIX", "GRETA", "HUGO", "IRIS", "JONAS", "KARIN",
               "LUKAS", "MARTA", "NILS", "OLGA", "PAUL", "RITA", "SVEN", "TINA", "URS"]
UPPER_LAST = ["BERG", "DAHL", "EKMAN", "FALK", "GRAN", "HOLM", "ISAK", "KROG", "LIND", "MOBERG", "NORD", "OLSEN",
              "PERS", "QUIST", "ROSEN", "SAND", "TELL", "UDD", "VIK", "WALL", "YNGVE", "ZETTER", "ALM", "BJORK", "CARL"]


@pytest.fixture(scope="session")
def upper_names() -> list[str]:
    """500 distinct upper-case names (FIRST LAST), in a seeded order: one layout, many values."""
    import random

    values = [f"{first} {last}" for first in UPPER_FIRST for last in UPPER_LAST]
    random.Random(3).shuffle(values)
    return values


@pytest.fixture(scope="session")
def names_lower_bundle(tmp_path_factory, upper_names) -> Path:
    """A tiny model that lower-cases such names, trained on 150 of them (30 epochs, about 20 s; it
    gets the other 350 right): layout programs must reproduce a model consistent on a layout."""
    from strseq_tasks.learn.build import train_bundle
    from strseq_tasks.learn.training import TrainConfig

    return built_once(tmp_path_factory, "names-lower", lambda out: train_bundle(
        [(v, v.lower()) for v in upper_names[:150]], out, TrainConfig(max_epochs=30, seed=0, precision="fp32"),
        TINY_MODEL, name="names-lower", pretrained=None))


@pytest.fixture(scope="session")
def tiny_model_config() -> dict:
    """``TINY_MODEL`` for tests outside this folder's import path (tests/integration is a package)."""
    return dict(TINY_MODEL)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A real, empty database: a SQLite file, or a fresh schema on the PostgreSQL server named by
    $STRSEQ_TEST_POSTGRES_URL, or found at the default address (skipped where neither answers)."""
    if request.param == "sqlite":
        import sqlite3

        sqlite3.connect(tmp_path / "test.db").close()  # strseq opens existing databases only
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(POSTGRES_STATUS)
    import uuid

    import sqlalchemy as sa

    schema = f"strseq_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    # every connection of the test lands in its own schema
    separator = "&" if "?" in url else "?"
    yield f"{url}{separator}options=-csearch_path%3D{schema}"
    drop_schema(engine, schema)
    engine.dispose()


def drop_schema(engine, schema: str) -> None:
    """Drop a test's schema. A connection the test left idle in a transaction (a failed test's
    open cursor) would block the drop forever and hang the suite: after 20 s of waiting, such
    connections to the database are ended and the drop retried, so the failure shows as one."""
    import sqlalchemy as sa

    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL lock_timeout = '20s'"))
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        return
    except sa.exc.OperationalError:
        pass
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                             "current_database() AND pid <> pg_backend_pid() AND state = 'idle in transaction'"))
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
