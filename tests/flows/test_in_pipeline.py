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
    assert list(frame.columns) == ["id", "name", "name_prediction", "name_confidence", "name_status", "name_model"]
    assert set(frame["name_model"]) == {f"tiny (sha {Normalizer(tiny_bundle).manifest['content_sha256'][:12]})"}
    assert frame["name_status"].tolist() == ["ok", "ok"]
    with pytest.raises(ValueError, match="already have"):
        normalize_records.fn(frame, column="name", model=str(tiny_bundle))


def test_a_promotion_reaches_a_long_lived_process_at_its_next_call(tiny_bundle, lower_bundle, tmp_path):
    """One process (a user's flow, `strseq serve`, a Dask worker): normalize with @production,
    promote another version, normalize again: the new version answers, and the output says so."""
    from strseq_tasks.serve.refs import PRODUCTION
    from strseq_tasks.serve.registry import Registry

    registry = Registry(str(tmp_path / "models"))
    first = registry.publish("names", tiny_bundle)
    second = registry.publish("names", lower_bundle)
    registry.set_alias("names", PRODUCTION, first, "first")
    model = f"{tmp_path / 'models'}/names@production"
    rows = [{"name": "ANN LEE"}, {"name": "BOB MARLEY"}]

    @flow
    def users_flow():
        return normalize_records(rows, column="name", model=model)

    before = users_flow()
    registry.set_alias("names", PRODUCTION, second, "promoted")
    after = users_flow()
    assert set(before["name_model"]) == {"names@1"} and set(after["name_model"]) == {"names@2"}
    lower = Normalizer(lower_bundle).normalize(["ANN LEE", "BOB MARLEY"])
    assert after["name_prediction"].tolist() == [p.text for p in lower]
    assert after["name_prediction"].tolist() != before["name_prediction"].tolist()
    registry.rollback("names", PRODUCTION)
    assert set(users_flow()["name_model"]) == {"names@1"}  # a rollback too
    # and the pandas helper, called directly
    assert normalize_series(pd.Series(["ANN LEE"]), model)["prediction"].tolist() == [before["name_prediction"][0]]
