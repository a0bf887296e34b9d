"""Distillation (``learn/distill.py``): a smaller student from a teacher bundle's labels, validated
on the teacher's own validation rows; nonsense refused before anything is written."""

from __future__ import annotations

import pytest

from strseq_tasks.core.vocab import read_text
from strseq_tasks.learn.build import TrainingDataError
from strseq_tasks.learn.distill import distill, label_inputs, teacher_config, validation_split
from strseq_tasks.learn.training import TrainConfig, hash_unit
from strseq_tasks.serve.bundle import WEIGHTS_FILE, read_manifest
from strseq_tasks.serve.runtime import Normalizer

STUDENT = {"dec_hidden": 24, "enc_hidden": 16, "attn_dim": 16}  # smaller than TINY_MODEL's 48 / 24 / 24
FAST = TrainConfig(max_epochs=2, seed=0, precision="fp32")


def test_the_teachers_training_config_is_read_back(tiny_bundle):
    cfg = teacher_config(read_manifest(tiny_bundle))
    assert cfg == TrainConfig(max_epochs=3, seed=0)  # what the fixture trained it with


def test_labels_never_enter_the_validation_split(tiny_bundle, name_pairs):
    pairs = name_pairs[:80]
    teacher = Normalizer(tiny_bundle, programs=False)
    cfg = teacher_config(teacher.manifest)
    inputs = [a for a, _ in name_pairs[80:]] + [pairs[0][0]]
    labels = label_inputs(teacher, inputs, pairs, cfg, min_confidence=0.0)
    val, _ = validation_split(pairs, cfg, teacher.max_len)
    floor = max([cfg.val_fraction, *(hash_unit(a, cfg.seed) for a, _ in val)])
    assert labels.pairs and all(hash_unit(a, cfg.seed) > floor for a, _ in labels.pairs)
    assert pairs[0][0] not in {a for a, _ in labels.pairs}  # a pair's input keeps the pair's target
    assert labels.check and not {a for a, _ in labels.check} & {a for a, _ in labels.pairs}  # never taught
    assert len(labels.pairs) + len(labels.check) + labels.low_confidence + labels.left_out == len(
        {read_text(a, teacher.spaces) for a in inputs})


def test_a_student_is_written_smaller_and_validated_against_its_teacher(tiny_bundle, name_pairs, tmp_path,
                                                                        tiny_model_config):
    out = tmp_path / "student"
    outcome = distill(tiny_bundle, [a for a, _ in name_pairs[80:]], name_pairs[:80],
                      {**tiny_model_config, **STUDENT}, FAST, out, min_confidence=0.0)
    manifest, teacher = read_manifest(out), read_manifest(tiny_bundle)
    assert manifest["model_config"]["dec_hidden"] == 24 and outcome.labels > 0
    assert (out / WEIGHTS_FILE).stat().st_size < (tiny_bundle / WEIGHTS_FILE).stat().st_size
    assert manifest["data"]["pairs"] == 80 + outcome.labels
    assert manifest["data"]["validation_pairs"] == teacher["data"]["validation_pairs"]  # the same split
    assert manifest["data"]["distilled_from"]["labels"] == outcome.labels
    assert outcome.validation_rows > manifest["data"]["validation_pairs"]  # the pairs and their noisy copies
    assert 0.0 <= outcome.student_exact <= 1.0 and 0.0 <= outcome.teacher_exact <= 1.0
    assert outcome.check_rows == manifest["data"]["distilled_from"]["check_inputs"] > 0
    assert outcome.accepted == (outcome.student_exact >= outcome.teacher_exact - 0.002 - 1e-12
                                and outcome.agreement >= 0.998 - 1e-12)
    assert [p.text for p in Normalizer(out).normalize(["SMITH, John"])]  # it serves


def test_nonsense_is_refused_before_anything_is_written(tiny_bundle, name_pairs, tmp_path):
    out = tmp_path / "student"
    with pytest.raises(TrainingDataError, match="unlabeled inputs"):
        distill(tiny_bundle, [], name_pairs[:80], STUDENT, FAST, out)
    with pytest.raises(TrainingDataError, match="at least 4 pairs"):
        distill(tiny_bundle, ["SMITH, John"], name_pairs[:2], STUDENT, FAST, out)
    with pytest.raises(ValueError, match="over its teacher"):
        distill(tiny_bundle, ["SMITH, John"], name_pairs[:80], STUDENT, FAST, tiny_bundle)
    with pytest.raises(TrainingDataError, match="labelled none"):
        distill(tiny_bundle, ["SMITH, John"], name_pairs[:80], STUDENT, FAST, out, min_confidence=1.01)
    assert not out.exists()
