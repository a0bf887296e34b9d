"""A model trained on pairs whose targets have only single spaces reads a tab, a non-breaking
space or doubled spaces in an input as the space it learned, in training and in serving alike."""

from __future__ import annotations

import json

from strseq_tasks.serve.runtime import STATUS_EMPTY, Normalizer


def test_a_bundle_records_its_whitespace_rule_and_serving_follows_it(lower_bundle):
    manifest = json.loads((lower_bundle / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["decoding"]["spaces"] == "collapse"  # lowercase_pairs: targets are single-spaced
    normalizer = Normalizer(lower_bundle)
    plain = normalizer.normalize(["MARY JONES"])[0]
    variants = ["MARY\tJONES", "MARY\u00a0JONES", "MARY   JONES", "  MARY JONES \n"]
    for variant, prediction in zip(variants, normalizer.normalize(variants)):
        assert (prediction.text, prediction.confidence) == (plain.text, plain.confidence), variant
    blank = normalizer.normalize(["\t\u00a0 "])[0]
    assert (blank.text, blank.status) == ("\t\u00a0 ", STATUS_EMPTY)  # returned as given


def test_a_bundle_without_the_rule_reads_whitespace_as_written(lower_bundle, tmp_path):
    """Bundles written before the rule existed keep their behaviour (no `decoding.spaces`: keep)."""
    import shutil

    from integration.test_bundle_sense import reseal

    copy = tmp_path / "old"
    shutil.copytree(lower_bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
    del manifest["decoding"]["spaces"]
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    reseal(copy)
    old = Normalizer(copy)
    assert old.spaces == "keep"
    assert old.normalize(["\t\u00a0 "])[0].status != STATUS_EMPTY  # decoded, as before
