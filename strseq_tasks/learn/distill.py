"""Sequence-level distillation: a smaller student trained on a teacher bundle's own outputs.

The teacher (a verified bundle, decoded by onnxruntime with layout programs off) labels
unlabeled inputs, typically the column it is to clean; the student trains with ``train_bundle``
on the original pairs plus those ``(input, teacher output)`` pairs. What it takes:

- **The original pairs stay first.** A labelled input that is also a pair's input is dropped (the
  person's target wins), and the pairs keep their validation split: labelled inputs whose hash
  would put them among the validation rows are left out, so the student validates on exactly the
  teacher's validation pairs (and their noisy copies), with the teacher's seed and split settings.
- **Doubtful labels are left out.** A label below ``min_confidence`` (the teacher's calibrated
  confidence) is dropped, rather than taught: most of them are wrong, and the student does not
  have to copy a teacher's mistakes to be as good as it.
- **No extra augmentation here.** Training already adds noisy copies of every pair, labelled
  ones included (``core/augment.py``), so the teacher's outputs get the same noise as the pairs.

The student serves only if (``DistillOutcome.accepted``) its validation exact match is within
``MAX_VAL_DROP`` of the teacher's, both decoded by onnxruntime on the same rows, **and** it agrees
with the teacher on at least ``1 - MAX_VAL_DROP`` of the check inputs: a share (``CHECK_SHARE``) of
the labelled inputs, chosen by a hash and never trained on. Validation alone is not enough: it
is drawn like the pairs, and on dates a student 0.9 points *above* its teacher there was 5.6 points
below it on held-out rows of the column (``benchmarks/distill_study.py``). Where the student agrees
with the teacher, it is as right as the teacher, so agreement bounds what it can lose on the column.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from strseq_tasks.core.augment import AugmentConfig
from strseq_tasks.core.vocab import read_text
from strseq_tasks.learn.build import TrainingDataError, train_bundle
from strseq_tasks.learn.training import TrainConfig, hash_unit, split_for_training
from strseq_tasks.serve.runtime import Normalizer

log = logging.getLogger("strseq")

Pair = tuple[str, str]

MAX_VAL_DROP = 0.002  # the student may lose at most 0.2 points of validation exact match to serve
MIN_CONFIDENCE = 0.5  # teacher labels below this calibrated confidence are not taught
CHECK_SHARE = 0.2  # of the labelled inputs, held out to measure the student's agreement with the teacher
CHECK_SEED = 7_919  # hash seed (beside the training seed) of which inputs are check inputs
# the teacher's settings that decide the validation split (the student must validate on the same rows)
SPLIT_SETTINGS = ("seed", "val_fraction", "min_val", "val_copies")


@dataclass(frozen=True)
class TeacherLabels:
    pairs: list[Pair]  # (input as the teacher read it, teacher output), each input once
    low_confidence: int  # labels dropped below the confidence floor
    left_out: int  # inputs not labelled: a pair's input, in the validation's hash range, empty or too long
    # held out of training, at any confidence: the student's agreement with the teacher is measured on them
    check: list[Pair] = field(default_factory=list)


@dataclass(frozen=True)
class DistillOutcome:
    path: Path
    manifest: dict
    labels: int  # teacher-labelled pairs the student trained on (beside the original pairs)
    low_confidence: int
    left_out: int
    validation_rows: int  # the validation pairs and their noisy copies, as the teacher was validated
    teacher_exact: float  # exact match on those rows, onnxruntime, programs off
    student_exact: float
    check_rows: int = 0  # check inputs (labelled, not trained on)
    agreement: float = float("nan")  # share of the check inputs where the student's output is the teacher's

    @property
    def accepted(self) -> bool:
        """Whether the student may serve instead of the teacher: within ``MAX_VAL_DROP`` on validation,
        and agreeing with it on at least ``1 - MAX_VAL_DROP`` of the check inputs (none: refused)."""
        return (self.student_exact >= self.teacher_exact - MAX_VAL_DROP - 1e-12
                and self.agreement >= 1 - MAX_VAL_DROP - 1e-12)

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "manifest"}, "path": str(self.path),
                "accepted": self.accepted, "max_val_drop": MAX_VAL_DROP}


def teacher_config(manifest: dict) -> TrainConfig:
    """The training configuration a bundle records (fields this version does not know are ignored)."""
    recorded = dict(manifest.get("training_config") or {})
    augment = AugmentConfig(**{f.name: recorded["augment"][f.name] for f in fields(AugmentConfig)
                               if f.name in (recorded.get("augment") or {})})
    known = {f.name for f in fields(TrainConfig)} - {"augment"}
    return TrainConfig(**{k: v for k, v in recorded.items() if k in known}, augment=augment)


def validation_split(pairs: Sequence[Pair], cfg: TrainConfig, max_len: int) -> tuple[list[Pair], list[Pair]]:
    """The validation pairs ``fit`` holds out of ``pairs`` under ``cfg``, and the rows it validates
    on (those pairs and their noisy copies)."""
    _, _, _, val, _, val_set = split_for_training(pairs, cfg, max_len)
    return val, val_set


def label_inputs(teacher: Normalizer, inputs: Sequence[str], pairs: Sequence[Pair], cfg: TrainConfig,
                 min_confidence: float = MIN_CONFIDENCE) -> TeacherLabels:
    """The teacher's labels for ``inputs`` that the student may train on (see the module's docstring):
    read as the teacher reads them, distinct, not a pair's input, hashed above every validation
    pair's input and the split's fraction (so ``fit`` keeps the same validation split), confident enough;
    and the check inputs (``CHECK_SHARE`` of them, by a hash), apart and at any confidence."""
    val, _ = validation_split(pairs, cfg, teacher.max_len)
    # above the split's fraction too: fit counts every input hashed below it as a validation row
    cutoff = max([cfg.val_fraction, *(hash_unit(a, cfg.seed) for a, _ in val)])
    taken = {read_text(a, teacher.spaces) for a, _ in pairs} | {a for a, _ in pairs}
    read = list(dict.fromkeys(read_text(t, teacher.spaces) for t in inputs))
    usable = [t for t in read if t and len(t) <= teacher.max_len and t not in taken
              and hash_unit(t, cfg.seed) > cutoff]
    predictions = teacher.normalize(usable)
    checked = [hash_unit(t, cfg.seed + CHECK_SEED) < CHECK_SHARE for t in usable]
    taught = [(t, p) for t, p, c in zip(usable, predictions, checked) if not c]
    kept = [(t, p.text) for t, p in taught if p.confidence >= min_confidence]
    check = [(t, p.text) for t, p, c in zip(usable, predictions, checked) if c]
    return TeacherLabels(kept, len(taught) - len(kept), len(read) - len(usable), check)


def validation_exact(bundle: Normalizer, rows: Sequence[Pair]) -> float:
    """Exact match of a bundle (as loaded) on ``rows``."""
    outputs = bundle.normalize([a for a, _ in rows])
    return sum(p.text == t for p, (_, t) in zip(outputs, rows)) / max(len(rows), 1)


def distill(
    teacher_path: Path | str,
    inputs: Sequence[str],
    pairs: Sequence[Pair],
    student_sizes: dict,
    train_cfg: TrainConfig,
    out_dir: Path | str,
    min_confidence: float = MIN_CONFIDENCE,
    pretrained: Path | str | None = None,
    overwrite: bool = False,
) -> DistillOutcome:
    """Train a student of ``student_sizes`` (``ModelConfig`` overrides) on ``pairs`` plus the
    teacher's labels of ``inputs`` into ``out_dir``; both validation exact matches.

    ``train_cfg``'s split settings (``SPLIT_SETTINGS``) are replaced by the teacher's, so that both
    validate on the same rows. ``pretrained`` as ``train_bundle`` takes it: None trains from random
    weights (a student smaller than the shipped pretrained model cannot start from it).
    """
    teacher_path, out_dir = Path(teacher_path), Path(out_dir)
    if not inputs:
        raise TrainingDataError("distillation needs unlabeled inputs for the teacher to label, got none")
    if len(pairs) < 4:
        raise TrainingDataError(f"need at least 4 pairs to train (and hold some out), got {len(pairs)}")
    if out_dir.resolve() == teacher_path.resolve():
        raise ValueError(f"the student cannot be written over its teacher ({teacher_path})")
    teacher = Normalizer(teacher_path, threads=1, programs=False)
    recorded = teacher_config(teacher.manifest)
    cfg = replace(train_cfg, **{k: getattr(recorded, k) for k in SPLIT_SETTINGS})
    labels = label_inputs(teacher, inputs, pairs, cfg, min_confidence)
    if not labels.pairs:
        raise TrainingDataError(f"the teacher labelled none of {len(inputs)} inputs usably ({labels.low_confidence} "
                                f"below confidence {min_confidence}, {labels.left_out} left out)")
    log.info("distilling %s: %d pairs + %d teacher labels (%d below confidence %.2f, %d inputs left out)",
             teacher_path, len(pairs), len(labels.pairs), labels.low_confidence, min_confidence, labels.left_out)
    info = {"distilled_from": {"teacher": str(teacher_path), "teacher_fingerprint":
                               teacher.manifest["data"]["fingerprint"], "labels": len(labels.pairs),
                               "low_confidence": labels.low_confidence, "min_confidence": min_confidence,
                               "check_inputs": len(labels.check)}}
    outcome = train_bundle([*pairs, *labels.pairs], out_dir, cfg, student_sizes, overwrite=overwrite,
                           data_info=info, pretrained=pretrained)
    student_val = outcome.manifest["data"]["validation_pairs"]
    if student_val != teacher.manifest["data"]["validation_pairs"]:
        log.warning("the student validated on %d pairs, the teacher on %d: its split differs", student_val,
                    teacher.manifest["data"]["validation_pairs"])
    _, rows = validation_split(pairs, cfg, teacher.max_len)
    student = Normalizer(out_dir, threads=1, programs=False)
    agreement = validation_exact(student, labels.check) if labels.check else float("nan")
    return DistillOutcome(out_dir, outcome.manifest, len(labels.pairs), labels.low_confidence, labels.left_out,
                          len(rows), validation_exact(teacher, rows), validation_exact(student, rows),
                          len(labels.check), agreement)
