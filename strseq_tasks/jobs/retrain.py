"""The nightly retraining job as plain functions; ``flows/retrain.py`` wires them into a flow.

Parameters (``RetrainParams``), the stable held-out split, champion/challenger evaluation, the
promotion gates and the run report. Training itself is ``learn.build.train_bundle`` and
publishing ``registry.Registry``: nothing here is a second implementation of either.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from strseq_tasks.core.metrics import char_diff, jsonable, summarize
from strseq_tasks.data.safe_files import pid_alive
from strseq_tasks.data.sources import Source
from strseq_tasks.data.urls import MaskedUrl
from strseq_tasks.errors import StrseqError
from strseq_tasks.params import GATES, RETRAIN
from strseq_tasks.serve.bundle import fingerprint_pairs
from strseq_tasks.serve.gates import Decision, decide  # noqa: F401 - the retrain's gates, decided there
from strseq_tasks.serve.labels import check_description, check_tags
from strseq_tasks.serve.refs import check_name

log = logging.getLogger(__name__)
WORK_PREFIX = "strseq-retrain-"

if TYPE_CHECKING:
    from strseq_tasks.data.validation import ValidationReport

Pair = tuple[str, str]
HELDOUT_SALT = "strseq-heldout"


class Gates(BaseModel):
    """When a new model may replace the one in production (all must hold)."""

    model_config = ConfigDict(extra="forbid")
    min_exact_match: float = GATES["min_exact_match"].field()
    max_harm: float = GATES["max_harm"].field()
    max_regression: float = GATES["max_regression"].field()


_R = RETRAIN


class RetrainParams(BaseModel):
    """Everything one retraining run needs; safe defaults (validate, gate, never overwrite). Names,
    defaults, bounds and help are ``params.RETRAIN``'s, shared with ``strseq retrain``'s options.

    URLs (``pairs``, ``adapt_on``, ``registry``) are ``MaskedUrl``: the run connects with the URL
    given, while its JSON form (the flow run's parameters in Prefect, the version's record) shows
    any password as ``***``."""

    model_config = ConfigDict(extra="forbid")
    pairs: MaskedUrl = _R["pairs"].field()
    pairs_table: str | None = _R["pairs_table"].field()
    pairs_query: str | None = _R["pairs_query"].field()
    input_column: str = _R["input_column"].field()
    target_column: str = _R["target_column"].field()
    decisions: MaskedUrl | None = _R["decisions"].field()
    decisions_table: str | None = _R["decisions_table"].field()
    decisions_column: str | None = _R["decisions_column"].field()
    registry: MaskedUrl = _R["registry"].field()
    name: str = _R["name"].field()
    adapt_on: MaskedUrl | None = _R["adapt_on"].field()
    adapt_table: str | None = _R["adapt_table"].field()
    adapt_query: str | None = _R["adapt_query"].field()
    adapt_column: str = _R["adapt_column"].field()
    adapt_minutes: float = _R["adapt_minutes"].field()
    pretrained: str | None = _R["pretrained"].field()
    known_values: list[str] = _R["known_values"].field(default_factory=list)
    heldout_fraction: float = _R["heldout_fraction"].field()
    min_pairs: int = _R["min_pairs"].field()
    max_len: int = _R["max_len"].field()
    seed: int = _R["seed"].field()
    max_epochs: int = _R["max_epochs"].field()
    max_minutes: float | None = _R["max_minutes"].field()
    threads: int = _R["threads"].field()
    precision: Literal["int8", "fp32"] = _R["precision"].field()
    model_sizes: dict[str, int] = _R["model_sizes"].field(default_factory=dict)
    gates: Gates = Field(default_factory=Gates)
    promote: bool = _R["promote"].field()
    description: Annotated[str, AfterValidator(check_description)] | None = _R["description"].field()
    tags: Annotated[dict[str, str], AfterValidator(check_tags)] = _R["tags"].field(default_factory=dict)
    force: bool = _R["force"].field()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @model_validator(mode="after")
    def _sources(self) -> RetrainParams:
        self.pairs_source().check()
        if (self.decisions_table or self.decisions_column) and not self.decisions:
            raise ValueError("--decisions-table and --decisions-column filter --decisions: give the database too")
        if self.adapt_on:
            self.adapt_source().check()
        return self

    def pairs_source(self) -> Source:
        return Source(self.pairs, table=self.pairs_table, query=self.pairs_query)

    def adapt_source(self) -> Source | None:
        return Source(self.adapt_on, table=self.adapt_table, query=self.adapt_query) if self.adapt_on else None


class NotExported(StrseqError, RuntimeError):
    """A retrain trained a model whose export failed (its check refused it, or the exporter
    failed): nothing was published; the training is kept on the machine that ran it."""

    exit_code = 1  # the job ran and failed

    def __init__(self, name: str, failed):
        self.kept = failed.kept
        reason = (str(failed.cause).splitlines() or [type(failed.cause).__name__])[0]
        super().__init__(f"{name} was trained but not exported ({reason}): nothing was published and production is "
                         f"unchanged. The training is kept in {failed.kept}; `strseq export --from {failed.kept} "
                         "--out FOLDER` writes its bundle (fp32 graphs), usable as --model FOLDER")


# --- data ----------------------------------------------------------------------------------


def frame_to_pairs(frame: pd.DataFrame, max_len: int) -> tuple[list[Pair], int]:
    """Validated pairs (columns row, input, target) by the rules every pair follows (``core.pairs``,
    as ``strseq train`` reads them): NFC, each pair once; and the count of pairs dropped."""
    from strseq_tasks.core.pairs import check_pairs

    checked = check_pairs(zip(frame["row"], frame["input"], frame["target"], strict=True), max_len)
    return checked.pairs, checked.duplicates


def heldout_unit(text: str) -> float:
    digest = hashlib.sha256(f"{HELDOUT_SALT}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Split:
    train: list[Pair]
    heldout: list[Pair]

    @property
    def fingerprint(self) -> str:
        return fingerprint_pairs(self.heldout)


def split_heldout(pairs: Sequence[Pair], fraction: float) -> Split:
    """Held-out membership decided by a hash of the input alone: a pair never changes sides as
    the pairs grow night after night (so champion and challenger are compared on stable ground)."""
    heldout = [p for p in pairs if heldout_unit(p[0]) < fraction]
    train = [p for p in pairs if heldout_unit(p[0]) >= fraction]
    return Split(train, heldout)


def preflight(params: RetrainParams) -> None:
    """What can be checked before a retrain starts, writing nothing: the pairs can be read (file,
    table or query, with their columns), the registry can be published to, the --adapt-on strings
    and the known-values files can be read, and --pretrained is a pretrained model or an LM. The CLI
    runs it before Prefect starts (a mistake is one error line and no flow run); the flow runs it
    first too, so a scheduled retrain fails in seconds, not after hours of training."""
    from strseq_tasks.data.corpus import read_corpus
    from strseq_tasks.data.files import InputFileError
    from strseq_tasks.data.sources import read_pair_frame, read_strings
    from strseq_tasks.learn.transfer import is_transducer, load_transducer
    from strseq_tasks.serve.bundle import LM_FILES, read_manifest
    from strseq_tasks.serve.bundle_schema import LM_FORMAT
    from strseq_tasks.serve.registry import Registry

    read_pair_frame(params.pairs_source(), params.input_column, params.target_column)
    Registry(params.registry).check_writable()
    if params.decisions:  # the database answers, and its decisions can be read
        from strseq_tasks.data.db import create_engine
        from strseq_tasks.jobs.review_queue import decision_pairs

        engine = create_engine(params.decisions)
        try:
            decision_pairs(engine, table=params.decisions_table, column=params.decisions_column)
        finally:
            engine.dispose()
    if params.adapt_on:
        read_strings(params.adapt_source(), params.adapt_column)
    if params.known_values:
        read_corpus(params.known_values, max_len=10_000)
    if params.pretrained not in (None, "default", SCRATCH):
        folder = Path(params.pretrained)
        if is_transducer(folder):
            if params.adapt_on:
                raise InputFileError(folder, "--adapt-on adapts a language model, and this --pretrained folder is "
                                             "a pretrained encoder-decoder (leave --pretrained out to adapt the "
                                             "shipped LM)")
            load_transducer(folder)
        else:
            read_manifest(folder, fmt=LM_FORMAT, required=LM_FILES, kind="language-model")


SCRATCH = "none"  # --pretrained none: random weights


def start_from(pretrained: str | None) -> str | None:
    """What training starts from (``train_bundle``'s ``pretrained``): the shipped pretrained model
    unless told, None for ``none``."""
    from strseq_tasks.learn.build import DEFAULT_PRETRAINED

    return None if pretrained == SCRATCH else pretrained or DEFAULT_PRETRAINED


def read_known(files: Sequence[str], pairs: Sequence[Pair]):
    """Known values from ``files`` plus the pairs' targets, or None without files."""
    if not files:
        return None
    from strseq_tasks.core.known import KnownValues
    from strseq_tasks.data.corpus import read_corpus

    return KnownValues([*read_corpus(files, max_len=10_000).texts, *(b for _, b in pairs)])


# --- evaluation and gates ------------------------------------------------------------------


@dataclass
class Evaluation:
    metrics: dict
    outputs: list[str]
    confidence: list[float]
    version: int | None = None  # registry version (the champion's)
    harmed: list[tuple[str, str]] = field(default_factory=list)  # clean values the model changed: (value, output)


def clean_probes(heldout: Sequence[Pair], pairs: Sequence[Pair]) -> list[str]:
    """Clean values the model must leave as they are, to measure harm on more than the few held-out
    pairs whose input is already clean: the held-out targets (a normalizer must be idempotent
    on its own output) and held-out inputs equal to their target. A target that is also the
    input of a pair with another target is left out (the pairs themselves say it is not clean)."""
    moved = {a for a, b in pairs if a != b}
    return sorted({b for _, b in heldout if b not in moved})


def evaluate_bundle(bundle: Path, heldout: Sequence[Pair], version: int | None = None,
                    probes: Sequence[str] = ()) -> Evaluation:
    """Held-out metrics of a bundle through the production path (onnxruntime); with ``probes``
    (``clean_probes``), harm is the share of those clean values changed."""
    from strseq_tasks.serve.loading import open_model

    inputs, targets = [a for a, _ in heldout], [b for _, b in heldout]
    predictions = open_model(bundle).normalizer.normalize([*inputs, *probes])
    outputs = [p.text for p in predictions[:len(inputs)]]
    confidence = [p.confidence for p in predictions[:len(inputs)]]
    metrics = summarize(inputs, targets, outputs, confidence)
    harmed = []
    if probes:
        harmed = [(v, p.text) for v, p in zip(probes, predictions[len(inputs):]) if p.text != v]
        metrics.update(harm=len(harmed) / len(probes), clean_rows=len(probes))
    return Evaluation(metrics, outputs, confidence, version, harmed)


def champion_record(evaluation: Evaluation | None) -> dict | None:
    return None if evaluation is None else {"version": evaluation.version, "metrics": jsonable(evaluation.metrics)}


# --- report --------------------------------------------------------------------------------


def worst_errors(heldout: Sequence[Pair], evaluation: Evaluation, limit: int = 10) -> list[dict]:
    """Wrong held-out rows, most confident first (a confident mistake is the one to look at)."""
    rows = [{"input": a, "expected": b, "predicted": o, "confidence": round(c, 3), "diff": char_diff(o, b)}
            for (a, b), o, c in zip(heldout, evaluation.outputs, evaluation.confidence) if o != b]
    return sorted(rows, key=lambda r: -r["confidence"])[:limit]


METRIC_LABELS = {"exact_match": "exact match", "cer": "character error rate",
                 "harm": "harm (clean held-out values changed)",
                 "accuracy_at_50": "accuracy, most confident 50%", "coverage_at_99": "coverage at 99% precision"}


def _pct(value) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.1f}%"


