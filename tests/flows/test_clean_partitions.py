"""The cleaning flow split into partitions: on Prefect's thread pool and on a local Dask
cluster of two worker processes, every row applied exactly once, the run recorded once."""

from __future__ import annotations

import os
import shutil
import socket

import pytest
import sqlalchemy as sa
from fixtures.tables import people

from strseq_tasks.data.db import AUDIT, RUNS
from strseq_tasks.flows.clean import clean
from strseq_tasks.jobs.clean_params import CleanParams
from strseq_tasks.serve.refs import PRODUCTION
from strseq_tasks.serve.registry import Registry

ROWS = 120


def make_table(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    names = ["JOHN SMITH", "MARY JONES", "Ann Lee", "DR. PETER PAN", None, "BOB O'NEIL"]
    people(engine, [(i * 7, names[i % len(names)]) for i in range(1, ROWS + 1)])
    return engine


def check_exactly_once(engine, result) -> None:
    with engine.connect() as conn:
        audit = conn.execute(sa.text(f"SELECT key, count(*) FROM {AUDIT} GROUP BY key")).fetchall()
        runs = conn.execute(sa.text(f"SELECT run_id, status, rows_read, changed FROM {RUNS}")).fetchall()
        written = conn.execute(sa.text("SELECT count(*) FROM people WHERE name_clean IS NOT NULL")).scalar()
    assert result["rows_read"] == ROWS and result["skipped"] == ROWS // 6
    assert result["changed"] + result["unchanged"] == ROWS - ROWS // 6 and result["changed"] >= ROWS // 2
    assert len(audit) == written == result["changed"] and all(n == 1 for _, n in audit)
    assert [tuple(r) for r in runs] == [(result["run_id"], "completed", ROWS, result["changed"])]


def test_partitions_on_the_thread_pool_apply_every_row_once(database_url, lower_bundle):
    engine = make_table(database_url)
    params = CleanParams(db=database_url, table="people", key="id", column="name", model=str(lower_bundle),
                         create_output_column=True, threshold=0.0, batch_size=9, partitions=3)
    dry = clean(params.model_copy(update={"dry_run": True}))
    assert dry["rows_read"] == ROWS and not sa.inspect(engine).has_table(AUDIT)
    result = clean(params)
    check_exactly_once(engine, result)
    assert result["workers"] == [f"{socket.gethostname()}:{os.getpid()}"]  # threads of this process
    assert result["changed"] == dry["changed"] and len(result["sample"]) == min(20, result["changed"])
    again = clean(params)
    assert again["changed"] == 0 and again["already_done"] == ROWS - ROWS // 6
    engine.dispose()


@pytest.mark.slow
def test_partitions_on_a_local_dask_cluster_use_one_pinned_model_version(tmp_path, lower_bundle):
    """Two Dask worker processes; the model comes from the registry by alias, pinned to the
    version it resolved to when the run started."""
    pytest.importorskip("prefect_dask")
    registry = Registry(tmp_path / "registry")
    registry.publish("names", lower_bundle)
    registry.set_alias("names", PRODUCTION, 1, "test")
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = make_table(url)
    model = f"{tmp_path / 'registry'}/names@production"
    params = CleanParams(db=url, table="people", key="id", column="name", model=model, create_output_column=True,
                         threshold=0.0, batch_size=16, partitions=2, dask_address="local")
    result = clean(params)
    check_exactly_once(engine, result)
    assert result["model"]["version"] == 1
    pids = {int(w.rsplit(":", 1)[1]) for w in result["workers"]}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes did the work
    engine.dispose()
    shutil.rmtree(tmp_path / "registry")


def test_a_promotion_during_a_run_does_not_change_the_model_it_uses(tmp_path, lower_bundle, tiny_bundle,
                                                                    monkeypatch, ledger):
    """The retrain flow promotes a new version while a partitioned run starts its partitions: they
    load the version the run resolved at its start (pinned, checked by sha), and the run says which."""
    from strseq_tasks.jobs import partitions
    registry = Registry(tmp_path / "registry")
    registry.publish("names", lower_bundle)
    registry.publish("names", tiny_bundle)
    registry.set_alias("names", PRODUCTION, 1, "test")
    loaded = []
    real = partitions.load_pinned

    def promote_then_load(model, sha, *args, **kwargs):
        registry.set_alias("names", PRODUCTION, 2, "the retrain flow promoted a new version")
        normalizer = real(model, sha, *args, **kwargs)
        loaded.append(normalizer.manifest["manifest_sha256"])
        return normalizer

    monkeypatch.setattr(partitions, "load_pinned", promote_then_load)
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = make_table(url)
    model = f"{tmp_path / 'registry'}/names@production"
    params = CleanParams(db=url, table="people", key="id", column="name", model=model, create_output_column=True,
                         threshold=0.0, batch_size=9, partitions=2)
    result = clean(params)
    with engine.connect() as conn:
        versions = set(conn.execute(sa.text(f"SELECT model_version FROM {AUDIT}")).scalars())
        run_versions = conn.execute(sa.text(f"SELECT model_version FROM {RUNS}")).scalars().all()
    v1 = registry.manifest("names", 1)["manifest_sha256"]
    ledger("concurrency", "the production alias moved to a new version while a partitioned cleaning run started; "
           f"the run used version {sorted(versions)} and recorded {run_versions}", "sqlite")
    assert registry.resolve("names", PRODUCTION) == 2  # it did move
    assert result["model"]["version"] == 1 and run_versions == [1] and versions == {1}
    assert loaded and set(loaded) == {v1}
    check_exactly_once(engine, result)
    engine.dispose()
