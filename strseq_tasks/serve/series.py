"""strseq on pandas: normalize a Series (or a DataFrame column) in one call.

    from strseq_tasks.serve.series import normalize_series
    out = normalize_series(df["name"], "models/names@production")
    df["name_clean"] = out["prediction"].where(out["confidence"] >= 0.9, df["name"])

Torch-free (onnxruntime). Nulls and empty strings are passed through with status ``empty``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from strseq_tasks.serve.loading import open_model
from strseq_tasks.serve.runtime import Normalizer


def normalize_series(values: pd.Series, model: str | Path | Normalizer, threshold: float | None = None,
                     batch_size: int = 64) -> pd.DataFrame:
    """One row per value, same index: ``prediction``, ``confidence``, ``status``, ``changed``.

    With ``threshold``, predictions below it are replaced by the input (``status`` says
    ``below_threshold``), so ``prediction`` can be written back as is. A reference such as
    ``models/names@production`` is resolved on every call (``open_model``).
    """
    normalizer = model if isinstance(model, Normalizer) else open_model(model).normalizer
    texts = ["" if v is None or (not isinstance(v, str) and pd.isna(v)) else v for v in values]
    bad = [(i, v) for i, v in zip(values.index, texts) if not isinstance(v, str)]
    if bad:
        index, value = bad[0]
        raise TypeError(f"normalize_series needs text: index {index!r} holds {type(value).__name__} {value!r}")
    predictions = normalizer.normalize(texts, batch_size=batch_size)
    nulls = values.isna().to_numpy()
    text, status = [], []
    for value, prediction, null in zip(texts, predictions, nulls):
        low = threshold is not None and prediction.status == "ok" and prediction.confidence < threshold
        text.append(None if null else value if low else prediction.text)
        status.append("below_threshold" if low else prediction.status)
    return pd.DataFrame({
        "prediction": pd.Series(text, index=values.index, dtype=object),
        "confidence": [p.confidence for p in predictions],
        "status": status,
        "changed": [p is not None and p != t for p, t in zip(text, texts)],
    }, index=values.index)
