"""What decides a retrain's model, as one fingerprint; and the version that already holds it.

Training is seeded: the same pairs, known values, parameters and base model, trained by the same
strseq, give the same graphs, vocabulary and calibration (``serve/identity.py``). A nightly
retrain on unchanged inputs would spend its hours making that model again and publish it as one
more version. So the retrain fingerprints its inputs (``training_inputs``, kept in the manifest
of every version it publishes) and, before training, looks for a version that holds the same
fingerprint: production's, else the newest version (a candidate the gates refused: the same
inputs would make it, and refuse it, again). When one does, nothing is trained, published or
promoted, and the run says which version that is; ``force`` trains anyway.

What the fingerprint leaves out decides nothing about the model: the registry, the model's name,
the gates and ``promote`` (they decide where it goes), ``min_pairs`` (validation), where the pairs
were read from (their content is what counts, in any order), and the torch and onnxruntime
versions (strseq's version pins the code).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from strseq_tasks import __version__
from strseq_tasks.jobs.retrain import SCRATCH, Pair, RetrainParams, validation_line
from strseq_tasks.serve.bundle import fingerprint_pairs
from strseq_tasks.serve.refs import PRODUCTION

if TYPE_CHECKING:
    from strseq_tasks.core.known import KnownValues
    from strseq_tasks.data.validation import ValidationReport
    from strseq_tasks.learn.training import TrainConfig
    from strseq_tasks.serve.registry import Registry


def train_config(params: RetrainParams) -> TrainConfig:
    """The training settings of a retrain (what it trains with, and part of its fingerprint)."""
    from strseq_tasks.learn.training import TrainConfig

    return TrainConfig(seed=params.seed, max_epochs=params.max_epochs, max_minutes=params.max_minutes,
                       threads=params.threads, precision=params.precision)


def model_overrides(params: RetrainParams) -> dict:
    """The model sizes a retrain asks for (``train_bundle``'s ``model_overrides``)."""
    return {**params.model_sizes, "max_len": params.max_len}


def adapt_parent(params: RetrainParams) -> Path:
    """The LM that ``--adapt-on`` adapts: the one named by ``--pretrained``, else the shipped LM."""
    from strseq_tasks.learn.build import DEFAULT_LM
    from strseq_tasks.learn.lm_bundle import default_lm_path

    return default_lm_path() if params.pretrained in (None, DEFAULT_LM, SCRATCH) else Path(params.pretrained)


def base_model(start: str | Path | None) -> dict:
    """What fine-tuning starts from (``start_from``'s answer, or ``adapt_parent``), by identity:
    the format and manifest checksum of the pretrained model or LM (verified), not its path."""
    from strseq_tasks.learn.build import DEFAULT_LM
    from strseq_tasks.learn.transfer import TRANSDUCER_FILES, default_pretrained_path, is_transducer
    from strseq_tasks.serve.bundle import LM_FILES, read_manifest
    from strseq_tasks.serve.bundle_schema import LM_FORMAT, TRANSDUCER_FORMAT

    if start is None:
        return {"start": SCRATCH}
    folder = default_pretrained_path() if start == DEFAULT_LM else Path(start)
    if is_transducer(folder):
        manifest = read_manifest(folder, fmt=TRANSDUCER_FORMAT, required=TRANSDUCER_FILES, kind="pretrained model")
    else:
        manifest = read_manifest(folder, fmt=LM_FORMAT, required=LM_FILES, kind="language-model")
    return {"start": manifest["format"], "manifest_sha256": manifest["manifest_sha256"]}


def adapted_base(params: RetrainParams, texts: Sequence[str]) -> dict:
    """The base of a retrain with ``--adapt-on``: the LM it adapts, the strings (in order, as a
    corpus is read) and the adaptation's budget."""
    from strseq_tasks.learn.lm_bundle import fingerprint_corpus

    return {"adapted_from": base_model(adapt_parent(params)), "strings": fingerprint_corpus(texts),
            "adapt_minutes": params.adapt_minutes}


def training_inputs(params: RetrainParams, pairs: Sequence[Pair], known: KnownValues | None, base: dict) -> dict:
    """Everything that decides the model a retrain trains, and its sha256 (``sha256``): the
    validated pairs (any order), the known values, the base model, the training settings and
    model sizes, the held-out share (which pairs it trains on) and strseq's version."""
    parts = {"pairs": fingerprint_pairs(pairs), "known_values": None if known is None else known.fingerprint(),
             "base_model": base, "training_config": train_config(params).to_dict(),
             "model_sizes": model_overrides(params), "heldout_fraction": params.heldout_fraction,
             "strseq_version": __version__}
    body = json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()
    return {"sha256": hashlib.sha256(body).hexdigest(), **parts}


@dataclass(frozen=True)
class Unchanged:
    """A version that already holds a retrain's inputs."""

    version: int
    production: int | None  # the version in production (None: none yet)

    @property
    def where(self) -> str:
        """'1 (in production)', '2 (the newest version; production is version 1)'."""
        if self.version == self.production:
            return f"{self.version} (in production)"
        other = f"production is version {self.production}" if self.production is not None else "none is in production"
        return f"{self.version} (the newest version; {other})"


    def message(self, name: str) -> str:
        """What the log, the report's reasons and ``strseq retrain`` say."""
        return (f"unchanged: {name} version {self.where} was trained on these same pairs, known values, parameters "
                "and base model; nothing trained, published or promoted (--force trains a new version anyway)")


def holding_version(registry: Registry, name: str, inputs: dict) -> Unchanged | None:
    """The version trained on these ``training_inputs``: production's, else the newest one's;
    None when neither was (or ``name`` has no version yet)."""
    if name not in registry.names():
        return None
    production = registry.resolve(name, PRODUCTION) if registry.alias(name, PRODUCTION) is not None else None
    for version in dict.fromkeys(v for v in (production, registry.versions(name)[-1]) if v is not None):
        held = registry.manifest(name, version).get("training_inputs") or {}
        if held.get("sha256") == inputs["sha256"]:
            return Unchanged(version, production)
    return None


def unchanged_markdown(name: str, found: Unchanged, inputs: dict, data: dict,
                       validation: ValidationReport | None = None) -> str:
    """The run report of a retrain that found its inputs unchanged (a Prefect artifact)."""
    lines = [f"## Retraining `{name}`: inputs unchanged, **nothing published**", "",
             f"Version {found.where} was trained on these same pairs, known values, parameters and base "
             f"model (training inputs `{inputs['sha256'][:16]}`): training again would make that model again. "
             "Nothing was trained, published or promoted. `--force` (`force=True`) trains and publishes a new "
             "version anyway.", "",
             f"Pairs: {data['rows']} rows from {data['source']} ({data['duplicates']} duplicates dropped), "
             f"fingerprint `{inputs['pairs'][:16]}`."]
    if validation is not None:
        lines += ["", validation_line(validation)]
    return "\n".join(lines)
