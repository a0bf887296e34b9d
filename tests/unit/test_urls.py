"""``mask_url``: the one place passwords are hidden, and the parameter records that use it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import URL, make_url

from strseq_tasks.data.urls import mask_secrets, mask_url


@pytest.mark.parametrize("text, expected", [
    ("postgresql+psycopg://etl:S3cret-Pw@db:5432/crm", "postgresql+psycopg://etl:***@db:5432/crm"),
    ("postgresql+psycopg://etl:p/w:x@db/crm?options=-csearch_path%3Ds", "postgresql+psycopg://etl:***@db/crm?options=-csearch_path%3Ds"),
    ("postgresql+psycopg://etl@db/crm?password=S3cret&options=x", "postgresql+psycopg://etl@db/crm?password=***&options=x"),
    ("mysql://a@b:S3cret@host/db", "mysql://a@b:***@host/db"),  # SQLAlchemy: user 'a@b'
    ("s3://AKIAKEY:S3cret/key@bucket/models", "s3://AKIAKEY:***@bucket/models"),
    ("ftp://user:S3cret@host/models", "ftp://user:***@host/models"),
    ("https://host/x?sig=S3cret&sv=2022", "https://host/x?sig=***&sv=2022"),
    ("pairs from postgresql://u:S3cret@h/db table 'x' (mail a@b.c)",
     "pairs from postgresql://u:***@h/db table 'x' (mail a@b.c)"),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/test", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    ("postgres+psycopg://postgres@127.0.0.1:5432/test is not a database URL (e.g. postgresql+psycopg://user@host/db)",
     "postgres+psycopg://postgres@127.0.0.1:5432/test is not a database URL (e.g. postgresql+psycopg://user@host/db)"),
    ("cannot connect to postgresql://u:S3cret@h:5432/db: FATAL: password authentication failed for user@h",
     "cannot connect to postgresql://u:***@h:5432/db: FATAL: password authentication failed for user@h"),
    ("env:STRSEQ_PAIRS_DB", "env:STRSEQ_PAIRS_DB"),
    ("prefect-secret:crm-db", "prefect-secret:crm-db"),
    ("/data/pairs:v2@night.csv", "/data/pairs:v2@night.csv"),
    ("models/names@production", "models/names@production"),
    ("sqlite:///crm.db", "sqlite:///crm.db"),
])
def test_mask_url(text, expected):
    assert mask_url(text) == expected
    assert mask_url(expected) == expected


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=12)


@given(user=_text, password=_text.filter(bool), host=st.from_regex(r"[a-z][a-z0-9.-]{0,10}", fullmatch=True),
       database=st.from_regex(r"[a-z_]{0,8}", fullmatch=True),
       query=st.dictionaries(st.sampled_from(["options", "sslmode", "application_name"]), _text, max_size=2))
def test_mask_url_hides_what_sqlalchemy_hides(user, password, host, database, query):
    """Any URL SQLAlchemy renders reads back the same after masking, but for the password."""
    url = URL.create("postgresql+psycopg", user, password, host, None, database or None, query)
    text = url.render_as_string(hide_password=False)
    masked = make_url(mask_url(text))
    assert masked.password == "***"
    assert masked._replace(password=None) == make_url(text)._replace(password=None)
    assert mask_url(text) == url.render_as_string(hide_password=True)


def test_mask_secrets_walks_records():
    record = {"params": {"pairs": "postgresql://u:S3cret@h/db", "seed": 0, "files": ["env:X", "ftp://a:S3cret@h"]}}
    assert "S3cret" not in repr(mask_secrets(record))
    assert mask_secrets(record)["params"]["files"][0] == "env:X"


def test_parameter_records_show_urls_masked_and_keep_them_for_the_job():
    from strseq_tasks.jobs.clean_params import CleanParams
    from strseq_tasks.jobs.retrain import RetrainParams

    url = "postgresql+psycopg://etl:S3cret@db/crm"
    retrain = RetrainParams(pairs=url, pairs_table="pairs", adapt_on=url + "?password=S3cret", adapt_table="t",
                            registry="ftp://key:S3cret@host/models", name="names")
    clean = CleanParams(db=url, table="t", key="id", column="name", model="models/names@production")
    for params in (retrain, clean):
        assert "S3cret" not in params.model_dump_json() and "S3cret" not in repr(params.model_dump(mode="json"))
        assert "***" in params.model_dump_json()
    assert retrain.pairs == url and retrain.model_dump()["registry"] == "ftp://key:S3cret@host/models"
    assert clean.db == url and clean.model_dump()["db"] == url  # the job connects with the real URL
    assert RetrainParams(pairs="env:PAIRS", pairs_table="t", name="n").model_dump(mode="json")["pairs"] == "env:PAIRS"
