"""Normalize on several processes, so that a server's cores all work (``strseq predict --workers``).

onnxruntime sessions on one thread each run these small per-step products best; more cores
pay off as more processes, each with its own sessions (a second thread in one session gains
nothing: see ``runtime.session_options``). The parent verifies the bundle first (``Normalizer``);
each worker process, started with ``spawn`` (never ``fork``: forking a process that holds
onnxruntime's thread pools can deadlock), then loads the same bundle, precision and known values
once, and decodes chunks of the distinct values, longest first so no worker is left with a long
tail. Predictions come back in input order with the outputs one process gives; confidences
agree to float rounding (``tests/integration/test_workers.py``).

Layout programs (``core/programs.py``) are read here, in the parent, off samples the workers
decode in the batches one process would. The values no program can answer in this call (their
shape has none and too few values to read one) are known at the start: the workers decode them
while the parent reads programs (``Backlog``), and step aside whenever samples are waiting.

Torch-free, like ``runtime``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import replace
from multiprocessing import get_context

from strseq_tasks.core.vocab import normalize_text, read_text
from strseq_tasks.serve.runtime import STATUS_OK, Normalizer, Prediction

CHUNK = 1024  # distinct values per task: big enough to batch well, small enough to balance
BACKLOG_CHUNK = 128  # values a chunk of the backlog: small, so that the programs' samples wait little behind it
MIN_PER_WORKER = 4096  # 'auto' adds a process only for this many distinct values each (see auto_workers)

_worker: Normalizer | None = None


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_workers(distinct: int) -> int:
    """Processes worth starting for ``distinct`` values: one per core, but only as many as have
    ``MIN_PER_WORKER`` values each: starting one (importing the runtime, loading the model) costs
    a core's time that a few values' decoding does not repay."""
    return max(1, min(available_cores(), distinct // MIN_PER_WORKER))


def _init(path: str, threads: int | None, precision: str, known) -> None:
    global _worker
    # the parent ran the layout programs over the distinct values; a worker decodes what they left
    _worker = Normalizer(path, threads=threads, known=known, precision=precision, programs=False)


def _run(chunk: list[str], beam: int | None, batch_size: int) -> list[Prediction]:
    assert _worker is not None, "worker not initialized"
    return _worker.normalize(chunk, beam=beam, batch_size=batch_size)


def _decode(chunk: list[str], batch_size: int) -> list[tuple[str, tuple[Prediction, float]]]:
    assert _worker is not None, "worker not initialized"
    return list(_worker.decode(chunk, 1, batch_size, None).items())


class Backlog:
    """Values the model decodes whatever the programs do (``ProgramBook.left_to_model``), decoded on
    the worker processes while this one reads programs, in small chunks; paused (its chunks not yet
    started taken back) while the programs' samples are decoded, so that those never wait long."""

    def __init__(self, pool: ProcessPoolExecutor, values: list[str], beam: int | None, batch_size: int):
        self.pool, self.beam, self.batch_size = pool, beam, batch_size
        self.todo = [values[i : i + BACKLOG_CHUNK] for i in range(0, len(values), BACKLOG_CHUNK)]
        self.running: dict[Future, list[str]] = {}

    def resume(self) -> None:
        for chunk in self.todo:
            self.running[self.pool.submit(_run, chunk, self.beam, self.batch_size)] = chunk
        self.todo = []

    def pause(self) -> None:
        for future in list(self.running):
            if future.cancel():
                self.todo.append(self.running.pop(future))


