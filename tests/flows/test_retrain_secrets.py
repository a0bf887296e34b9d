"""A retrain reading PostgreSQL with a password in the URL: the password reaches the database and
nothing else (registry files, the command's output, `models show`, Prefect's records of the run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from fixtures.data import TINY_SIZES, lowercase_pairs, write_pairs  # tests/ is on sys.path
from integration.cli_harness import ONE_THREAD, run_strseq
from sqlalchemy.engine import make_url

from strseq_tasks.flows.retrain import retrain
from strseq_tasks.jobs.retrain import RetrainParams
from strseq_tasks.serve.registry import Registry

PASSWORD = "S3cret-Pw"
ROLE = "strseq_secret_test"


def _prefect_flow_runs(flow_name: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])))


def _prefect_database() -> list[Path]:
    """The files of the test harness's Prefect database (flow runs, task runs, logs, artifacts, events)."""
    from prefect.settings import get_current_settings

    path = Path(make_url(get_current_settings().server.database.connection_url.get_secret_value()).database)
    return [p for p in path.parent.glob(path.name + "*") if p.is_file()]


def _files_with(root: Path, secret: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.fixture(scope="module")
def secret_urls():
    """Two URLs of a pairs table that PostgreSQL role ROLE, whose password is PASSWORD, may read:
    the password in the user part, and as a query parameter."""
    admin_url = os.environ.get("STRSEQ_TEST_POSTGRES_URL")
    if not admin_url:
        pytest.skip("STRSEQ_TEST_POSTGRES_URL is not set")
    schema = f"strseq_secret_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url)
    with admin.begin() as conn:
        if not conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": ROLE}).scalar():
            conn.execute(sa.text(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'"))
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        conn.execute(sa.text(f'CREATE TABLE "{schema}".pairs (id serial PRIMARY KEY, input text, target text)'))
        conn.execute(sa.text(f'INSERT INTO "{schema}".pairs (input, target) VALUES (:a, :b)'),
                     [{"a": a, "b": b} for a, b in lowercase_pairs()])
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO {ROLE}'))
        conn.execute(sa.text(f'GRANT SELECT ON "{schema}".pairs TO {ROLE}'))
    base = make_url(admin_url).set(username=ROLE, query={"options": f"-csearch_path={schema}"})
    in_user = base.set(password=PASSWORD).render_as_string(hide_password=False)
    in_query = base.update_query_dict({"password": PASSWORD}).render_as_string(hide_password=False)
    yield in_user, in_query
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        conn.execute(sa.text(f"DROP ROLE IF EXISTS {ROLE}"))
    admin.dispose()


def test_strseq_retrain_with_a_password_in_the_url_writes_and_prints_it_nowhere(secret_urls, tmp_path, ledger):
    from prefect.settings import get_current_settings

    in_user, in_query = secret_urls
    assert PASSWORD in in_user and PASSWORD in in_query
    registry = tmp_path / "registry"
    # the harness's API, so that what Prefect stored of the run can be read back
    env = {**os.environ, **ONE_THREAD, "PYTHONIOENCODING": "utf-8",
           "PREFECT_API_URL": get_current_settings().api.url}
    proc = subprocess.run(
        [sys.executable, "-m", "strseq_tasks.cli", "retrain", "--pairs", in_user, "--pairs-table", "pairs",
         "--adapt-on", in_query, "--adapt-table", "pairs", "--adapt-minutes", "0.02", "--registry", registry,
         "--name", "lower", "--max-epochs", "1", "--precision", "fp32", "--min-exact-match", "0", "--max-harm", "1"],
        capture_output=True, text=True, encoding="utf-8", env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = [run_strseq("models", "show", "--registry", registry, "--name", "lower", *flags)
             for flags in ([], ["--json"])]
    assert all(p.returncode == 0 for p in shown)
    runs = [r for r in _prefect_flow_runs("strseq-retrain")
            if r.parameters.get("params", {}).get("registry") == str(registry)]
    assert len(runs) == 1, [r.parameters for r in _prefect_flow_runs("strseq-retrain")]
    parameters = json.dumps(runs[0].parameters)
    leaks = {"registry files": _files_with(registry, PASSWORD),
             "strseq retrain output": [s for s in ("stdout", "stderr") if PASSWORD in getattr(proc, s)],
             "strseq models show": [" ".join(p.args[3:]) for p in shown if PASSWORD in p.stdout + p.stderr],
             "Prefect flow-run parameters": [parameters] if PASSWORD in parameters else [],
             "Prefect's database": [str(p) for p in _prefect_database() if PASSWORD.encode() in p.read_bytes()]}
    ledger("hostile input", "`strseq retrain` from PostgreSQL with the password in the URL (user part and "
           "?password=): registry files, output, models show and Prefect's records searched for it",
           "postgresql", error="; ".join(f"{k}: {v}" for k, v in leaks.items() if v))
    assert not any(leaks.values()), leaks
    assert any(f"{ROLE}:***@".encode() in p.read_bytes() for p in _prefect_database())  # the right database
    params = runs[0].parameters["params"]  # masked, not dropped: the run's record still says where from
    assert params["pairs"] == in_user.replace(PASSWORD, "***") and "password=***" in params["adapt_on"]
    record = Registry(registry).publication("lower", 1)
    assert f"{ROLE}:***@" in record["data"]["source"] and record["data"]["rows"] == len(lowercase_pairs())
    assert record["params"]["pairs"] == params["pairs"]


def test_the_flow_gets_the_real_url_and_prefect_the_masked_one(tmp_path):
    """A registry URL with a password (fsspec takes ftp://user:password@host; memory:// here): the
    run publishes to the registry named, while its parameters in Prefect show it masked."""
    url = f"memory://key:{PASSWORD}@bucket-{uuid.uuid4().hex[:8]}/models"
    pairs = write_pairs(tmp_path / "pairs.csv", lowercase_pairs())
    result = retrain(RetrainParams(pairs=str(pairs), registry=url, name="lower", max_epochs=1,
                                   model_sizes=TINY_SIZES, gates={"min_exact_match": 0, "max_harm": 1}))
    assert Registry(url).versions("lower") == [result["version"]] == [1]
    masked = url.replace(PASSWORD, "***")
    assert not Registry(masked).fs.exists(Registry(masked).root)  # nothing went to the masked name
    runs = [r for r in _prefect_flow_runs("strseq-retrain") if r.parameters["params"]["registry"] == masked]
    assert len(runs) == 1 and PASSWORD not in json.dumps(runs[0].parameters)
    record = Registry(url).publication("lower", 1)
    assert record["params"]["registry"] == masked and PASSWORD not in json.dumps(record)


def test_models_show_masks_records_written_before_masking(tmp_path, tiny_bundle):
    """A version published by an older strseq kept the URL as given: shown, it is masked."""
    registry = Registry(tmp_path / "registry")
    registry.publish("names", tiny_bundle)
    folder = tmp_path / "registry" / "names" / "versions" / "1"
    url = f"postgresql+psycopg://etl:{PASSWORD}@db/crm"
    record = json.loads((folder / "publication.json").read_text())
    (folder / "publication.json").write_text(json.dumps({**record, "params": {"pairs": url}}))
    (folder / "report.md").write_text(f"## Retraining\n\nPairs: 80 rows from {url} table 'pairs'\n")
    for flags in ([], ["--json"]):
        shown = run_strseq("models", "show", "--registry", registry.url, "--name", "names", "--model-version", "1",
                           *flags)
        assert shown.returncode == 0, shown.stderr
        assert PASSWORD not in shown.stdout + shown.stderr and "etl:***@db" in shown.stdout
