"""The column benchmark: test columns that differ from their training pairs the way a real column
differs from what a team curated (see core.py for how, README.md for the rules).

    from benchmarks.columns import FAMILIES, draw
    split = draw(FAMILIES["dates"](), n_train=200, n_test=1000, seed=0)
"""

from __future__ import annotations

from benchmarks.columns.catalog import addresses, companies, products, quantities
from benchmarks.columns.core import Family, Split, draw, side
from benchmarks.columns.records import dates, names, phones

FAMILIES = {"dates": dates, "names": names, "phones": phones, "addresses": addresses,
            "product_codes": products, "quantities": quantities, "companies": companies}

__all__ = ["FAMILIES", "Family", "Split", "draw", "side"]
