"""Predictions of values a column repeats, remembered across batches (``flows.clean``)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence


class RepeatCache:
    """``predict`` that remembers the predictions of the last ``size`` distinct values, so a value
    repeated across batches (a common name, a status code, a date) is predicted once per run.
    Thread-safe: partitions on threads share one. The model is deterministic: a remembered
    prediction is the one a new call would give."""

    def __init__(self, predict: Callable[[list[str]], Sequence], size: int = 100_000):
        self.predict, self.size = predict, size
        self.memory: OrderedDict[str, object] = OrderedDict()
        self.lock = threading.Lock()
        self.hits = 0

    def __call__(self, texts: list[str]) -> list:
        with self.lock:
            known = {t: self.memory[t] for t in texts if t in self.memory}
            for t in known:
                self.memory.move_to_end(t)
        new = list(dict.fromkeys(t for t in texts if t not in known))
        answers = dict(zip(new, self.predict(new))) if new else {}
        with self.lock:
            self.hits += len(texts) - len(new)
            for t, p in answers.items():
                self.memory[t] = p
            while len(self.memory) > self.size:
                self.memory.popitem(last=False)
        answers.update(known)
        return [answers[t] for t in texts]
