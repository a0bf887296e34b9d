"""``strseq demo``: the whole job on a laptop, on SQLite and Prefect's local mode, in minutes.

1. ``build_demo_database``: a SQLite file with a CRM-style ``customers`` table (dirty names,
   birth dates and phone numbers, some already clean, a few empty) and the ``curated_pairs``
   a data team would keep (200 corrections per field; their clean values never appear in the
   table, so what the demo shows is generalization, not lookup).
2. For each field, the retraining flow (``strseq-retrain``) validates that field's pairs,
   trains, evaluates on held-out pairs and publishes version 1 to the registry folder, promoted
   to production when the gates pass.
3. The cleaning flow (``strseq-clean``) normalizes each column of ``customers`` into a new
   ``<column>_clean`` column with the production model: audited, reversible, low-confidence
   rows sent to review.
4. The human loop: a scripted reviewer answers the first questions of the review queue
   (``true_values`` knows the right answers, as the person would), the retrain learns from the
   decisions, and the cleaning flow runs again.

Everything stays in one folder the user can open (``crm.db``, ``models/``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from strseq_tasks.demo.synthetic import Pair, dates, names, phones

CUSTOMERS, PAIRS = "customers", "curated_pairs"


@dataclass(frozen=True)
class Field:
    column: str  # column of customers
    model: str  # model name in the registry
    make: Callable[[int, int, int], tuple[list[Pair], list[Pair]]]
    what: str


FIELDS = (
    Field("name", "names", names, "person names in a dozen layouts -> First Last"),
    Field("birth_date", "dates", dates, "dates in 24 layouts -> ISO 8601"),
    Field("phone", "phones", phones, "phone numbers of eight countries -> E.164"),
)


def db_url(folder: Path) -> str:
    return f"sqlite:///{Path(folder).resolve() / 'crm.db'}"


def pairs_query(field: Field) -> str:
    return f"SELECT input, target FROM {PAIRS} WHERE field = '{field.column}' ORDER BY id"


def true_values(field: Field, rows: int, pairs: int, seed: int) -> dict[int, str]:
    """The right value of ``field`` for each customer id, as ``build_demo_database`` drew it (the
    demo's scripted reviewer knows them; the table does not hold them)."""
    _, test = field.make(pairs, rows, seed + FIELDS.index(field))
    return {i + 1: target for i, (_, target) in enumerate(test)}


def build_demo_database(folder: Path, rows: int = 1000, pairs: int = 200, seed: int = 0,
                        fields: tuple[Field, ...] = FIELDS) -> dict[str, int]:
    """Write ``folder/crm.db`` (which must not exist yet); returns row counts per table."""
    path = Path(folder) / "crm.db"
    if path.exists():
        raise FileExistsError(f"{path} exists")
    rng = random.Random(seed)
    columns: dict[str, list[str | None]] = {}
    curated: list[dict] = []
    for index, field in enumerate(fields):
        train, test = field.make(pairs, rows, seed + index)
        values: list[str | None] = [dirty for dirty, _ in test]
        for row in rng.sample(range(rows), k=max(1, rows // 100)):  # a few missing values, as in any CRM
            values[row] = rng.choice([None, ""])
        columns[field.column] = values
        curated += [{"field": field.column, "input": a, "target": b} for a, b in train]
    meta = sa.MetaData()
    customers = sa.Table(CUSTOMERS, meta, sa.Column("id", sa.Integer, primary_key=True),
                         *(sa.Column(f.column, sa.Text) for f in fields))
    curated_pairs = sa.Table(PAIRS, meta, sa.Column("id", sa.Integer, primary_key=True),
                             sa.Column("field", sa.Text, nullable=False), sa.Column("input", sa.Text, nullable=False),
                             sa.Column("target", sa.Text, nullable=False))
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(customers.insert(), [{"id": i + 1, **{c: v[i] for c, v in columns.items()}}
                                              for i in range(rows)])
            conn.execute(curated_pairs.insert(), curated)
    finally:
        engine.dispose()
    return {CUSTOMERS: rows, PAIRS: len(curated)}