def _by_programs(normalizer: Normalizer, keys: list[str], beam: int | None, batch_size: int,
                 pool: ProcessPoolExecutor, workers: int) -> tuple[dict[str, Prediction], Backlog | None]:
    """The predictions of the layout programs (and of the rows decoded to learn them, on the
    ``workers`` processes of ``pool``), by key; and the backlog of the keys left to the model from
    the start, decoding meanwhile."""
    if not normalizer.uses_programs(beam):
        return {}, None
    backlog: Backlog | None = None

    def decode(texts: Sequence[str]) -> dict[str, tuple[Prediction, float]]:
        # the batches one process would decode (transduce sorts by length, stably, and cuts), whole
        # batches to each process: the programs read here are the ones one process reads
        order = sorted(texts, key=len)
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        share = -(-len(batches) // workers)
        parts = [[t for batch in batches[k * share : (k + 1) * share] for t in batch] for k in range(workers)]
        parts = [part for part in parts if part]
        backlog.pause()
        try:
            return {t: found for part in pool.map(_decode, parts, [batch_size] * len(parts)) for t, found in part}
        finally:
            backlog.resume()

    read = {key: read_text(key, normalizer.spaces) for key in keys}
    values = list(dict.fromkeys(r for r in read.values() if r and len(r) <= normalizer.max_len))
    shapes = {value: normalizer.programs.keys(value) for value in values}
    left = set(normalizer.programs.left_to_model(values, shapes))
    backlog = Backlog(pool, sorted((k for k, r in read.items() if r in left), key=len, reverse=True), beam, batch_size)
    backlog.resume()
    found = normalizer.program_pass([v for v in values if v not in left], decode, keys=shapes)
    return {key: found[r] for key, r in read.items() if r in found}, backlog


def normalize_parallel(normalizer: Normalizer, texts: Sequence[str], workers: int, beam: int | None = None,
                       batch_size: int = 64, threads: int | None = None,
                       on_batch: Callable[[int], None] | None = None, auto: bool = False) -> list[Prediction]:
    """``normalizer.normalize(texts, ...)`` on ``workers`` processes (1: in this process).

    Each worker loads ``normalizer``'s bundle with its precision and known values, so its
    predictions are those ``normalizer`` would give. ``on_batch(n)`` reports rows done. The layout
    programs run here first; with ``auto`` (``--workers auto``) the processes are then counted
    again for the values they left (``auto_workers``): often one, this one, is enough.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers == 1:
        return normalizer.normalize(texts, beam=beam, batch_size=batch_size, on_batch=on_batch)
    keys = [normalize_text(t) for t in texts]
    counts: dict[str, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_init,
                             initargs=(str(normalizer.path), threads, normalizer.precision, normalizer.known)) as pool:
        # one set of programs, read here off rows the processes decode, not one set a process
        answer, backlog = _by_programs(normalizer, list(counts), beam, batch_size, pool, workers)
        if on_batch is not None and answer:
            on_batch(sum(counts[t] for t in answer))
        futures = dict(backlog.running) if backlog else {}
        taken = {k for chunk in futures.values() for k in chunk}
        # longest first: the slowest chunks start early
        distinct = sorted((k for k in counts if k not in answer and k not in taken), key=len, reverse=True)
        if auto and auto_workers(len(distinct) + len(taken)) == 1:  # fewer than a second process repays: here
            answer.update(zip(distinct, normalizer.normalize(distinct, beam=beam, batch_size=batch_size)))
            if on_batch is not None:
                on_batch(sum(counts[k] for k in distinct))
            distinct = []
        chunks = [distinct[i : i + CHUNK] for i in range(0, len(distinct), CHUNK)]
        futures.update((pool.submit(_run, chunk, beam, batch_size), chunk) for chunk in chunks)
        try:
            for future in as_completed(futures):
                chunk = futures[future]
                for text, prediction in zip(chunk, future.result(), strict=True):
                    answer[text] = prediction
                if on_batch is not None:
                    on_batch(sum(counts[t] for t in chunk))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return _in_order(answer, keys, texts)


def _in_order(answer: dict[str, Prediction], keys: list[str], texts: Sequence[str]) -> list[Prediction]:
    # workers read the NFC keys; what is returned unchanged (empty, too long) is the caller's own text
    return [answer[key] if answer[key].status == STATUS_OK else replace(answer[key], text=text)
            for key, text in zip(keys, texts)]

