"""The retraining flow under a Prefect test harness, on real files and real databases."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from fixtures.data import TINY_SIZES, lowercase_pairs, write_pairs  # tests/ is on sys.path
from fixtures.tables import people
from prefect.artifacts import Artifact

from strseq_tasks.data.validation import PairsValidationError
from strseq_tasks.flows.retrain import retrain
from strseq_tasks.jobs.retrain import NotExported, RetrainParams, clean_probes, split_heldout
from strseq_tasks.serve.refs import CANDIDATE, PRODUCTION
from strseq_tasks.serve.registry import Registry
from strseq_tasks.serve.runtime import Normalizer

LENIENT = {"min_exact_match": 0.0, "max_harm": 1.0}


def params(pairs: str, registry: Path, **extra) -> RetrainParams:
    """A tiny, quick retrain: fp32 graphs only (int8 adds ~3 s a bundle; test_int8.py and the CLI
    retrains of test_cli_retrain.py take the int8 path)."""
    return RetrainParams(**{"pairs": pairs, "registry": str(registry), "name": "lower", "max_epochs": 3,
                            "model_sizes": TINY_SIZES, "gates": LENIENT, "precision": "fp32", **extra})


def listing(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One good run: (pairs file, registry folder with version 1 in production, flow result)."""
    folder = tmp_path_factory.mktemp("retrain")
    pairs = write_pairs(folder / "pairs.csv", lowercase_pairs())
    result = retrain(params(str(pairs), folder / "registry"))
    return pairs, folder / "registry", result


@pytest.fixture
def registry_copy(first_run, tmp_path) -> Path:
    copy = tmp_path / "registry"
    shutil.copytree(first_run[1], copy)
    return copy


def test_a_good_source_publishes_version_1_and_sets_production(first_run):
    _, root, result = first_run
    registry = Registry(root)
    assert result["version"] == 1 and result["promoted"]
    assert registry.resolve("lower", PRODUCTION) == registry.resolve("lower", CANDIDATE) == 1
    record = registry.publication("lower", 1)
    assert record["decision"]["promote"] and record["validation"]["success"]
    assert record["data"]["heldout_fingerprint"] == result["heldout"]["fingerprint"]
    assert record["metrics"]["exact_match"] == result["metrics"]["exact_match"] > 0.2
    split = split_heldout(lowercase_pairs(), 0.15)  # harm is measured on every clean held-out value
    assert record["metrics"]["clean_rows"] == len(clean_probes(split.heldout, lowercase_pairs())) > 10
    report = registry.attachment("lower", 1, "report.md").decode()
    assert "promoted to production" in report and "Validation: passed against suite `string_pairs`" in report
    assert registry.attachment("lower", 1, "training.png").startswith(b"\x89PNG")
    assert Normalizer(registry.fetch("lower", 1)).normalize(["ANN LEE"])[0].status == "ok"
    artifact = Artifact.get("lower-retrain")
    assert artifact is not None and "version 1 **promoted" in artifact.data


def test_the_heldout_set_is_stable_as_pairs_grow(first_run, tmp_path):
    """Adding pairs never moves an old pair across the train / held-out line."""
    from strseq_tasks.jobs.retrain import split_heldout

    pairs = lowercase_pairs()
    more = pairs + [(f"new name {i}", f"new name {i}") for i in range(200)]
    before, after = split_heldout(pairs, 0.15), split_heldout(more, 0.15)
    assert set(before.heldout) <= set(after.heldout) and set(before.train) <= set(after.train)


def test_harm_is_measured_on_the_clean_heldout_values():
    from strseq_tasks.jobs.retrain import clean_probes

    heldout = [("JOHN", "John"), ("Mary", "Mary"), ("ann", "Ann"), ("Bob", "Rob")]
    pairs = [*heldout, ("Ann", "Anne"), ("x", "y")]  # "Ann" itself is corrected by a pair: not clean
    assert clean_probes(heldout, pairs) == ["John", "Mary", "Rob"]


