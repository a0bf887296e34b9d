"""Integration tests run torch single-threaded.

torch's OpenMP pool spin-waits: on a 2-core machine where anything else is busy, a 2-thread
pool made the tiny training ~20x slower (200 s instead of 10 s). Results do not depend on it.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="package", autouse=True)
def single_threaded_torch():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
