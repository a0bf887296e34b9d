"""The docs' Python snippets (README.md, deploy/README.md, docs/) run, as written, against local
stand-ins for what they name.

Each snippet runs with only the substitutions listed here: remote URLs become a SQLite file and
a local registry, the model is the tiny test model, and the retrain trains a tiny model for a
few epochs. A substitution that no longer matches fails the test, so an edited snippet gets
its test edited too (tests/integration/test_docs.py checks the commands).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from fixtures.data import TINY_SIZES, lowercase_pairs
from fixtures.docs import DOCS

from strseq_tasks.serve.registry import Registry

NAMES = ["SMITH, John", "mary o'neil", "ANN LEE", "", "Dr. Peter Jones"]


def snippets() -> list[str]:
    """The Python snippets of README.md, deploy/README.md and docs/."""
    return [m.group(1) for doc in DOCS
            for m in re.finditer(r"^```python\n(.*?)^```", doc.read_text(encoding="utf-8"), re.S | re.M)]


def snippet(marker: str) -> str:
    found = [s for s in snippets() if marker in s]
    assert len(found) == 1, f"expected one snippet in the docs with {marker!r}, found {len(found)}"
    return found[0]


def substituted(code: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        assert old in code, f"the docs snippet no longer contains {old!r}: update this test with it"
        code = code.replace(old, new)
    return code


MARKERS = ("RetrainParams(", "normalize_series(", "Normalizer(")


def test_every_python_snippet_is_run_here():
    untested = [s.splitlines()[0] for s in snippets() if not any(m in s for m in MARKERS)]
    assert not untested, f"Python snippets in the docs no test runs: {untested}"


@pytest.fixture
def registry(tmp_path, lower_bundle) -> Path:
    """A registry whose names@production is the tiny lower-casing model."""
    registry = Registry(tmp_path / "registry")
    version = registry.publish("names", lower_bundle)
    registry.set_alias("names", "production", version, "docs test")
    return tmp_path / "registry"


def test_retrain_snippet(tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = sa.create_engine(db)
    pd.DataFrame(lowercase_pairs(), columns=["dirty", "clean"]).to_sql("name_fixes", engine, index=False)
    engine.dispose()
    code = substituted(snippet("RetrainParams("), {
        '"postgresql+psycopg://etl@db/crm"': repr(db),
        '"s3://models/strseq"': repr(str(tmp_path / "registry")),
        'name="customer-names")': f'name="customer-names", model_sizes={TINY_SIZES!r}, max_epochs=3, precision="fp32")',
    })
    namespace: dict = {}
    exec(compile(code, "docs (retrain snippet)", "exec"), namespace)
    assert namespace["result"]["version"] == 1
    printed = capsys.readouterr().out.split()
    assert printed[0] == "1" and printed[1] in ("True", "False")
    assert Registry(tmp_path / "registry").versions("customer-names") == [1]


def test_in_your_own_code_snippet(tmp_path, registry):
    db = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = sa.create_engine(db)
    pd.DataFrame({"id": range(1, len(NAMES) + 1), "name": NAMES}).to_sql("customers", engine, index=False)
    with engine.begin() as conn:  # the cleaning job needs a primary or unique key
        conn.execute(sa.text("CREATE UNIQUE INDEX customers_id ON customers (id)"))
        conn.execute(sa.text("ALTER TABLE customers ADD COLUMN name_clean TEXT"))
    model = f"{registry}/names@production"
    code = substituted(snippet("normalize_series("), {
        '"models/names@production"': repr(model),
        '"postgresql+psycopg://etl@db/crm"': repr(db),
        '"s3://models/strseq/names@production"': repr(model),
        'partitions=8, dask_address="tcp://scheduler:8786"': "partitions=2",
    })
    namespace = {"df": pd.DataFrame({"name": NAMES}), "frame": pd.DataFrame({"id": [1, 2], "name": NAMES[:2]})}
    exec(compile(code, "docs (in your own code)", "exec"), namespace)
    out, df = namespace["out"], namespace["df"]
    # confident predictions are taken, the rest keep their input
    expected = [p if ok else v for v, p, ok in zip(NAMES, out["prediction"], out["confidence"] >= 0.9)]
    assert df["name_clean"].tolist()[:3] == expected[:3]
    assert {"name_prediction", "name_confidence", "name_status"} <= set(namespace["frame"].columns)
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT status FROM strseq_runs")).scalars().all()
        audited = conn.execute(sa.text("SELECT count(*) FROM strseq_audit")).scalar()
        changed = conn.execute(sa.text("SELECT count(*) FROM customers WHERE name_clean IS NOT NULL")).scalar()
    engine.dispose()
    assert runs == ["completed"]
    assert audited == changed  # every value the flow wrote is in the audit table


def test_normalizer_snippet(lower_bundle, capsys):
    code = substituted(snippet("Normalizer("), {'"MODEL_DIR"': repr(str(lower_bundle))})
    exec(compile(code, "docs (Normalizer)", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.endswith(" ok") for line in lines)
    confidence = float(lines[0].split()[-2])
    assert 0 <= confidence <= 1
