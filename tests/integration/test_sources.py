"""Pairs and strings from files and from real SQLite / PostgreSQL databases."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from strseq_tasks.data.files import InputFileError
from strseq_tasks.data.sources import Source, read_pair_frame, read_strings

from .cli_harness import write_csv


def _table(url: str, name: str, rows: list[tuple], columns=("dirty", "clean")) -> None:
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table(name, meta, sa.Column("id", sa.Integer, primary_key=True),
                     *(sa.Column(c, sa.Text) for c in columns))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [dict(zip(columns, r)) for r in rows])
    engine.dispose()


def test_pairs_from_a_table_with_renamed_columns(database_url):
    _table(database_url, "curated pairs", [("SMITH, John", "John Smith"), ("Cafe\u0301", "Café"), (None, "x")])
    frame = read_pair_frame(Source(database_url, table="curated pairs"), "dirty", "clean")
    assert list(frame.columns) == ["row", "input", "target"]
    assert frame["input"].tolist() == ["SMITH, John", "Café", None]  # NFC; nulls kept for validation
    assert frame["row"].tolist() == [1, 2, 3]


def test_pairs_from_a_query(database_url):
    _table(database_url, "pairs", [("a", "A"), ("b", "B"), ("c", "C")])
    frame = read_pair_frame(Source(database_url, query="SELECT dirty AS input, clean AS target FROM pairs "
                                                       "WHERE dirty <> 'b' ORDER BY id"))
    assert frame[["input", "target"]].values.tolist() == [["a", "A"], ["c", "C"]]


@pytest.mark.parametrize("source, message", [
    (dict(table="nope"), "no such table"),
    (dict(table="pairs; DROP TABLE pairs"), "no such table"),
    (dict(query="SELECT dirty FROM pairs"), r"missing column\(s\) input, target"),
    (dict(table="pairs", query="SELECT 1"), "exactly one"),
    (dict(), "exactly one"),
])
def test_bad_database_sources_fail_clearly_and_touch_nothing(database_url, source, message):
    _table(database_url, "pairs", [("a", "A")])
    with pytest.raises((InputFileError, ValueError), match=message):
        read_pair_frame(Source(database_url, **source))
    assert read_pair_frame(Source(database_url, table="pairs"), "dirty", "clean")["input"].tolist() == ["a"]


def test_a_password_never_appears_in_messages():
    source = Source("postgresql+psycopg://user:s3cret@127.0.0.1:1/db", table="t")
    assert "s3cret" not in source.describe() and "***" in source.describe()


def test_non_text_values_are_refused_with_their_row(database_url):
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE codes (input TEXT, target INTEGER)"))
        conn.execute(sa.text("INSERT INTO codes VALUES ('a', NULL), ('b', 12)"))
    engine.dispose()
    with pytest.raises(InputFileError, match=r"row 2, column 'target': expected text, found int 12"):
        read_pair_frame(Source(database_url, table="codes"))


def test_pairs_and_strings_from_files(tmp_path):
    csv_file = write_csv(tmp_path / "p.csv", ["input", "target", "note"], [["a", "A", ""], ["", "B", "x"]])
    frame = read_pair_frame(Source(str(csv_file)))
    assert frame[["input", "target"]].values.tolist() == [["a", "A"], ["", "B"]]
    parquet = tmp_path / "names.parquet"
    pd.DataFrame({"name": ["Ann", None, " ", "Bo"]}).to_parquet(parquet)
    assert read_strings(Source(str(parquet)), "name") == ["Ann", "Bo"]
    with pytest.raises(InputFileError, match="missing column"):
        read_pair_frame(Source(str(csv_file)), "dirty", "clean")
    with pytest.raises(ValueError, match="database URL"):
        read_pair_frame(Source(str(csv_file), table="t"))


def test_a_query_is_run_as_written_colons_and_percent_signs_included(database_url, ledger):
    """text() read ':1' in '{"a":1}' as a bind parameter; psycopg, handed parameters, reads '%' as one."""
    _table(database_url, "pairs", [("10:30 am", "10:30"), ("50 %", "50%"), ('{"a":1}', "x")])
    query = ("SELECT dirty AS input, clean AS target FROM pairs "
             """WHERE dirty <> '{"a":1}' AND (dirty LIKE '%:%' OR dirty LIKE '%\\%%' ESCAPE '\\') ORDER BY id""")
    frame = read_pair_frame(Source(database_url, query=query))
    ledger("hostile input", "a pairs query holding ':1' and '%' in its literals", sa.make_url(database_url)
           .get_backend_name(), rows_lost=2 - len(frame))
    assert frame[["input", "target"]].values.tolist() == [["10:30 am", "10:30"], ["50 %", "50%"]]


@pytest.mark.parametrize("query, message", [("SELEC dirty FROM pairs", "the query failed"),
                                            ("SELECT nope AS input, 1 AS target FROM pairs", "the query failed")])
def test_a_failing_query_is_one_clear_error(database_url, query, message):
    _table(database_url, "pairs", [("a", "A")])
    with pytest.raises(InputFileError, match=message):  # SQLite raises OperationalError for these
        read_pair_frame(Source(database_url, query=query))


def test_a_mistyped_sqlite_pairs_file_is_refused_not_created(tmp_path, ledger):
    typo = tmp_path / "paris.db"
    with pytest.raises(InputFileError, match="no SQLite database at") as caught:
        read_pair_frame(Source(f"sqlite:///{typo}", table="pairs"))
    ledger("hostile input", "retrain --pairs naming a SQLite file that does not exist", "sqlite", rows_lost=0,
           error=caught.value)
    assert not typo.exists()


def test_a_password_in_a_query_parameter_never_appears_in_messages():
    source = Source("postgresql+psycopg://user@127.0.0.1:1/db?password=s3cret", table="t")
    with pytest.raises(InputFileError) as caught:
        read_pair_frame(source)
    assert "s3cret" not in source.describe() + str(caught.value)
