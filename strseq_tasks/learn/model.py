"""Character encoder-decoder with location-aware attention and a case-aware copy mechanism.

- ``CharEmbedding``: one row per lower-case letter plus a case embedding, shared by encoder
  and decoder inputs (upper and lower case of a letter are one symbol with a case feature).
- ``Encoder``: bidirectional GRU over packed sequences (the backward direction never reads
  padding), plus the precomputed attention keys and the decoder's initial state.
- ``DecoderStep``: one pure step, state in and state out. The ONNX export is exactly this
  module; decoding calls it through ``TorchStepper``; training runs ``teacher_forced``, the
  same step unrolled with everything but the recurrence batched over the target steps.

The embeddings and GRUs have the shapes of a character language model's (``lm.py`` in the
pretraining issue initializes them from one): embedding ``emb_dim``, encoder GRU directions
``enc_hidden``, decoder GRU cell input ``emb_dim + dec_hidden``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from strseq_tasks.core.batching import COPY_MODES
from strseq_tasks.core.decoding import State
from strseq_tasks.core.vocab import BOS, PAD, UNK, CharVocab

NEG = -1e9  # stands for -inf in masks (finite: stays exportable and NaN-free)


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    emb_dim: int = 64  # per-character embedding (shared across case)
    case_dim: int = 8  # case feature embedding (none / lower / upper), added after a projection
    enc_hidden: int = 128  # per direction of the bidirectional encoder GRU
    dec_hidden: int = 256  # decoder GRU cell and attentional state size
    attn_dim: int = 128  # additive attention hidden size
    loc_filters: int = 8  # location-aware attention: filters over the previous attention
    loc_kernel: int = 5  # ... and their width (odd)
    dropout: float = 0.25  # on embeddings, encoder outputs and the attentional state
    prev_char_dropout: float = 0.1  # drop the decoder's previous-character input (training)
    max_len: int = 128  # longest input (characters) the model accepts

    def to_dict(self) -> dict:
        return asdict(self)


class CharEmbedding(nn.Module):
    """embedding(id) = rows[fold[id]] + case_proj(case[id]); UNK for ids beyond the vocab."""

    def __init__(self, vocab: CharVocab, cfg: ModelConfig):
        super().__init__()
        self.rows = nn.Embedding(cfg.vocab_size, cfg.emb_dim, padding_idx=PAD)
        self.case = nn.Embedding(3, cfg.case_dim)
        self.case_proj = nn.Linear(cfg.case_dim, cfg.emb_dim, bias=False)
        self.register_buffer("fold", torch.from_numpy(vocab.fold_table()), persistent=True)
        self.register_buffer("case_of", torch.from_numpy(vocab.case_table()), persistent=True)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # extended (copied out-of-vocabulary) ids are read back as UNK
        ids = torch.where(ids >= self.fold.shape[0], torch.full_like(ids, UNK), ids)
        return self.rows(self.fold[ids]) + self.case_proj(self.case(self.case_of[ids]))


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gru = nn.GRU(cfg.emb_dim, cfg.enc_hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(cfg.dropout)
        self.keys = nn.Linear(2 * cfg.enc_hidden, cfg.attn_dim, bias=False)
        self.init_state = nn.Linear(2 * cfg.enc_hidden, cfg.dec_hidden)

    def forward(self, emb: torch.Tensor, lengths: torch.Tensor):
        # emb: batch x src_len x emb_dim
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, last = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=emb.shape[1])
        out = self.dropout(out)  # batch x src_len x 2*enc_hidden
        last = torch.cat([last[0], last[1]], dim=-1)  # batch x 2*enc_hidden
        hidden = torch.tanh(self.init_state(last))  # batch x dec_hidden
        return out, self.keys(out), hidden


class LocationAttention(nn.Module):
    """Additive attention with a location term from the previous step's attention.

    The location term lets the decoder learn "move one position right after copying",
    which keeps doubled characters ("zz", "00") from collapsing into one.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.query = nn.Linear(cfg.dec_hidden, cfg.attn_dim)
        self.conv = nn.Conv1d(1, cfg.loc_filters, cfg.loc_kernel, padding=cfg.loc_kernel // 2)
        self.loc = nn.Linear(cfg.loc_filters, cfg.attn_dim, bias=False)
        self.energy = nn.Linear(cfg.attn_dim, 1, bias=False)

    def forward(self, hidden, keys, prev_attn, src_mask):
        # hidden: batch x dec_hidden; keys: batch x src_len x attn_dim; prev_attn, src_mask: batch x src_len
        loc = self.loc(self.conv(prev_attn.unsqueeze(1)).transpose(1, 2))  # batch x src_len x attn_dim
        scores = self.energy(torch.tanh(keys + self.query(hidden).unsqueeze(1) + loc)).squeeze(2)
        scores = scores.masked_fill(src_mask < 0.5, NEG)
        return torch.softmax(scores, dim=1)  # batch x src_len


class DecoderStep(nn.Module):
    """One decoder step. Pure: everything it needs comes in, everything it changes goes out.

    Output distribution over the extended vocabulary:
    p = p_gen * softmax(vocab logits) + (1 - p_gen) * sum_j,m attn_j * mode_m * copy_map[j, m].
    """

    def __init__(self, vocab: CharVocab, cfg: ModelConfig, embedding: CharEmbedding):
        super().__init__()
        self.cfg = cfg
        self.embedding = embedding
        self.cell = nn.GRUCell(cfg.emb_dim + cfg.dec_hidden, cfg.dec_hidden)
        self.attention = LocationAttention(cfg)
        self.combine = nn.Linear(cfg.dec_hidden + 2 * cfg.enc_hidden, cfg.dec_hidden)
        self.out = nn.Linear(cfg.dec_hidden, cfg.vocab_size)
        self.gate = nn.Linear(cfg.dec_hidden + 2 * cfg.enc_hidden + cfg.emb_dim, 1)
        self.mode = nn.Linear(cfg.dec_hidden + 2 * cfg.enc_hidden, COPY_MODES)
        self.dropout = nn.Dropout(cfg.dropout)
        # never generate PAD, BOS or UNK from the vocabulary ("no UNK in outputs")
        bias = torch.zeros(cfg.vocab_size)
        bias[[PAD, BOS, UNK]] = NEG
        self.register_buffer("never", bias, persistent=False)

    def forward(self, prev, hidden, prev_attn, feed, enc_out, keys, src_mask, copy_map):
        # prev: batch; hidden, feed: batch x dec_hidden; prev_attn, src_mask: batch x src_len
        # enc_out: batch x src_len x 2*enc_hidden; copy_map: batch x 3*src_len x ext_vocab
        emb = self.embedding(prev)  # batch x emb_dim
        if self.training and self.cfg.prev_char_dropout > 0:
            keep = torch.rand(emb.shape[0], 1, device=emb.device) >= self.cfg.prev_char_dropout
            emb = emb * keep
        emb = self.dropout(emb)
        hidden = self.cell(torch.cat([emb, feed], dim=1), hidden)
        attn = self.attention(hidden, keys, prev_attn, src_mask)
        context = torch.bmm(attn.unsqueeze(1), enc_out).squeeze(1)  # batch x 2*enc_hidden
        state = torch.cat([hidden, context], dim=1)
        feed = self.dropout(torch.tanh(self.combine(state)))
        log_vocab = torch.log_softmax(self.out(feed) + self.never, dim=1)  # batch x vocab
        gate = self.gate(torch.cat([state, emb], dim=1))  # batch x 1
        mode = torch.softmax(self.mode(state), dim=1)  # batch x 3
        return mix_copy(log_vocab, gate, attn, mode, copy_map), hidden, attn, feed

    def teacher_forced(self, prev, hidden, prev_attn, feed, enc_out, keys, src_mask, copy_map):
        """``forward`` unrolled over all target steps at once (training and validation loss).

        The same function as calling ``forward`` once per step with ``prev[:, t]`` (``prev``:
        batch x steps), but only the recurrence stays in the loop: the embeddings, their share of
        the GRU's input product, the output layer, the gates and the copy mixture run once on all
        steps. Small per-step matrix products are what a CPU training step spends its time on.
        Returns log-probabilities: batch x steps x ext_vocab.
        """
        emb = self.embedding(prev)  # batch x steps x emb_dim
        if self.training and self.cfg.prev_char_dropout > 0:
            keep = torch.rand(emb.shape[0], emb.shape[1], 1, device=emb.device) >= self.cfg.prev_char_dropout
            emb = emb * keep
        emb = self.dropout(emb)
        cell, split = self.cell, self.cfg.emb_dim
        gi_emb = F.linear(emb, cell.weight_ih[:, :split], cell.bias_ih)  # batch x steps x 3*dec_hidden
        w_feed = cell.weight_ih[:, split:]
        hiddens, contexts, feeds, attns = [], [], [], []
        attn = prev_attn
        for t in range(prev.shape[1]):
            # nn.GRUCell's arithmetic (gates r, z, n), with the embedding's share precomputed
            i_r, i_z, i_n = (gi_emb[:, t] + F.linear(feed, w_feed)).chunk(3, dim=1)
            h_r, h_z, h_n = F.linear(hidden, cell.weight_hh, cell.bias_hh).chunk(3, dim=1)
            r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
            n = torch.tanh(i_n + r * h_n)
            hidden = n + z * (hidden - n)
            attn = self.attention(hidden, keys, attn, src_mask)
            context = torch.bmm(attn.unsqueeze(1), enc_out).squeeze(1)
            feed = self.dropout(torch.tanh(self.combine(torch.cat([hidden, context], dim=1))))
            hiddens.append(hidden)
            contexts.append(context)
            feeds.append(feed)
            attns.append(attn)
        state = torch.cat([torch.stack(hiddens, 1), torch.stack(contexts, 1)], dim=2)  # batch x steps x ...
        log_vocab = torch.log_softmax(self.out(torch.stack(feeds, 1)) + self.never, dim=2)
        gate = self.gate(torch.cat([state, emb], dim=2))  # batch x steps x 1
        mode = torch.softmax(self.mode(state), dim=2)  # batch x steps x 3
        return mix_copy(log_vocab, gate, torch.stack(attns, 1), mode, copy_map)


def mix_copy(log_vocab: torch.Tensor, gate: torch.Tensor, attn: torch.Tensor, mode: torch.Tensor,
             copy_map: torch.Tensor) -> torch.Tensor:
    """log p over the extended vocabulary: sigmoid(gate) * generate + (1 - sigmoid(gate)) * copy,
    where copying position j in mode m has weight attn_j * mode_m (``copy_map`` says what it emits).

    Mixed in log space: p_gen near 1 makes 1 - p_gen and tiny probabilities lose all precision
    in float32 (and onnxruntime's fast sigmoid is only accurate in absolute terms).
    Works on one step (batch x ...) or on many (batch x steps x ...); ``copy_map`` is per row.
    """
    if attn.dim() == 2:  # one step (the exported graph)
        copy_w = (attn.unsqueeze(2) * mode.unsqueeze(1)).reshape(attn.shape[0], 1, -1)
        p_copy = torch.bmm(copy_w, copy_map).squeeze(1)  # batch x ext_vocab
    else:
        copy_w = (attn.unsqueeze(3) * mode.unsqueeze(2)).flatten(2)  # batch x steps x 3*src_len
        p_copy = torch.bmm(copy_w, copy_map)  # batch x steps x ext_vocab
    log_copy = F.logsigmoid(-gate) + torch.log(p_copy.clamp_min(1e-30))
    vocab_size = log_vocab.shape[-1]
    log_in = _log_add(F.logsigmoid(gate) + log_vocab, log_copy[..., :vocab_size])
    return torch.cat([log_in, log_copy[..., vocab_size:]], dim=-1).clamp_min(-69.0)


def _log_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(exp(a) + exp(b)), stable (torch.logaddexp has no ONNX export in opset 17)."""
    top = torch.maximum(a, b)
    return top + torch.log(torch.exp(a - top) + torch.exp(b - top))


class Seq2Seq(nn.Module):
    def __init__(self, vocab: CharVocab, cfg: ModelConfig):
        super().__init__()
        if cfg.vocab_size != len(vocab):
            raise ValueError(f"config vocab_size {cfg.vocab_size} != vocabulary size {len(vocab)}")
        self.cfg = cfg
        self.embedding = CharEmbedding(vocab, cfg)
        self.encoder = Encoder(cfg)
        self.step = DecoderStep(vocab, cfg, self.embedding)
        self.emb_dropout = nn.Dropout(cfg.dropout)

    def encode(self, src_ids: torch.Tensor, lengths: torch.Tensor):
        """Encoder outputs, attention keys, source mask and the initial decoder state."""
        src_mask = (torch.arange(src_ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)).float()
        enc_out, keys, hidden = self.encoder(self.emb_dropout(self.embedding(src_ids)), lengths)
        return enc_out, keys, src_mask, hidden

    def initial_state(self, hidden: torch.Tensor, src_len: int):
        batch = hidden.shape[0]
        prev_attn = hidden.new_zeros(batch, src_len)
        feed = hidden.new_zeros(batch, self.cfg.dec_hidden)
        return hidden, prev_attn, feed

    def forward(self, src_ids, lengths, copy_map, targets):
        """Teacher-forced log-probabilities: batch x tgt_len x ext_vocab."""
        enc_out, keys, src_mask, hidden = self.encode(src_ids, lengths)
        hidden, attn, feed = self.initial_state(hidden, src_ids.shape[1])
        bos = torch.full((src_ids.shape[0], 1), BOS, dtype=targets.dtype)
        prev = torch.cat([bos, targets[:, :-1]], dim=1)  # the previous target character at each step
        return self.step.teacher_forced(prev, hidden, attn, feed, enc_out, keys, src_mask, copy_map)


def sequence_loss(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood per target character (PAD positions ignored)."""
    return F.nll_loss(log_probs.reshape(-1, log_probs.shape[-1]), targets.reshape(-1), ignore_index=PAD)


class TorchStepper:
    """Adapts a ``Seq2Seq`` to the shared numpy decoding functions (evaluation, parity tests)."""

    def __init__(self, model: Seq2Seq, src_ids: np.ndarray, lengths: np.ndarray, copy_map: np.ndarray):
        self.model = model
        with torch.no_grad():
            enc_out, keys, src_mask, hidden = model.encode(torch.from_numpy(src_ids), torch.from_numpy(lengths))
        self.context = (enc_out, keys, src_mask, torch.from_numpy(copy_map))
        hidden, attn, feed = model.initial_state(hidden, src_ids.shape[1])
        self.state: State = tuple(t.numpy() for t in (hidden, attn, feed))

    def __call__(self, tokens: np.ndarray, state: State, rows: np.ndarray):
        index = torch.from_numpy(rows)
        context = [c.index_select(0, index) for c in self.context]
        with torch.no_grad():
            log_probs, *new_state = self.model.step(
                torch.from_numpy(tokens), *(torch.from_numpy(np.ascontiguousarray(s)) for s in state), *context
            )
        return log_probs.numpy(), tuple(s.numpy() for s in new_state)


def build_model(vocab: CharVocab, seed: int, **overrides) -> Seq2Seq:
    """A freshly initialized model for ``vocab`` (deterministic under ``seed``)."""
    cfg = ModelConfig(vocab_size=len(vocab), **overrides)
    torch.manual_seed(seed)
    return Seq2Seq(vocab, cfg)
