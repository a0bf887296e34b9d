"""What strseq promises to return unchanged (status ``empty`` and ``too_long``) comes back byte for
byte as given: not NFC-normalized, not NFKC-folded. Through ``Normalizer``, several worker
processes, ``normalize_series`` and the real ``strseq predict`` (CSV and Parquet)."""

from __future__ import annotations

import unicodedata

import pandas as pd
import pytest

from strseq_tasks.core.vocab import normalize_text
from strseq_tasks.serve.runtime import Normalizer
from strseq_tasks.serve.series import normalize_series
from strseq_tasks.serve.workers import normalize_parallel

from .cli_harness import read_csv_raw, run_strseq, write_csv

# kind -> a value longer than the tiny model's 64 characters (even after NFC)
TOO_LONG = {
    "decomposed accents (NFD)": unicodedata.normalize("NFD", "José Müller-Lüdenscheidt, Åsa Øster " * 3),
    "angstrom and ohm signs (NFC maps them)": "\u212b\u2126 measured " * 8,
    "CJK compatibility ideographs": "\uf900\uf901\uf902 " * 24,
    "Hangul as conjoining jamo": "\u1100\u1161\u11a8 " * 40,
    "mixed NFC and NFD": "Jos\u00e9 Jose\u0301 " * 10,
    "ligatures and full-width letters (NFKC only)": "\ufb01nance \ufb02ow \uff21\uff22 " * 6,
    "superscripts and a trailing combining mark": "x\u00b2 + y\u00b3 " * 8 + "e\u0301",
}
VALUES = {**TOO_LONG, "empty": ""}


def _check_values() -> None:
    assert all(len(normalize_text(v)) > 64 for v in TOO_LONG.values())
    assert sum(normalize_text(v) != v for v in TOO_LONG.values()) >= 5  # most would change under NFC


def _unchanged(texts, predictions) -> list[str]:
    """Kinds whose promised-unchanged prediction is not the input's exact bytes."""
    kinds = dict(zip(VALUES.values(), VALUES))
    return [kinds[t] for t, p in zip(texts, predictions) if p.text.encode() != t.encode()]


@pytest.fixture(scope="module")
def normalizer(tiny_bundle) -> Normalizer:
    _check_values()
    return Normalizer(tiny_bundle)


def test_normalizer_returns_too_long_and_empty_values_as_given(normalizer):
    texts = list(VALUES.values()) + ["SMITH, John"]
    predictions = normalizer.normalize(texts)
    assert [p.status for p in predictions] == ["too_long"] * len(TOO_LONG) + ["empty", "ok"]
    assert _unchanged(texts[:-1], predictions[:-1]) == []


def test_worker_processes_return_them_as_given(normalizer):
    texts = list(VALUES.values()) + [normalize_text(v) for v in TOO_LONG.values()] + ["SMITH, John"]
    predictions = normalize_parallel(normalizer, texts, workers=2)
    assert [p.text for p in predictions[:-1]] == texts[:-1]  # the NFD and NFC forms each as given
    assert [p.status for p in predictions].count("too_long") == 2 * len(TOO_LONG)


def test_normalize_series_returns_them_as_given(normalizer):
    values = pd.Series(list(VALUES.values()) + [None], index=[f"k{i}" for i in range(len(VALUES) + 1)])
    out = normalize_series(values, normalizer, threshold=0.5)
    assert out["prediction"].tolist()[:-1] == list(VALUES.values())
    assert out["prediction"].tolist()[-1] is None
    assert not out["changed"].iloc[:-1].any()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_predict_writes_them_as_given(fmt, normalizer, tiny_bundle, tmp_path, ledger):
    texts = list(VALUES.values())
    source, output = tmp_path / f"in.{fmt}", tmp_path / f"out.{fmt}"
    if fmt == "csv":
        write_csv(source, ["input"], [[t] for t in texts])
    else:
        pd.DataFrame({"input": texts}).to_parquet(source)
    proc = run_strseq("predict", "--model", tiny_bundle, "--input", source, "--out", output, "--workers", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    if fmt == "csv":
        header, rows = read_csv_raw(output)
        frame = pd.DataFrame(rows, columns=header)
    else:
        frame = pd.read_parquet(output)
    for kind, (value, prediction) in zip(VALUES, zip(frame["input"], frame["prediction"])):
        ledger("hostile input", f"predict returns a too-long or empty value unchanged: {kind}", fmt,
               rows_lost=int(value != VALUES[kind]), rows_double_applied=0,
               error="" if prediction == value else "prediction is not the value as given")
    assert frame["input"].tolist() == texts
    assert frame["prediction"].tolist() == texts
    assert frame["status"].tolist() == ["too_long"] * len(TOO_LONG) + ["empty"]
