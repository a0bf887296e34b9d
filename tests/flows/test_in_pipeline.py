"""strseq inside users' own code: the pandas helper and the Prefect task."""

from __future__ import annotations

import pandas as pd
import pytest
from prefect import flow

from strseq_tasks.serve.runtime import Normalizer
from strseq_tasks.serve.series import normalize_series
from strseq_tasks.tasks import normalize_records


def test_normalize_series_keeps_the_index_and_passes_nulls(tiny_bundle):
    values = pd.Series(["SMITH, John", None, "", "mary o'neil"], index=[10, 11, 12, 13])
    out = normalize_series(values, str(tiny_bundle))
    assert list(out.index) == [10, 11, 12, 13]
    expected = Normalizer(tiny_bundle).normalize(["SMITH, John", "mary o'neil"])
    assert out.loc[10, "prediction"] == expected[0].text and out.loc[13, "prediction"] == expected[1].text
    assert out.loc[11, "prediction"] is None and out.loc[11, "status"] == "empty" and not out.loc[11, "changed"]
    gated = normalize_series(values, str(tiny_bundle), threshold=1.01)  # nothing is that confident
    assert list(gated.loc[[10, 13], "prediction"]) == ["SMITH, John", "mary o'neil"]
    assert set(gated.loc[[10, 13], "status"]) == {"below_threshold"} and not gated["changed"].any()
    with pytest.raises(TypeError, match="index 1 holds int"):
        normalize_series(pd.Series(["a", 5]), str(tiny_bundle))


def test_normalize_records_task_in_a_users_flow(tiny_bundle):
    @flow
    def users_flow(rows):
        return normalize_records(rows, column="name", model=str(tiny_bundle))

    frame = users_flow([{"id": 1, "name": "SMITH, John"}, {"id": 2, "name": "ann lee"}])
    assert list(frame.columns) == ["id", "name", "name_prediction", "name_confidence", "name_status"]
    assert frame["name_status"].tolist() == ["ok", "ok"]
    with pytest.raises(ValueError, match="already have"):
        normalize_records.fn(frame, column="name", model=str(tiny_bundle))
