"""The cleaning flow and `strseq clean|review|revert` on real SQLite and PostgreSQL tables."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from integration.cli_harness import run_strseq  # tests/ is on sys.path
from prefect.artifacts import Artifact

from strseq_tasks.data.db import AUDIT
from strseq_tasks.flows.clean import clean
from strseq_tasks.jobs.clean_params import CleanParams

NAMES = ["JOHN SMITH", "mary jones", None, "", "Ann Lee", "dr. peter pan", "bob o'neil", "  "]


def make_table(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    customers = sa.Table("customers", meta, sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.Text))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(customers.insert(), [{"id": i, "name": n} for i, n in enumerate(NAMES, start=1)])
    return engine


def dump(engine):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text("SELECT * FROM customers ORDER BY id"))]


def test_the_flow_cleans_into_an_output_column_and_a_rerun_changes_nothing(database_url, tiny_bundle):
    engine = make_table(database_url)
    params = CleanParams(db=database_url, table="customers", key="id", column="name", model=str(tiny_bundle),
                         create_output_column=True, threshold=0.0, batch_size=3)
    dry = clean(params.model_copy(update={"dry_run": True}))
    assert dump(engine) == [(i, n) for i, n in enumerate(NAMES, start=1)]  # not even the column was added
    first = clean(params)
    assert first["rows_read"] == 8 and first["skipped"] == 3
    assert first["changed"] + first["unchanged"] == 5 == dry["changed"] + dry["unchanged"]
    rows = dump(engine)
    assert [r[1] for r in rows] == NAMES  # the input column is untouched
    assert sum(r[2] is not None for r in rows) == first["changed"]
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {AUDIT}")).scalar() == first["changed"]
    assert "customers.name -> name_clean" in Artifact.get("clean-customers-name").data
    second = clean(params)
    assert second["changed"] == 0 and second["already_done"] == 5 and dump(engine) == rows
    engine.dispose()


def test_cli_clean_review_revert(tmp_path, tiny_bundle, harness_api):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = make_table(url)
    before = dump(engine)
    proc = run_strseq("clean", "--db", url, "--table", "customers", "--key", "id", "--column", "name",
                      "--model", tiny_bundle, "--in-place", "--threshold", "0.5", "--quiet", env=harness_api)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = proc.stdout.split("run ", 1)[1].split(":", 1)[0]
    # --quiet: the summary on stdout, and no info line from strseq or Prefect's flow and task runs
    assert "INFO" not in proc.stderr and "Finished in state" not in proc.stderr, proc.stderr[-3000:]
    review = run_strseq("review", "list", "--db", url)
    assert review.returncode == 0 and "to review" in review.stdout
    reverted = run_strseq("revert", "--db", url, "--run-id", run_id, env=harness_api)
    assert reverted.returncode == 0 and f"run {run_id} reverted" in reverted.stdout
    assert dump(engine) == before
    again = run_strseq("revert", "--db", url, "--run-id", run_id)
    assert again.returncode == 2 and "already reverted" in again.stderr
    engine.dispose()


def test_cli_clean_refuses_unknown_tables_and_columns(tmp_path, tiny_bundle):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    make_table(url).dispose()
    for args, message in ((["--table", "nope", "--column", "name"], "no table 'nope'"),
                          (["--table", "customers", "--column", "email"], "no text column 'email'")):
        proc = run_strseq("clean", "--db", url, "--key", "id", "--model", tiny_bundle, "--in-place", *args)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]


def test_a_column_failing_validation_stops_the_run_before_any_write(database_url, tiny_bundle):
    import pytest

    from strseq_tasks.data.validation import ColumnValidationError

    engine = make_table(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE customers SET name = NULL WHERE id > 2"))
    before = dump(engine)
    params = CleanParams(db=database_url, table="customers", key="id", column="name", model=str(tiny_bundle),
                         in_place=True, threshold=0.0)
    with pytest.raises(ColumnValidationError, match="too many NULLs"):
        clean(params)
    assert dump(engine) == before
    assert not sa.inspect(engine).has_table(AUDIT)
    assert "**failed**" in Artifact.get("clean-customers-name-validation").data
    engine.dispose()


@pytest.mark.long  # ~25 s; partitions run in-process on both databases in test_clean_partitions.py
def test_cli_clean_in_partitions(tmp_path, lower_bundle):
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = make_table(url)
    proc = run_strseq("clean", "--db", url, "--table", "customers", "--key", "id", "--column", "name",
                      "--model", lower_bundle, "--create-output-column", "--threshold", "0", "--batch-size", "2",
                      "--partitions", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "8 rows read" in proc.stdout and "3 skipped" in proc.stdout
    with engine.connect() as conn:
        audited = conn.execute(sa.text(f"SELECT count(*), count(DISTINCT key) FROM {AUDIT}")).one()
        written = conn.execute(sa.text("SELECT count(*) FROM customers WHERE name_clean IS NOT NULL")).scalar()
    assert audited[0] == audited[1] == written > 0
    engine.dispose()


def test_the_flow_connects_through_a_prefect_secret_block_and_keeps_only_the_reference(tmp_path, tiny_bundle):
    from prefect import get_client
    from prefect.blocks.system import Secret

    from strseq_tasks.data.urls import UrlReferenceError

    url = f"sqlite:///{tmp_path / 'secret.db'}"
    engine = make_table(url)
    Secret(value=url).save("strseq-test-crm-db", overwrite=True)
    params = CleanParams(db="prefect-secret:strseq-test-crm-db", table="customers", key="id", column="name",
                         model=str(tiny_bundle), create_output_column=True, threshold=0.0)
    report = clean(params)
    assert report["rows_read"] == 8 and report["changed"] + report["unchanged"] == 5
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT count(*) FROM {AUDIT}")).scalar() == report["changed"]
    engine.dispose()

    async def stored_parameters():  # what Prefect keeps of the newest run
        async with get_client() as client:
            runs = await client.read_flow_runs(limit=1, sort="START_TIME_DESC")
            return runs[0].parameters

    import asyncio

    stored = str(asyncio.run(stored_parameters()))
    assert "prefect-secret:strseq-test-crm-db" in stored and url not in stored  # the URL is never stored
    missing = params.model_copy(update={"db": "prefect-secret:no-such-block"})
    with pytest.raises(UrlReferenceError, match="no Prefect Secret block named 'no-such-block'"):
        clean(missing)


def test_precision_reaches_the_partitions_and_a_missing_int8_stops_the_run(tmp_path, tiny_bundle, name_pairs):
    from fixtures.data import TINY_MODEL

    from strseq_tasks.jobs import partitions as part
    from strseq_tasks.learn.build import train_bundle
    from strseq_tasks.learn.training import TrainConfig
    from strseq_tasks.serve.bundle import BundleError, read_manifest

    sha = read_manifest(tiny_bundle)["content_sha256"]
    # what each partition loads (clean_partition passes params.precision)
    assert part.load_pinned(str(tiny_bundle), sha, 1, "fp32").precision == "fp32"
    assert part.load_pinned(str(tiny_bundle), sha, 1, "auto").precision == "int8"

    fp32_only = tmp_path / "fp32-only"
    train_bundle(name_pairs[:40], fp32_only, TrainConfig(max_epochs=1, precision="fp32"), TINY_MODEL, pretrained=None)
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = make_table(url)
    before = dump(engine)
    params = CleanParams(db=url, table="customers", key="id", column="name", model=str(fp32_only),
                         create_output_column=True, partitions=2, precision="int8")
    with pytest.raises(BundleError, match="no int8 graphs"):
        clean(params)
    assert dump(engine) == before and not sa.inspect(engine).has_table(AUDIT)
    engine.dispose()
