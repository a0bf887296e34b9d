"""The retraining flow's steps as Prefect tasks, each a call into ``strseq_tasks`` (``jobs/retrain.py``,
``jobs/retrain_inputs.py``, ``learn/build.py``, ``serve/registry.py``) under a name the UI shows.

Retries only where a step reads or writes the outside world (a database, the registry), and only
for errors that may pass (``worth_retrying``). Every step has a timeout: a database or registry
that stops answering fails the night's run within minutes instead of holding the worker until
the next night; training's follows the run's own time budget (``max_minutes``).
"""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from strseq_tasks.core.known import KnownValues
from strseq_tasks.data.sources import read_pair_frame, read_strings
from strseq_tasks.data.urls import mask_url
from strseq_tasks.data.validation import PairsValidationError, validate_pairs
from strseq_tasks.flows.artifacts import artifact_key
from strseq_tasks.jobs import retrain as rt
from strseq_tasks.jobs import retrain_inputs as ri
from strseq_tasks.jobs.retrain import RetrainParams
from strseq_tasks.runner.events import PROMOTED, announce_promotion  # noqa: F401 (PROMOTED: the trigger's event)
from strseq_tasks.serve.refs import CANDIDATE, PRODUCTION
from strseq_tasks.serve.registry import Registry
from strseq_tasks.tasks import report_validation, worth_retrying

IO_S = 600  # a read or write of a database or the registry (10 minutes: a stuck connection, not a slow one)
STEP_S = 300  # a step computed in memory (split, gates): seconds on the largest pair sets
EVALUATE_S = 1800  # held-out and probe rows through onnxruntime, for each model
EXPORT_S = 1200  # after training: ONNX export, int8 graphs and the parity check
IO = {"retries": 2, "retry_delay_seconds": 2, "retry_condition_fn": worth_retrying, "timeout_seconds": IO_S,
      "cache_policy": NO_CACHE}


@task(name="load-pairs", **IO)
def load_pairs(params: RetrainParams):
    return read_pair_frame(params.pairs_source(), params.input_column, params.target_column)


@task(name="load-decisions", **IO)
def load_decisions(params: RetrainParams) -> list[dict]:
    from strseq_tasks.data.db import create_engine
    from strseq_tasks.jobs.review_queue import decision_pairs

    engine = create_engine(params.decisions)
    try:
        return decision_pairs(engine, table=params.decisions_table, column=params.decisions_column)
    finally:
        engine.dispose()


@task(name="validate-pairs", timeout_seconds=STEP_S, cache_policy=NO_CACHE)
def validate(frame, params: RetrainParams):
    return report_validation(validate_pairs(frame, params.max_len, params.min_pairs, run_name=params.name),
                             artifact_key(params.name, "validation"), f"validation of the pairs of {params.name}",
                             PairsValidationError)


@task(name="split-heldout", timeout_seconds=STEP_S, cache_policy=NO_CACHE)
def split(frame, params: RetrainParams) -> tuple[list[rt.Pair], int, rt.Split]:
    """The checked pairs, the count of duplicates dropped, and the stable held-out split."""
    pairs, duplicates = rt.frame_to_pairs(frame, params.max_len)
    held = rt.split_heldout(pairs, params.heldout_fraction)
    get_run_logger().info("%d pairs (%d duplicates dropped): %d to train on, %d held out (fingerprint %s)",
                          len(pairs), duplicates, len(held.train), len(held.heldout), held.fingerprint[:16])
    return pairs, duplicates, held


@task(name="load-adapt-strings", **IO)
def load_adapt_strings(params: RetrainParams) -> list[str]:
    return read_strings(params.adapt_source(), params.adapt_column)


@task(name="find-unchanged", **IO)
def find_unchanged(registry: Registry, name: str, inputs: dict) -> ri.Unchanged | None:
    return ri.holding_version(registry, name, inputs)