def test_a_conflicting_pair_fails_validation_and_publishes_nothing(first_run, registry_copy, tmp_path):
    pairs = lowercase_pairs()
    bad = write_pairs(tmp_path / "bad.csv", pairs + [(pairs[0][0], "someone else")])
    before = listing(registry_copy)
    with pytest.raises(PairsValidationError, match="the same input maps to two different targets"):
        retrain(params(str(bad), registry_copy))
    assert listing(registry_copy) == before
    report = Artifact.get("lower-validation").data
    assert "**failed**" in report and f"| {len(pairs) + 1} |" in report  # the offending row is listed


def test_a_worse_challenger_is_published_but_not_promoted(first_run, registry_copy, tmp_path):
    worse = write_pairs(tmp_path / "worse.csv", lowercase_pairs(upper_targets_when_training=True))
    result = retrain(params(str(worse), registry_copy))
    registry = Registry(registry_copy)
    assert result["version"] == 2 and not result["promoted"]
    assert registry.resolve("lower", PRODUCTION) == 1 and registry.resolve("lower", CANDIDATE) == 2
    assert any(r.startswith("FAIL: exact match") and "production" in r for r in result["reasons"])
    assert result["champion"]["version"] == 1
    assert "not promoted" in registry.attachment("lower", 2, "report.md").decode()
    # the same inputs again: the refused candidate holds them, training would make it (and refuse it) again
    again = retrain(params(str(worse), registry_copy))
    assert not again["published"] and again["version"] == 2
    assert "version 2 (the newest version; production is version 1)" in again["reasons"][0]
    assert registry.versions("lower") == [1, 2] and registry.resolve("lower", PRODUCTION) == 1


def test_an_unchanged_retrain_trains_publishes_and_promotes_nothing(first_run, registry_copy, monkeypatch):
    import strseq_tasks.learn.build as pipeline

    pairs, _, first = first_run
    monkeypatch.setattr(pipeline, "fit", lambda *a, **k: pytest.fail("trained on unchanged inputs"))
    before = listing(registry_copy)
    result = retrain(params(str(pairs), registry_copy))
    assert listing(registry_copy) == before  # versions, aliases and their histories untouched
    assert result["version"] == 1 and not result["published"] and not result["promoted"]
    assert result["reasons"] == ["unchanged: lower version 1 (in production) was trained on these same pairs, known "
                                 "values, parameters and base model; nothing trained, published or promoted (--force "
                                 "trains a new version anyway)"]
    assert result["training_inputs"] == Registry(registry_copy).manifest("lower", 1)["training_inputs"]["sha256"]
    assert result["heldout"] == first["heldout"]
    report = Artifact.get("lower-retrain").data
    assert "inputs unchanged, **nothing published**" in report and "Version 1 (in production)" in report
    assert "Validation: passed" in report


def test_one_pair_more_trains_and_publishes_as_before(first_run, registry_copy, tmp_path):
    more = write_pairs(tmp_path / "more.csv", [*lowercase_pairs(), ("ZOE QUINN-BAXTER", "zoe quinn-baxter")])
    result = retrain(params(str(more), registry_copy))
    registry = Registry(registry_copy)
    assert result["published"] and result["version"] == 2 and registry.versions("lower") == [1, 2]
    old, new = (registry.manifest("lower", v)["training_inputs"] for v in (1, 2))
    assert old["pairs"] != new["pairs"] and old["base_model"] == new["base_model"]
    assert old["training_config"] == new["training_config"]


def test_a_failure_while_publishing_leaves_the_registry_exactly_as_before(first_run, registry_copy, monkeypatch):
    import strseq_tasks.serve.registry as registry_module

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    before = listing(registry_copy)
    monkeypatch.setattr(registry_module.shutil, "copy2", disk_full)
    with pytest.raises(OSError, match="No space left"):
        retrain(params(str(first_run[0]), registry_copy, force=True))  # unchanged inputs: trained all the same
    monkeypatch.undo()
    after = listing(registry_copy)
    assert after == before
    assert Registry(registry_copy).resolve("lower", PRODUCTION) == 1


