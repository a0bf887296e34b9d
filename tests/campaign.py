"""Seed and number of points of the crash tests: the suite's defaults, or a longer campaign's.

``STRSEQ_CRASH_SEED`` picks other points; ``STRSEQ_CRASH_SCALE`` multiplies each test's number of
points (``benchmarks/reliability_campaign.py`` sets both). The ledger records both with its
cases, so a failing point can be replayed with the same two variables.

The quick suite (``scripts/test.sh``, CI: no ``--long``) kills at a seeded quarter of each test's
points, a subset of the full set; ``--long``, ``scripts/reliability_report.py`` (which writes
docs/reliability.md) and the campaign run every point.
"""

from __future__ import annotations

import os
import random

SEED = int(os.environ.get("STRSEQ_CRASH_SEED", "20261202"))
SCALE = max(1, int(os.environ.get("STRSEQ_CRASH_SCALE", "1")))
QUICK = False  # set by tests/conftest.py: True unless --long


def _share(count: int, share: int) -> int:
    """How many of ``count`` the quick suite takes: 1/``share`` of them, rounded up, at least one."""
    return max(1, -(-count // share))


def pick(total: int, count: int, salt: object = "") -> list[int]:
    """``count`` (times the campaign's scale; a quarter of them in the quick suite) distinct points
    of 1..total, seeded, in order."""
    rng = random.Random(f"{SEED}:{salt}")
    points = rng.sample(range(1, total + 1), min(count * SCALE, total))
    if QUICK:  # the first quarter of the full run's sample: the quick suite's points are among its points
        points = points[:_share(len(points), 4)]
    return sorted(points)


def sampled(cases, salt: str, share: int = 4) -> list:
    """A parametrized family of hostile cases, each a real command in a fresh process: the quick
    suite runs a seeded 1/``share`` of them (at least one), every other case is marked ``long``
    (run by ``--long``, docs/reliability.md's and docs/user-mistakes.md's scripts). ``cases``:
    parametrize's values (a tuple per case for several arguments; ``pytest.param`` kept as is)."""
    import pytest

    cases = list(cases)
    keep = set(random.Random(f"{SEED}:{salt}").sample(range(len(cases)), _share(len(cases), share)))
    out = []
    for i, case in enumerate(cases):
        if i in keep:
            out.append(case)
            continue
        if isinstance(case, type(pytest.param(None))):
            out.append(pytest.param(*case.values, marks=[*case.marks, pytest.mark.long], id=case.id))
        else:
            out.append(pytest.param(case, marks=pytest.mark.long) if not isinstance(case, tuple)
                       else pytest.param(*case, marks=pytest.mark.long))
    return out