@task(name="adapt-lm", cache_policy=NO_CACHE)
def adapt_lm(params: RetrainParams, texts: list[str], workdir: Path) -> str:
    from strseq_tasks.learn.lm_bundle import pretrain_bundle
    from strseq_tasks.learn.pretraining import PretrainConfig

    out = workdir / "adapted-lm"
    pretrain_bundle(texts, out, PretrainConfig(seed=params.seed, minutes=params.adapt_minutes, lr=1e-3),
                    parent=ri.adapt_parent(params), name=f"{params.name}-adapted")
    get_run_logger().info("adapted the LM to %d strings from %s", len(texts),
                          mask_url(params.adapt_source().describe()))
    return str(out)


def budget(minutes: float | None) -> float | None:
    """A training step's timeout: its own time budget, and the export after it (None: no budget)."""
    return None if minutes is None else 60 * minutes + EXPORT_S


@task(name="train", cache_policy=NO_CACHE)
def train(pairs, params: RetrainParams, workdir: Path, lm: str | None, known: KnownValues | None, data_info: dict,
          inputs: dict) -> Path:
    from strseq_tasks.learn.build import ExportFailed, train_bundle
    from strseq_tasks.serve.refs import cache_root

    logger = get_run_logger()
    try:  # a refused export keeps the training outside the scratch folder, which goes at the end
        outcome = train_bundle(pairs, workdir / params.name, ri.train_config(params), ri.model_overrides(params),
                               name=params.name, data_info=data_info, pretrained=lm, known=known,
                               training_inputs=inputs, keep_dir=cache_root() / "unexported",
                               on_epoch=lambda r: logger.info("%s: epoch %d/%d loss %.3f validation exact %.3f%s",
                                                              params.name, r.epoch, params.max_epochs, r.train_loss,
                                                              r.val_exact, " (best)" if r.best else ""))
    except ExportFailed as exc:
        raise rt.NotExported(params.name, exc) from exc
    return outcome.path


@task(name="fetch-production", **IO)
def fetch_champion(registry: Registry, name: str):
    if name not in registry.names() or registry.alias(name, PRODUCTION) is None:
        return None
    path, version = registry.load(f"{name}@{PRODUCTION}")
    return path, version


@task(timeout_seconds=EVALUATE_S, cache_policy=NO_CACHE, task_run_name="evaluate-{label}")
def evaluate(bundle: Path, heldout, probes: list[str], label: str, version: int | None = None) -> rt.Evaluation:
    return rt.evaluate_bundle(bundle, heldout, version, probes)


@task(name="gates", timeout_seconds=STEP_S, cache_policy=NO_CACHE)
def gates(challenger: rt.Evaluation, champion: rt.Evaluation | None, params: RetrainParams) -> rt.Decision:
    """Whether the new model replaces production: each gate's measure against its bound, logged."""
    decision = rt.decide(challenger.metrics, champion.metrics if champion else None, params.gates, params.promote)
    logger = get_run_logger()
    for reason in decision.reasons:
        (logger.warning if reason.startswith("FAIL") else logger.info)("%s", reason)
    return decision


@task(name="publish", **IO)
def publish(registry: Registry, params: RetrainParams, bundle: Path, record: dict, report: str, plot: bytes,
            publish_id: str) -> int:
    # publish_id: a retry after a commit whose answer was lost returns that version, not a copy
    return registry.publish(params.name, bundle, record, {"report.md": report.encode("utf-8"), "training.png": plot},
                            publish_id=publish_id, tags=params.tags, description=params.description)


@task(name="promote", **IO)
def promote(registry: Registry, name: str, version: int, decision: rt.Decision) -> None:
    """``candidate`` always moves to the new version; ``production`` when the gates passed, and then
    the ``strseq.model.promoted`` event tells Prefect (a deployment's trigger cleans with it)."""
    registry.set_alias(name, CANDIDATE, version, "published by retrain")
    if not decision.promote:
        return
    reason = "; ".join(decision.reasons)
    registry.set_alias(name, PRODUCTION, version, reason)
    announce_promotion(name, version, PRODUCTION, registry.label, reason)