def test_pairs_from_a_database_table(database_url, tmp_path):
    engine = sa.create_engine(database_url)
    meta = sa.MetaData()
    table = sa.Table("curated pairs", meta, sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("dirty", sa.Text), sa.Column("clean", sa.Text))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"dirty": a, "clean": b} for a, b in lowercase_pairs()])
    engine.dispose()
    result = retrain(params(database_url, tmp_path / "registry", pairs_table="curated pairs",
                            input_column="dirty", target_column="clean", max_epochs=2))
    assert result["version"] == 1
    record = Registry(tmp_path / "registry").publication("lower", 1)
    assert "curated pairs" in record["data"]["source"] and record["data"]["rows"] == len(lowercase_pairs())
    assert json.dumps(record)  # plain JSON all the way down


def test_adapt_on_the_unlabeled_column_then_fine_tune(tmp_path):
    """--adapt-on: domain-adaptive pretraining of the shipped LM on the column, then fine-tuning."""
    column = write_pairs(tmp_path / "column.csv", [(a,) for a, _ in lowercase_pairs()] * 3, header=("name",))
    pairs = write_pairs(tmp_path / "pairs.csv", lowercase_pairs())
    result = retrain(RetrainParams(pairs=str(pairs), registry=str(tmp_path / "registry"), name="lower",
                                   adapt_on=str(column), adapt_column="name", adapt_minutes=0.05, max_epochs=1,
                                   gates=LENIENT))
    manifest = Registry(tmp_path / "registry").manifest("lower", result["version"])
    lm = manifest["pretrained"]
    assert lm["name"] == "lower-adapted" and lm["parent"]["name"] == "strseq-default-lm"
    assert manifest["model_config"]["enc_hidden"] == 128  # the LM's sizes


def test_a_parity_failure_blocks_publication_and_promotion(first_run, registry_copy, monkeypatch):
    import strseq_tasks.learn.build as pipeline
    from strseq_tasks.learn.export import ParityError

    def broken_export(*args, **kwargs):
        raise ParityError("ONNX export differs from PyTorch: (injected)")

    monkeypatch.setattr(pipeline, "check_parity", broken_export)
    monkeypatch.setenv("STRSEQ_CACHE", str(registry_copy.parent / "cache"))
    before = listing(registry_copy)
    with pytest.raises(NotExported, match="differs.*nothing was published") as caught:
        retrain(params(str(first_run[0]), registry_copy, max_epochs=1))
    assert listing(registry_copy) == before
    kept = caught.value.kept  # the training outlives the scratch folder, and exports later
    assert kept.parent == registry_copy.parent / "cache" / "unexported" and (kept / "weights.safetensors").is_file()


def test_a_registry_that_cannot_be_written_stops_the_flow_before_it_trains(tmp_path, monkeypatch):
    import strseq_tasks.learn.build as pipeline
    from strseq_tasks.serve.refs import RegistryError

    pairs = write_pairs(tmp_path / "pairs.csv", lowercase_pairs())
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the registry should be")
    monkeypatch.setattr(pipeline, "fit", lambda *a, **k: pytest.fail("trained despite an unwritable registry"))
    with pytest.raises(RegistryError, match="is a file, not a folder"):
        retrain(params(str(pairs), blocker / "models"))
    assert blocker.read_text() == "a file where the registry should be"


def test_train_and_retrain_read_pairs_by_the_same_rules(tmp_path):
    """One road: a tab or a zero-width space in a dirty input is learnt from by both (retrain
    refused it, train took it); one in a clean target is refused by both (train took it)."""
    from fixtures.data import TINY_MODEL

    from strseq_tasks.data.files import InputFileError, read_pairs

    dirty = [(f"{a}\t" if i % 3 == 0 else a.replace(" ", "\u200b ", 1) if i % 3 == 1 else a, b)
             for i, (a, b) in enumerate(lowercase_pairs())]
    pairs = write_pairs(tmp_path / "dirty.csv", dirty)
    result = retrain(params(str(pairs), tmp_path / "registry", max_epochs=1, model_sizes=TINY_MODEL))
    assert result["version"] == 1
    assert len(read_pairs(pairs, 128).pairs) == len(dirty)  # train takes the same file
    hidden = write_pairs(tmp_path / "hidden.csv", [*lowercase_pairs()[:40], ("ann lee", "Ann\u200b Lee")])
    with pytest.raises(PairsValidationError, match="control characters"):
        retrain(params(str(hidden), tmp_path / "registry"))
    with pytest.raises(InputFileError, match="U\\+200B"):
        read_pairs(hidden, 128)


