"""Turn strings into the padded arrays the model reads, and output ids back into strings.

numpy only: shared by training (which wraps the arrays in tensors) and the torch-free runtime.

The copy mechanism works over an *extended* vocabulary per batch: ids ``0..V-1`` are the
model's vocabulary, and ids ``V..V+K-1`` stand for characters that appear in a row's source
but not in the vocabulary (that row's ``oov`` list). Each source position can be copied in
three modes (as written, lower-cased, upper-cased); ``copy_map[b, 3*j + m]`` is the one-hot
row of the extended id that copying position ``j`` in mode ``m`` emits. This is how a
character never seen in training (an accented name, a rare symbol) comes out unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from strseq_tasks.core.vocab import EOS, PAD, UNK, CharVocab, lower_char, normalize_text, upper_char

COPY_MODES = 3  # as written, lower case, upper case


@dataclass(frozen=True)
class SourceBatch:
    ids: np.ndarray  # batch x src_len, int64 (UNK for characters outside the vocabulary)
    lengths: np.ndarray  # batch, int64 (>= 1: an empty source is encoded as one PAD step)
    copy_map: np.ndarray  # batch x (3 * src_len) x ext_size, float32 one-hot rows
    oov: tuple[tuple[str, ...], ...]  # per row: the characters behind ids V, V+1, ...
    ext_index: tuple[dict[str, int], ...]  # per row: character -> extended id

    @property
    def size(self) -> int:
        return int(self.ids.shape[0])


@lru_cache(maxsize=65536)
def _variants(char: str) -> tuple[str, str, str]:
    """A character as written, lower-cased and upper-cased: the three copy modes' outputs."""
    return char, lower_char(char), upper_char(char)


def _row_ext_index(vocab: CharVocab, text: str, hidden: frozenset[str]) -> tuple[dict[str, int], list[str]]:
    index: dict[str, int] = {}
    oov: list[str] = []
    for char in text:
        for variant in _variants(char):
            if variant in index:
                continue
            if variant in vocab and variant not in hidden:
                index[variant] = vocab.id(variant)
            else:
                index[variant] = len(vocab) + len(oov)
                oov.append(variant)
    return index, oov


def encode_sources(vocab: CharVocab, texts: Sequence[str], hidden: frozenset[str] = frozenset()) -> SourceBatch:
    """Pad a batch of source strings and build each row's copy map.

    Characters in ``hidden`` are treated as unknown to the vocabulary (training uses this to
    teach the model to copy characters it has never seen).
    """
    texts = [normalize_text(t) for t in texts]
    batch = len(texts)
    src_len = max(1, max((len(t) for t in texts), default=1))
    rows = [_row_ext_index(vocab, t, hidden) for t in texts]
    ext_size = len(vocab) + max((len(oov) for _, oov in rows), default=0)
    ids = np.full((batch, src_len), PAD, dtype=np.int64)
    lengths = np.ones(batch, dtype=np.int64)
    copy_map = np.zeros((batch, COPY_MODES * src_len, ext_size), dtype=np.float32)
    # the one-hot entries of the copy maps, set at once: (row, 3 * position + mode) -> extended id
    at_row, at_slot, at_id = [], [], []
    for b, (text, (index, _)) in enumerate(zip(texts, rows, strict=True)):
        if not text:
            continue
        ids[b, : len(text)] = [UNK if c in hidden else vocab.id(c) for c in text]
        lengths[b] = len(text)
        slots = [index[v] for c in text for v in _variants(c)]
        at_row.extend([b] * len(slots))
        at_slot.extend(range(len(slots)))
        at_id.extend(slots)
    copy_map[at_row, at_slot, at_id] = 1.0
    return SourceBatch(
        ids=ids,
        lengths=lengths,
        copy_map=copy_map,
        oov=tuple(tuple(oov) for _, oov in rows),
        ext_index=tuple(index for index, _ in rows),
    )


def encode_targets(vocab: CharVocab, texts: Sequence[str], source: SourceBatch,
                   hidden: frozenset[str] = frozenset()) -> np.ndarray:
    """Target ids (extended where a character can only be copied), EOS-terminated, PAD-padded."""
    texts = [normalize_text(t) for t in texts]
    tgt_len = max(len(t) for t in texts) + 1
    out = np.full((len(texts), tgt_len), PAD, dtype=np.int64)
    for b, text in enumerate(texts):
        index = source.ext_index[b]
        ids = [vocab.id(c) if c in vocab and c not in hidden else index.get(c, UNK) for c in text]
        out[b, : len(ids)] = ids
        out[b, len(ids)] = EOS
    return out


def target_ids(vocab: CharVocab, source: SourceBatch, row: int, text: str) -> np.ndarray:
    """Extended ids of ``text`` as an output of source row ``row`` (to score it as a candidate).

    A character of the row's source takes its extended id (so a copied unseen character scores
    as a copy); any other character its vocabulary id, UNK if the vocabulary lacks it.
    """
    index = source.ext_index[row]
    return np.array([index[c] if c in index else vocab.id(c) for c in text], dtype=np.int64)


def decode_row(vocab: CharVocab, ids: Sequence[int], oov: Sequence[str]) -> str:
    """Text of one row of extended output ids (stops at EOS)."""
    out = []
    size = len(vocab)
    for idx in ids:
        idx = int(idx)
        if idx == EOS:
            break
        if idx >= size:
            out.append(oov[idx - size])
        elif idx > UNK:
            out.append(vocab.token(idx))
    return "".join(out)


def max_output_lengths(lengths: np.ndarray, limit: int) -> np.ndarray:
    """Longest output (characters + EOS) allowed per row: room to expand, never unbounded."""
    return np.minimum(2 * lengths + 10, limit + 1).astype(np.int64)