def _md(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", "\\n")


def validation_line(report: ValidationReport) -> str:
    met = len(report.checks) - len(report.failures) - len(report.warnings)
    line = (f"Validation: {'passed' if report.success else 'failed'} against suite `{report.suite}` "
            f"({met} of {len(report.checks)} expectations met")
    warned = "; ".join(f"{c.expectation} on {c.column or 'the table'}: {c.unexpected} row(s)" for c in report.warnings)
    return line + (f"; warnings: {warned})." if warned else ").")


def training_plot(bundle: Path, heldout: Sequence[Pair], evaluation: Evaluation) -> bytes:
    """``training.png`` beside the version: learning curve and held-out reliability diagram."""
    import json

    from strseq_tasks.core.metrics import reliability_table
    from strseq_tasks.learn.plots import training_png

    manifest = json.loads((Path(bundle) / "manifest.json").read_text(encoding="utf-8"))
    correct = [o == b for o, (_, b) in zip(evaluation.outputs, heldout)]
    return training_png(manifest["training"]["history"], reliability_table(correct, evaluation.confidence),
                        f"{manifest['name']}: {len(heldout)} held-out pairs")


NEW_VERSION = "the new version"  # in a report written before the registry numbered it


def report_markdown(name: str, data: dict, split: Split, challenger: Evaluation, champion: Evaluation | None,
                    decision: Decision, version: int | None, heldout: Sequence[Pair],
                    validation: ValidationReport | None = None) -> str:
    """The run report a person reads (a Prefect artifact, and ``report.md`` beside the version)."""
    label = NEW_VERSION if version is None else f"version {version}"
    verdict = (f"{label} **promoted to production**" if decision.promote
               else f"{label} published as candidate, **not promoted**")
    lines = [f"## Retraining `{name}`: {verdict}", "",
             f"Pairs: {data['rows']} rows from {data['source']} ({data['duplicates']} duplicates dropped); "
             f"{len(split.train)} for training, {len(split.heldout)} held out "
             f"(held-out set fingerprint `{split.fingerprint[:16]}`).", ""]
    if validation is not None:
        lines += [validation_line(validation), ""]
    lines += ["| metric | new model | production |", "|---|---:|---:|"]
    for key, label in METRIC_LABELS.items():
        old = _pct(champion.metrics.get(key)) if champion else "none"
        lines.append(f"| {label} | {_pct(challenger.metrics.get(key))} | {old} |")
    if champion is not None:
        lines.append(f"\nProduction was version {champion.version}.")
    lines += ["", "### Promotion gates", ""] + [f"- {r}" for r in decision.reasons]
    lines += ["", "Learning curve and reliability diagram: `training.png` beside the version in the registry."]
    if challenger.harmed:
        lines += ["", f"### Clean held-out values the new model changes ({len(challenger.harmed)})", "",
                  "| clean value | output | output -> value |", "|---|---|---|"]
        lines += [f"| {_md(v)} | {_md(o)} | `{_md(char_diff(o, v))}` |" for v, o in challenger.harmed[:10]]
    errors = worst_errors(heldout, challenger)
    if errors:
        lines += ["", "### Worst held-out errors of the new model (most confident first)", "",
                  "| input | expected | predicted | confidence | predicted -> expected |", "|---|---|---|---:|---|"]
        lines += [f"| {_md(e['input'])} | {_md(e['expected'])} | {_md(e['predicted'])} | {e['confidence']} | "
                  f"`{_md(e['diff'])}` |" for e in errors]
    return "\n".join(lines)


@contextlib.contextmanager
def work_folder(parent: str | Path | None = None) -> Iterator[Path]:
    """A retraining's scratch folder (``strseq-retrain-PID-*`` in the system's temporary folder),
    removed when the run ends. A run killed with SIGKILL leaves its folder (the bundle it was
    building, ~10 MB): the next run removes those whose process is gone."""
    parent = Path(parent or tempfile.gettempdir())
    pattern = re.compile(rf"^{re.escape(WORK_PREFIX)}(\d+)-")
    for left in parent.glob(f"{WORK_PREFIX}*"):
        match = pattern.match(left.name)
        if match and left.is_dir() and not pid_alive(int(match.group(1))):
            shutil.rmtree(left, ignore_errors=True)  # another user's stays (not ours to remove)
            if not left.exists():
                log.info("removed %s, left by a retraining that was killed", left)
    with tempfile.TemporaryDirectory(prefix=f"{WORK_PREFIX}{os.getpid()}-", dir=parent) as tmp:
        yield Path(tmp)
