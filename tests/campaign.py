"""Seed and number of points of the crash tests: the suite's defaults, or a longer campaign's.

``STRSEQ_CRASH_SEED`` picks other points; ``STRSEQ_CRASH_SCALE`` multiplies each test's number of
points (``benchmarks/reliability_campaign.py`` sets both). The ledger records both with its
cases, so a failing point can be replayed with the same two variables.
"""

from __future__ import annotations

import os
import random

SEED = int(os.environ.get("STRSEQ_CRASH_SEED", "20261202"))
SCALE = max(1, int(os.environ.get("STRSEQ_CRASH_SCALE", "1")))


def pick(total: int, count: int, salt: object = "") -> list[int]:
    """``count`` (times the campaign's scale) distinct points of 1..total, seeded, in order."""
    rng = random.Random(f"{SEED}:{salt}")
    return sorted(rng.sample(range(1, total + 1), min(count * SCALE, total)))
