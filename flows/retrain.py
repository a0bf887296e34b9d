"""Nightly retraining: validate the curated pairs, (adapt the LM,) fine-tune, evaluate against
production on a stable held-out set, publish, and promote only when the gates pass; or, when
production (or the newest version) was trained on the same inputs, nothing but say so.

    from strseq_tasks.flows.retrain import retrain, RetrainParams   # or flows/retrain.py:retrain
    retrain(RetrainParams(pairs="pairs.csv", registry="models", name="names"))

Orchestration only: every step is a function of ``strseq_tasks`` (see ``jobs/retrain.py``).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from strseq_tasks.core.known import KnownValues
from strseq_tasks.data.sources import read_pair_frame, read_strings
from strseq_tasks.data.urls import mask_url
from strseq_tasks.data.validation import PairsValidationError, validate_pairs
from strseq_tasks.jobs import retrain as rt
from strseq_tasks.jobs import retrain_inputs as ri
from strseq_tasks.jobs.retrain import RetrainParams
from strseq_tasks.jobs.review_queue import with_decisions
from strseq_tasks.serve.refs import CANDIDATE, PRODUCTION
from strseq_tasks.serve.registry import Registry
from strseq_tasks.tasks import report_validation, worth_retrying


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=worth_retrying, cache_policy=NO_CACHE)
def load_pairs(params: RetrainParams):
    return read_pair_frame(params.pairs_source(), params.input_column, params.target_column)


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=worth_retrying, cache_policy=NO_CACHE)
def load_decisions(params: RetrainParams) -> list[dict]:
    from strseq_tasks.data.db import create_engine
    from strseq_tasks.jobs.review_queue import decision_pairs

    engine = create_engine(params.decisions)
    try:
        return decision_pairs(engine, table=params.decisions_table, column=params.decisions_column)
    finally:
        engine.dispose()


@task(cache_policy=NO_CACHE)
def validate(frame, params: RetrainParams):
    return report_validation(validate_pairs(frame, params.max_len, params.min_pairs),
                             f"{_key(params.name)}-validation", f"validation of the pairs of {params.name}",
                             PairsValidationError)


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=worth_retrying, cache_policy=NO_CACHE)
def load_adapt_strings(params: RetrainParams) -> list[str]:
    return read_strings(params.adapt_source(), params.adapt_column)


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=worth_retrying, cache_policy=NO_CACHE)
def find_unchanged(registry: Registry, name: str, inputs: dict) -> ri.Unchanged | None:
    return ri.holding_version(registry, name, inputs)


@task(cache_policy=NO_CACHE)
def adapt_lm(params: RetrainParams, texts: list[str], workdir: Path) -> str:
    from strseq_tasks.learn.lm_bundle import pretrain_bundle
    from strseq_tasks.learn.pretraining import PretrainConfig

    out = workdir / "adapted-lm"
    pretrain_bundle(texts, out, PretrainConfig(seed=params.seed, minutes=params.adapt_minutes, lr=1e-3),
                    parent=ri.adapt_parent(params), name=f"{params.name}-adapted")
    get_run_logger().info("adapted the LM to %d strings from %s", len(texts),
                          mask_url(params.adapt_source().describe()))
    return str(out)


@task(cache_policy=NO_CACHE)
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


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=worth_retrying, cache_policy=NO_CACHE)
def fetch_champion(registry: Registry, name: str):
    if name not in registry.names() or registry.alias(name, PRODUCTION) is None:
        return None
    path, version = registry.load(f"{name}@{PRODUCTION}")
    return path, version


@task(cache_policy=NO_CACHE)
def evaluate(bundle: Path, heldout, probes: list[str], version: int | None = None) -> rt.Evaluation:
    return rt.evaluate_bundle(bundle, heldout, version, probes)


@task(retries=2, retry_delay_seconds=2, retry_condition_fn=worth_retrying, cache_policy=NO_CACHE)
def publish(registry: Registry, params: RetrainParams, bundle: Path, record: dict, report: str, plot: bytes,
            publish_id: str) -> int:
    # publish_id: a retry after a commit whose answer was lost returns that version, not a copy
    return registry.publish(params.name, bundle, record, {"report.md": report.encode("utf-8"), "training.png": plot},
                            publish_id=publish_id, tags=params.tags, description=params.description)


@flow(name="strseq-retrain", log_prints=True)
def retrain(params: RetrainParams) -> dict:
    """Retrain NAME from curated pairs and publish it to the registry (see RetrainParams), unless
    production (or the newest version) was trained on the same inputs and ``force`` is off."""
    logger = get_run_logger()
    registry = Registry(params.registry)
    registry.check_writable()  # before hours of training, not after
    frame = load_pairs(params)
    rows = len(frame)
    decided = load_decisions(params) if params.decisions else []
    frame, from_people = with_decisions(frame, decided)
    if params.decisions:
        logger.info("%d of %d decision(s) in %s join the pairs (the others the pairs hold already)", from_people,
                    len(decided), mask_url(str(params.decisions)))
    validation = validate(frame, params)
    pairs, duplicates = rt.frame_to_pairs(frame, params.max_len)
    split = rt.split_heldout(pairs, params.heldout_fraction)
    logger.info("%d pairs (%d duplicates dropped): %d to train on, %d held out (fingerprint %s)", len(pairs),
                duplicates, len(split.train), len(split.heldout), split.fingerprint[:16])
    data = {"source": mask_url(params.pairs_source().describe()), "rows": rows, "duplicates": duplicates,
            "heldout_pairs": len(split.heldout), "heldout_fingerprint": split.fingerprint}
    if params.decisions:
        data["decisions"] = {"source": mask_url(str(params.decisions)), "found": len(decided), "added": from_people}
    known = rt.read_known(params.known_values, split.train)
    texts = load_adapt_strings(params) if params.adapt_on else None
    base = ri.adapted_base(params, texts) if params.adapt_on else ri.base_model(rt.start_from(params.pretrained))
    inputs = ri.training_inputs(params, pairs, known, base)
    found = None if params.force else find_unchanged(registry, params.name, inputs)
    if found is not None:  # training again would make that model again
        return _unchanged(params, found, inputs, data, validation, split)
    with rt.work_folder() as tmp:
        lm = adapt_lm(params, texts, tmp) if params.adapt_on else rt.start_from(params.pretrained)
        bundle = train(split.train, params, tmp, lm, known, data, inputs)
        probes = rt.clean_probes(split.heldout, pairs)  # harm: clean values changed, for both models
        challenger = evaluate(bundle, split.heldout, probes)
        champion = fetch_champion(registry, params.name)
        incumbent = evaluate(champion[0], split.heldout, probes, champion[1]) if champion else None
        decision = rt.decide(challenger.metrics, incumbent.metrics if incumbent else None, params.gates,
                             params.promote)
        record = {"data": data, "validation": validation.to_dict(), "metrics": rt.jsonable(challenger.metrics),
                  "champion": rt.champion_record(incumbent), "decision": decision.record(),
                  "params": params.model_dump(mode="json")}  # URLs masked (MaskedUrl)
        report = rt.report_markdown(params.name, data, split, challenger, incumbent, decision, None, split.heldout,
                                    validation)
        plot = rt.training_plot(bundle, split.heldout, challenger)
        version = publish(registry, params, bundle, record, report, plot, uuid.uuid4().hex)
    registry.set_alias(params.name, CANDIDATE, version, "published by retrain")
    if decision.promote:
        registry.set_alias(params.name, PRODUCTION, version, "; ".join(decision.reasons))
    report = report.replace(rt.NEW_VERSION, f"version {version}", 1)
    create_markdown_artifact(report, key=f"{_key(params.name)}-retrain", description=f"retraining {params.name}")
    failed = ["FAIL: " + g.detail for g in decision.gates if not g.passed]
    logger.info("published %s version %d; %s", params.name, version, "promoted to production" if decision.promote
                else "not promoted: " + ("; ".join(failed) or "promotion turned off"))
    return {"name": params.name, "version": version, "published": True, "promoted": decision.promote,
            "reasons": decision.reasons, "training_inputs": inputs["sha256"],
            "metrics": rt.jsonable(challenger.metrics),
            "champion": rt.champion_record(incumbent), "heldout": {"pairs": len(split.heldout),
                                                                   "fingerprint": split.fingerprint}}


def _unchanged(params: RetrainParams, found: ri.Unchanged, inputs: dict, data: dict, validation, split) -> dict:
    """A retrain whose inputs a version already holds: its report and result, nothing else."""
    message = found.message(params.name)
    create_markdown_artifact(ri.unchanged_markdown(params.name, found, inputs, data, validation),
                             key=f"{_key(params.name)}-retrain", description=f"retraining {params.name}")
    get_run_logger().info("%s", message)
    return {"name": params.name, "version": found.version, "published": False, "promoted": False,
            "reasons": [message], "training_inputs": inputs["sha256"],
            "heldout": {"pairs": len(split.heldout), "fingerprint": split.fingerprint}}


def _key(name: str) -> str:
    """Prefect artifact keys: lower-case letters, digits and dashes."""
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "model"
