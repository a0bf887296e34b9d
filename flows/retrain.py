"""Nightly retraining: validate the curated pairs, (adapt the LM,) fine-tune, evaluate against
production on a stable held-out set, publish, and promote only when the gates pass; or, when
production (or the newest version) was trained on the same inputs, nothing but say so.

    from strseq_tasks.flows.retrain import retrain, RetrainParams   # or flows/retrain.py:retrain
    retrain(RetrainParams(pairs="pairs.csv", registry="models", name="names"))

Orchestration only: each step is a task of ``retrain_tasks`` (a named task run in Prefect's UI),
over functions of ``strseq_tasks`` (see ``jobs/retrain.py``); ``artifacts`` says what the run
leaves in the UI.
"""

from __future__ import annotations

import uuid

from prefect import flow, get_run_logger

from strseq_tasks.data.urls import mask_url
from strseq_tasks.flows import artifacts
from strseq_tasks.flows import retrain_tasks as step
from strseq_tasks.jobs import retrain as rt
from strseq_tasks.jobs import retrain_inputs as ri
from strseq_tasks.jobs.retrain import RetrainParams
from strseq_tasks.jobs.review_queue import with_decisions
from strseq_tasks.serve.registry import Registry


@flow(name="strseq-retrain", log_prints=True)
def retrain(params: RetrainParams) -> dict:
    """Retrain NAME from curated pairs and publish it to the registry (see RetrainParams), unless
    production (or the newest version) was trained on the same inputs and ``force`` is off."""
    logger = get_run_logger()
    registry = Registry(params.registry)
    registry.check_writable()  # before hours of training, not after
    frame = step.load_pairs(params)
    rows = len(frame)
    decided = step.load_decisions(params) if params.decisions else []
    frame, from_people = with_decisions(frame, decided)
    if params.decisions:
        logger.info("%d of %d decision(s) in %s join the pairs (the others the pairs hold already)", from_people,
                    len(decided), mask_url(str(params.decisions)))
    validation = step.validate(frame, params)
    pairs, duplicates, split = step.split(frame, params)
    data = {"source": mask_url(params.pairs_source().describe()), "rows": rows, "duplicates": duplicates,
            "heldout_pairs": len(split.heldout), "heldout_fingerprint": split.fingerprint}
    if params.decisions:
        data["decisions"] = {"source": mask_url(str(params.decisions)), "found": len(decided), "added": from_people}
    known = rt.read_known(params.known_values, split.train)
    texts = step.load_adapt_strings(params) if params.adapt_on else None
    base = ri.adapted_base(params, texts) if params.adapt_on else ri.base_model(rt.start_from(params.pretrained))
    inputs = ri.training_inputs(params, pairs, known, base)
    found = None if params.force else step.find_unchanged(registry, params.name, inputs)
    if found is not None:  # training again would make that model again
        return _unchanged(params, found, inputs, data, validation, split)
    with rt.work_folder() as tmp:
        lm = (step.adapt_lm.with_options(timeout_seconds=step.budget(params.adapt_minutes))(params, texts, tmp)
              if params.adapt_on else rt.start_from(params.pretrained))
        bundle = step.train.with_options(timeout_seconds=step.budget(params.max_minutes))(
            split.train, params, tmp, lm, known, data, inputs)
        probes = rt.clean_probes(split.heldout, pairs)  # harm: clean values changed, for both models
        challenger = step.evaluate(bundle, split.heldout, probes, "new-model")
        champion = step.fetch_champion(registry, params.name)
        incumbent = step.evaluate(champion[0], split.heldout, probes, "production", champion[1]) if champion else None
        decision = step.gates(challenger, incumbent, params)
        record = {"data": data, "validation": validation.to_dict(), "metrics": rt.jsonable(challenger.metrics),
                  "champion": rt.champion_record(incumbent), "decision": decision.record(),
                  "params": params.model_dump(mode="json")}  # URLs masked (MaskedUrl)
        report = rt.report_markdown(params.name, data, split, challenger, incumbent, decision, None, split.heldout,
                                    validation)
        plot = rt.training_plot(bundle, split.heldout, challenger)
        version = step.publish(registry, params, bundle, record, report, plot, uuid.uuid4().hex)
    step.promote(registry, params.name, version, decision)
    _artifacts(params.name, registry, version, decision, report, challenger, incumbent, plot)
    failed = ["FAIL: " + g.detail for g in decision.gates if not g.passed]
    logger.info("published %s version %d; %s", params.name, version, "promoted to production" if decision.promote
                else "not promoted: " + ("; ".join(failed) or "promotion turned off"))
    return {"name": params.name, "version": version, "published": True, "promoted": decision.promote,
            "reasons": decision.reasons, "training_inputs": inputs["sha256"],
            "metrics": rt.jsonable(challenger.metrics),
            "champion": rt.champion_record(incumbent), "heldout": {"pairs": len(split.heldout),
                                                                   "fingerprint": split.fingerprint}}


def _artifacts(name: str, registry: Registry, version: int, decision, report: str, challenger, incumbent,
               plot: bytes) -> None:
    """The run's report, its metrics beside production's, a link to the version, its training plot."""
    report = report.replace(rt.NEW_VERSION, f"version {version}", 1)
    artifacts.report(report, artifacts.artifact_key(name, "retrain"), f"retraining {name}")
    artifacts.metrics_table(name, challenger.metrics, incumbent.metrics if incumbent else None,
                            incumbent.version if incumbent else None)
    artifacts.version_link(registry, name, version, decision.promote)
    artifacts.training_plot(name, version, plot)


def _unchanged(params: RetrainParams, found: ri.Unchanged, inputs: dict, data: dict, validation, split) -> dict:
    """A retrain whose inputs a version already holds: its report and result, nothing else."""
    message = found.message(params.name)
    artifacts.report(ri.unchanged_markdown(params.name, found, inputs, data, validation),
                     artifacts.artifact_key(params.name, "retrain"), f"retraining {params.name}")
    get_run_logger().info("%s", message)
    return {"name": params.name, "version": found.version, "published": False, "promoted": False,
            "reasons": [message], "training_inputs": inputs["sha256"],
            "heldout": {"pairs": len(split.heldout), "fingerprint": split.fingerprint}}
