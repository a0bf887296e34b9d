from strseq_tasks.serve.runtime import Normalizer


def test_tiny_bundle_predicts(tiny_bundle):
    normalizer = Normalizer(tiny_bundle)
    out = normalizer.normalize(["SMITH, John", ""])
    assert len(out) == 2 and out[1].status == "empty"
    assert 0.0 <= out[0].confidence <= 1.0
