"""Realistic columns for the speed benchmarks: values that repeat, in a few layouts most of the time.

    from benchmarks.realistic import column
    col = column("dates", rows=100_000)  # col.values, col.truth, col.clean, col.train, col.distribution

A real column is not a stream of distinct values: most of its rows are in a few layouts and its
values repeat (a date, a product, a customer occurs many times). The speed benchmarks
(``predict_throughput.py``, ``clean_throughput.py``) measure strseq on such columns, built from
the column benchmark's families (``benchmarks/columns``):

- **The pool.** ``draw(FAMILIES[name](), n_train=200, n_test=pool, seed)``: the family's 200
  training pairs (the column's model is trained on them) and ``pool`` test rows (below), with
  everything the column benchmark gives a test column: layouts ranked per seed on a Zipf tail
  (exponent 1.1), a fifth of them held out of the pairs, values held out, unseen noise on a
  quarter of the rows, about a tenth of the rows already clean (5% for product codes).
- **The column.** ``rows`` draws, with replacement, from the pool: the pool is put in a seeded
  random order and row ``r`` of that order (from 1) drawn with weight ``1 / r ** exponent``. How
  much a column repeats depends on what it holds (``REPEATS``): a customer's birth date or phone
  number is their own (a pool of 100,000, uniform: 100,000 rows hold about 60,000 distinct
  values, repeats by chance), names repeat more (100,000, exponent 0.5: about 55,500 distinct,
  the 10 most frequent 0.8% of the rows), a product code is one of a catalogue bought on a steep
  tail (20,000, exponent 1.0: about 13,200 distinct, the 10 most frequent 28% of the rows). Every
  layout of the family occurs, and keeps the pool's Zipf tail: the 5 most frequent layouts hold
  46-60% of the rows, the rest spread over dozens more (80 for dates, 96 for phones), held-out
  layouts and unseen noise included: more varied than a column from one source system.
  ``distribution`` gives each column's exact figures (distinct values, the top 10's share,
  layouts present and the top 5 layouts' share, pool size, clean rows). Drawing a pool of
  100,000 takes 3-20 s.
- ``names-distinct``: today's benchmark, the classic names task (``TASKS["names"](200, rows,
  0)``): test inputs that are nearly all distinct, its 200 training pairs for the model.

``Column.clean`` marks the rows whose input already equals its target: changing one is harm.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

from benchmarks.columns import FAMILIES, Family, draw
from benchmarks.columns.core import Layout
from benchmarks.tasks import TASKS, Pair

POOL = 20_000  # distinct test rows a column's values are drawn from (default)
ZIPF = 1.0  # the pool's frequencies: the r-th value of the seeded order has weight 1 / r**ZIPF (default)
# how often a kind of value repeats in a real column (pool, exponent): a customer's birth date and
# phone number are their own (repeats by chance: 100,000 draws from 100,000 values, uniform, leave
# ~63% distinct), names repeat more (common names: a mild Zipf tail), a product code is one of a
# catalogue bought on a steep tail
REPEATS = {"dates": (100_000, 0.0), "phones": (100_000, 0.0), "names": (100_000, 0.5),
           "product_codes": (20_000, 1.0)}
N_TRAIN = 200
DISTINCT = "names-distinct"
COLUMNS = ("dates", "phones", "product_codes", "names", DISTINCT)
MODELS = Path(tempfile.gettempdir()) / "strseq-bench-models"  # the default cache of the columns' models


@dataclass
class Column:
    name: str
    values: list[str]  # the inputs
    truth: list[str]  # their targets
    clean: list[bool]  # input == target (changing it is harm)
    train: list[Pair]  # the pairs the column's model is trained on
    distribution: dict = field(default_factory=dict)


def names() -> list[str]:
    """Every column name ``column`` accepts."""
    return [*COLUMNS, *(f for f in FAMILIES if f not in COLUMNS)]


def _traced(family: Family) -> tuple[Family, list[str]]:
    """``family`` whose draws also record each test row's layout name, in the split's order.

    ``draw`` renders a row (one layout's ``render``) and, for each test row it keeps, calls
    ``family.kind`` once just before keeping it; the wrappers note the last layout rendered then.
    The draws are unchanged (the same calls on the same random generator)."""
    last = [""]
    kept: list[str] = []

    def layout(lay: Layout) -> Layout:
        def render(value, rng):
            last[0] = lay.name
            return lay.render(value, rng)

        return Layout(lay.name, render)

    def kind(value):
        kept.append(last[0])
        return family.kind(value)

    return dataclasses.replace(family, layouts=tuple(layout(lay) for lay in family.layouts), kind=kind), kept


def zipf_rows(pool: int, rows: int, seed: int, label: str, exponent: float = ZIPF) -> list[int]:
    """``rows`` indices into range(pool), drawn with Zipf weights over a seeded random order
    (exponent 0: uniform)."""
    rng = random.Random(f"strseq-realistic:{label}:{seed}")
    order = list(range(pool))
    rng.shuffle(order)
    cumulative = list(accumulate(1.0 / (rank + 1) ** exponent for rank in range(pool)))
    return [order[i] for i in rng.choices(range(pool), cum_weights=cumulative, k=rows)]


def _shares(values: list[str]) -> dict:
    counts = Counter(values)
    top = sum(c for _, c in counts.most_common(10))
    return {"rows": len(values), "distinct": len(counts), "top10_share": round(top / max(1, len(values)), 4)}


def family_column(name: str, rows: int, seed: int = 0, pool: int | None = None) -> Column:
    pool, exponent = (pool, ZIPF) if pool else REPEATS.get(name, (POOL, ZIPF))
    family, layouts = _traced(FAMILIES[name]())
    split = draw(family, n_train=N_TRAIN, n_test=pool, seed=seed)
    picked = zipf_rows(pool, rows, seed, name, exponent)
    values = [split.test[i][0] for i in picked]
    truth = [split.test[i][1] for i in picked]
    present = Counter("(clean)" if split.tags[i]["layout"] == "clean" else layouts[i] for i in picked)
    present.pop("(clean)", None)
    top5 = sum(c for _, c in present.most_common(5))
    distribution = {**_shares(values), "layouts_present": len(present), "layouts_in_family": len(split.layouts),
                    "top5_layouts_share": round(top5 / max(1, rows), 4),
                    "zipf_exponent": exponent, "pool": pool,
                    "pool_distinct": len({a for a, _ in split.test}), "clean_rows": sum(a == t for a, t in
                                                                                        zip(values, truth)),
                    "source": f"benchmarks.columns draw({name}, n_train={N_TRAIN}, n_test={pool}, seed={seed})"}
    return Column(name, values, truth, [a == t for a, t in zip(values, truth)], split.train, distribution)


def distinct_column(rows: int, seed: int = 0) -> Column:
    train, test = TASKS["names"](N_TRAIN, rows, seed)
    values, truth = [a for a, _ in test][:rows], [t for _, t in test][:rows]
    distribution = {**_shares(values), "layouts_present": None, "layouts_in_family": 12, "top5_layouts_share": None,
                    "zipf_exponent": None,
                    "pool": None, "clean_rows": sum(a == t for a, t in zip(values, truth)),
                    "source": f"benchmarks.tasks names({N_TRAIN}, {rows}, {seed}): test inputs, nearly all distinct"}
    return Column(DISTINCT, values, truth, [a == t for a, t in zip(values, truth)], train, distribution)


def column(name: str, rows: int, seed: int = 0) -> Column:
    """The column ``name`` (see the module's docstring) with ``rows`` rows."""
    if name == DISTINCT:
        return distinct_column(rows, seed)
    if name not in FAMILIES:
        raise ValueError(f"unknown column {name!r}; choose from {', '.join(names())}")
    return family_column(name, rows, seed)


def column_model(col: Column, models: Path, model: str | None = None) -> Path:
    """The model that normalizes ``col``: ``model`` (a folder or REGISTRY/NAME@alias) when given,
    else the one trained with the defaults on ``col.train`` into ``models/<column>``, trained
    there first unless a bundle trained on the same pairs is present (its manifest's fingerprint)."""
    from benchmarks.tasks import benchmark_model
    from strseq_tasks.serve.bundle import fingerprint_pairs

    if model:
        return benchmark_model(model, col.train, models, "")
    folder = Path(models) / col.name
    manifest = folder / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text(encoding="utf-8")).get("data", {})
        if data.get("fingerprint") == fingerprint_pairs(col.train):
            return folder
    from strseq_tasks.learn.build import train_bundle
    from strseq_tasks.learn.training import TrainConfig

    print(f"training the {col.name} model on its {len(col.train)} pairs into {folder} ...", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    return Path(train_bundle(col.train, folder, TrainConfig(seed=0)).path)
