"""Strings in, strings out: batching, the shared decoder, and mapping ids back to text.

Engine-agnostic and torch-free: ``make_stepper(source_batch)`` returns a step function with an
initial ``state`` (``model.TorchStepper`` for PyTorch, ``runtime.OrtStepper`` for onnxruntime).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from strseq_tasks.core.batching import SourceBatch, decode_row, encode_sources, max_output_lengths, target_ids
from strseq_tasks.core.decoding import decode, greedy_search, resume_score, score
from strseq_tasks.core.known import KnownValues, Near
from strseq_tasks.core.vocab import SPACES_KEEP, CharVocab, read_text

FREE = -1  # the distance of a text decoded freely (no known value near it)


def transduce(
    texts: Sequence[str],
    vocab: CharVocab,
    make_stepper: Callable[[SourceBatch], object],
    max_len: int,
    beam: int = 1,
    batch_size: int = 64,
    on_batch: Callable[[int], None] | None = None,
    identity_margin: float | None = None,
    known: KnownValues | None = None,
    known_prior: float = 0.0,
    spaces: str = SPACES_KEEP,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Decode every text; returns outputs, their log-probabilities and their known-value
    distances (``FREE`` where no known value was near), in input order.

    Texts are read as the model reads them (NFC; whitespace by its ``spaces`` rule,
    ``vocab.read_text``). Empty texts come back empty with log-probability 0. Texts are
    grouped by length so that each batch pads little; ``on_batch(n)`` reports progress.
    Callers must reject texts longer than ``max_len`` beforehand.

    With ``identity_margin`` (nats), the input itself is scored as an output, and kept unless
    the decoded answer is more than ``margin`` more log-probable: a change must earn its place
    (0 simply picks the more probable of the two).

    With ``known`` values (see ``known.KnownValues``), a text that is a known value is kept, and a
    text within the list's edit distance of known values becomes the nearest one (the model's
    log-probability, plus ``known_prior`` times the list-order prior ``KnownValues.log_prior``,
    picks among ties); only the other texts are decoded freely. The log-probability returned
    for a snapped text is the model's alone; its distance (0 for a text that is a known value)
    is a second confidence signal (see ``calibration``).
    """
    # long: the three roads a text takes (snapped to a known value, decoded, kept by the identity margin) fill the
    # same per-text arrays; split, each part would carry all of them
    texts = [read_text(t, spaces) for t in texts]
    outputs = [""] * len(texts)
    logprob = np.zeros(len(texts), dtype=np.float64)
    distance = np.full(len(texts), FREE, dtype=np.int64)
    nearest: dict[str, Near | None] = {}
    if known is not None:
        nearest = {t: known.near(t) for t in set(texts) if t}
    snapped = [i for i, t in enumerate(texts) if nearest.get(t) is not None]
    free = [i for i, t in enumerate(texts) if t and nearest.get(t) is None]
    for index in _length_batches(texts, free, batch_size):
        source = encode_sources(vocab, [texts[i] for i in index])
        stepper = make_stepper(source)
        limits = max_output_lengths(source.lengths, max_len)
        # the input itself as an output sequence; greedy follows it, so that scoring it below
        # starts where the two part
        copies = None if identity_margin is None else [target_ids(vocab, source, row, texts[i])
                                                       for row, i in enumerate(index)]
        if beam == 1:
            result = greedy_search(stepper, stepper.state, limits, follow=copies)
        else:
            result = decode(stepper, stepper.state, limits, beam)
        best = result.logprob.copy()
        for row, i in enumerate(index):
            outputs[i] = decode_row(vocab, result.ids[row], source.oov[row])
        if identity_margin is not None:
            # the input itself as an output: keep it unless the model's answer is clearly better
            # (scored only where the answer differs from the input: elsewhere there is no choice)
            differ = np.array([row for row, i in enumerate(index) if outputs[i] != texts[i]], dtype=np.int64)
            # an input scoring below (answer - margin) at any point has lost: it stops being scored
            floor = best[differ] - identity_margin
            inputs = [copies[row] for row in differ]
            if result.diverged is not None:
                kept = resume_score(stepper, result.diverged, inputs, differ, floor)
            else:  # beam search: score from the start
                kept = score(stepper, stepper.state, inputs, differ, floor=floor)
            for row, kept_logprob in zip(differ, kept):
                if kept_logprob >= best[row] - identity_margin:
                    outputs[index[row]], best[row] = texts[index[row]], kept_logprob
        for row, i in enumerate(index):
            logprob[i] = best[row]
        if on_batch is not None:
            on_batch(len(index))
    for index in _length_batches(texts, snapped, batch_size):
        source = encode_sources(vocab, [texts[i] for i in index])
        stepper = make_stepper(source)
        rows, candidates = [], []
        for row, i in enumerate(index):
            for value in nearest[texts[i]].values:
                rows.append(row)
                candidates.append(value)
        scores = score(stepper, stepper.state, [target_ids(vocab, source, r, c) for r, c in zip(rows, candidates)],
                       np.array(rows, dtype=np.int64))
        ranked = scores + known_prior * known.log_prior(candidates) if known_prior else scores
        start = 0
        for i in index:
            count = len(nearest[texts[i]].values)
            pick = start + int(np.argmax(ranked[start : start + count]))  # first on ties: list order
            outputs[i], logprob[i] = candidates[pick], scores[pick]
            distance[i] = nearest[texts[i]].distance
            start += count
        if on_batch is not None:
            on_batch(len(index))
    return outputs, logprob, distance


def _length_batches(texts: Sequence[str], index: Sequence[int], batch_size: int):
    order = sorted(index, key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