def test_where_a_retrain_starts_and_what_adapt_on_accepts(tmp_path):
    from strseq_tasks.data.files import InputFileError
    from strseq_tasks.jobs.retrain import preflight, start_from
    from strseq_tasks.learn.build import DEFAULT_PRETRAINED
    from strseq_tasks.learn.lm_bundle import default_lm_path
    from strseq_tasks.learn.transfer import default_pretrained_path

    assert start_from(None) == DEFAULT_PRETRAINED == "default"  # the shipped pretrained model
    assert start_from("none") is None  # random weights
    assert start_from("/some/folder") == "/some/folder"
    pairs = write_pairs(tmp_path / "pairs.csv", lowercase_pairs())
    column = write_pairs(tmp_path / "column.csv", [(a,) for a, _ in lowercase_pairs()], header=("name",))
    # --adapt-on adapts a language model: a pretrained encoder-decoder named with it is refused up front
    with pytest.raises(InputFileError, match="--adapt-on adapts a language model"):
        preflight(params(str(pairs), tmp_path / "registry", adapt_on=str(column), adapt_column="name",
                         pretrained=str(default_pretrained_path())))
    for start in (str(default_pretrained_path()), str(default_lm_path()), "none", "default"):
        preflight(params(str(pairs), tmp_path / "registry", pretrained=start))  # each is a valid start


def test_peoples_decisions_join_the_pairs_and_a_conflict_with_them_fails_validation(first_run, registry_copy,
                                                                                    database_url, tmp_path):
    from strseq_tasks.data.db import reflect_table
    from strseq_tasks.jobs.clean import clean_table
    from strseq_tasks.jobs.clean_report import ModelIdentity
    from strseq_tasks.jobs.decide import Decision, decide
    from strseq_tasks.jobs.review_queue import QueueFilter, queue
    from strseq_tasks.serve.runtime import Prediction

    pairs, _, _ = first_run
    taught = lowercase_pairs()
    engine = sa.create_engine(database_url)
    # two values the pairs do not hold, one they do (with another answer)
    people(engine, [(1, "ADA QUILL"), (2, "Bo Vance"), (3, taught[0][0])])
    unsure = lambda texts: [Prediction(t.swapcase(), 0.3, "ok") for t in texts]  # noqa: E731  all to review
    clean_table(engine, reflect_table(engine, "people", "id", "name", "name_clean", create_output=True),
                ModelIdentity("lower", 1, "sha"), unsure)
    ids = {r["value"]: r["id"] for r in queue(engine, QueueFilter(), limit=None)[1]}
    decide(engine, [Decision(ids["ADA QUILL"], "edit", "ada quill"), Decision(ids["Bo Vance"], "edit", "bo vance")],
           by="ana")
    result = retrain(params(str(pairs), registry_copy, decisions=database_url, decisions_table="people"))
    record = Registry(registry_copy).publication("lower", 2)
    assert result["published"] and record["data"]["decisions"]["added"] == 2
    assert record["data"]["rows"] == len(taught)
    again = retrain(params(str(pairs), registry_copy, decisions=database_url, decisions_table="people"))
    assert not again["published"]  # the same pairs and decisions: nothing new to learn
    decide(engine, [Decision(ids[taught[0][0]], "edit", "someone else")], by="ana")
    before = listing(registry_copy)
    with pytest.raises(PairsValidationError, match="the same input maps to two different targets"):
        retrain(params(str(pairs), registry_copy, decisions=database_url))
    assert listing(registry_copy) == before
    engine.dispose()
