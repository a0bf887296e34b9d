"""Character language models that initialize the normalizer (transfer learning).

``CharLM`` holds three language models over one shared ``CharEmbedding``, each with exactly
the shapes of a part of ``Seq2Seq`` so that its weights can be copied in:

- a **forward** GRU LM (reads a string left to right, predicts the next character)
  -> the forward direction of the bidirectional encoder;
- a **backward** GRU LM (reads right to left, predicts the previous character)
  -> the encoder's reverse direction;
- a **decoder** LM: the decoder's GRU cell with input feeding, its ``combine`` layer (the
  attention context absent) and its output layer -> ``DecoderStep.cell``, the hidden-state
  columns of ``DecoderStep.combine`` and ``DecoderStep.out``. This is the part that knows
  which strings are plausible outputs (valid words, name shapes, date layouts).

The encoder LMs read the characters alone (no BOS), as the encoder does; both predict EOS at
the string's edge. The decoder LM reads BOS + string and predicts string + EOS, as the
decoder does under teacher forcing.

Vocabulary: a fine-tuned model's vocabulary is the LM's vocabulary with the pairs' new
characters appended (``extend_vocab``), so every LM row keeps its id; new characters get
fresh rows.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from strseq_tasks.core.vocab import BOS, EOS, PAD, UNK, CharVocab, lower_char, normalize_text, upper_char
from strseq_tasks.learn.model import NEG, CharEmbedding, ModelConfig, Seq2Seq

# Model dimensions an LM fixes for every normalizer fine-tuned from it.
SHARED_DIMS = ("emb_dim", "case_dim", "enc_hidden", "dec_hidden")
HEADS = ("forward", "backward", "decoder")


@dataclass(frozen=True)
class LMConfig:
    vocab_size: int
    emb_dim: int = ModelConfig.emb_dim
    case_dim: int = ModelConfig.case_dim
    enc_hidden: int = ModelConfig.enc_hidden
    dec_hidden: int = ModelConfig.dec_hidden
    dropout: float = 0.1  # on embeddings and LM outputs while pretraining

    def to_dict(self) -> dict:
        return asdict(self)

    def model_dims(self) -> dict:
        return {k: getattr(self, k) for k in SHARED_DIMS}


def lm_vocab(texts: Iterable[str], min_count: int = 1) -> CharVocab:
    """Characters seen at least ``min_count`` times (NFC; letters in both cases), plus printable ASCII.

    Rare characters stay out: they would get rows the LM never learns. At fine-tuning time a
    character outside the vocabulary is copied (or gets a fresh row if the pairs use it).
    """
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(normalize_text(text))
    keep = {chr(c) for c in range(32, 127)}
    for char, n in counts.items():
        if n >= min_count and char.isprintable():
            keep.update((char, lower_char(char), upper_char(char)))
    return CharVocab(tuple(sorted(keep)))


def extend_vocab(base: CharVocab, texts: Iterable[str]) -> CharVocab:
    """``base`` with every new character of ``texts`` appended (both cases of letters).

    Every character of ``base`` keeps its id, so weights indexed by id carry over unchanged.
    """
    new = set(CharVocab.build(texts).chars) - set(base.chars)
    return CharVocab(base.chars + tuple(sorted(new)))


class CharLM(nn.Module):
    def __init__(self, vocab: CharVocab, cfg: LMConfig):
        super().__init__()
        if cfg.vocab_size != len(vocab):
            raise ValueError(f"config vocab_size {cfg.vocab_size} != vocabulary size {len(vocab)}")
        self.cfg = cfg
        self.embedding = CharEmbedding(vocab, cfg)
        self.forward_rnn = nn.GRU(cfg.emb_dim, cfg.enc_hidden, batch_first=True)
        self.backward_rnn = nn.GRU(cfg.emb_dim, cfg.enc_hidden, batch_first=True)
        self.forward_head = nn.Linear(cfg.enc_hidden, cfg.vocab_size)
        self.backward_head = nn.Linear(cfg.enc_hidden, cfg.vocab_size)
        self.cell = nn.GRUCell(cfg.emb_dim + cfg.dec_hidden, cfg.dec_hidden)
        self.combine = nn.Linear(cfg.dec_hidden, cfg.dec_hidden)
        self.out = nn.Linear(cfg.dec_hidden, cfg.vocab_size)
        self.dropout = nn.Dropout(cfg.dropout)
        never = torch.zeros(cfg.vocab_size)
        never[[PAD, BOS, UNK]] = NEG  # as in DecoderStep: specials other than EOS are never predicted
        self.register_buffer("never", never, persistent=False)

    def _encoder_lm(self, rnn: nn.GRU, head: nn.Linear, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # ids: batch x len (characters only); returns logits batch x len x vocab predicting the
        # next character at each position, and EOS after the last one
        emb = self.dropout(self.embedding(ids))
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        return head(self.dropout(out)) + self.never

    def _decoder_lm(self, ids: torch.Tensor) -> torch.Tensor:
        # ids: batch x len; input BOS + ids, returns logits batch x (len + 1) x vocab
        batch = ids.shape[0]
        prev = torch.cat([torch.full((batch, 1), BOS, dtype=ids.dtype), ids], dim=1)
        emb = self.dropout(self.embedding(prev))  # batch x (len + 1) x emb_dim
        hidden = emb.new_zeros(batch, self.cfg.dec_hidden)
        feed = emb.new_zeros(batch, self.cfg.dec_hidden)
        steps = []
        for t in range(prev.shape[1]):
            hidden = self.cell(torch.cat([emb[:, t], feed], dim=1), hidden)
            feed = self.dropout(torch.tanh(self.combine(hidden)))
            steps.append(self.out(feed))
        return torch.stack(steps, dim=1) + self.never

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> dict[str, tuple[torch.Tensor, int]]:
        """Summed negative log-likelihood (nats) and the number of predicted characters, per LM."""
        targets = next_targets(ids, lengths)
        reversed_ids = reverse_rows(ids, lengths)
        decoder_targets = torch.cat([ids, torch.full((ids.shape[0], 1), PAD, dtype=ids.dtype)], dim=1)
        decoder_targets[torch.arange(ids.shape[0]), lengths] = EOS
        decoder_targets = torch.where(decoder_targets == UNK, torch.full_like(decoder_targets, PAD), decoder_targets)
        logits = {
            "forward": (self._encoder_lm(self.forward_rnn, self.forward_head, ids, lengths), targets),
            "backward": (self._encoder_lm(self.backward_rnn, self.backward_head, reversed_ids, lengths),
                         next_targets(reversed_ids, lengths)),
            "decoder": (self._decoder_lm(ids), decoder_targets),
        }
        out = {}
        for name, (logit, target) in logits.items():
            nll = F.cross_entropy(logit.reshape(-1, logit.shape[-1]), target.reshape(-1), ignore_index=PAD,
                                  reduction="sum")
            out[name] = (nll, int((target != PAD).sum()))
        return out


def next_targets(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Per position, the next character's id (EOS after the last); PAD beyond the end and for UNK."""
    shifted = torch.cat([ids[:, 1:], torch.full((ids.shape[0], 1), PAD, dtype=ids.dtype)], dim=1)
    shifted[torch.arange(ids.shape[0]), lengths - 1] = EOS
    positions = torch.arange(ids.shape[1]).unsqueeze(0)
    shifted = torch.where(positions < lengths.unsqueeze(1), shifted, torch.full_like(shifted, PAD))
    return torch.where(shifted == UNK, torch.full_like(shifted, PAD), shifted)  # UNK is not a target


def reverse_rows(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Each row's characters in reverse order (padding stays at the end)."""
    positions = torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)
    index = torch.where(positions < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - positions, positions)
    return ids.gather(1, index)


def bits_per_char(nll: float, count: int) -> float:
    return nll / max(count, 1) / math.log(2)


def build_lm(vocab: CharVocab, seed: int, **dims) -> CharLM:
    torch.manual_seed(seed)
    return CharLM(vocab, LMConfig(vocab_size=len(vocab), **dims))


def _copy_rows(dst: torch.Tensor, src: torch.Tensor) -> None:
    """Copy ``src`` into the first rows of ``dst`` (shapes must agree beyond the first axis)."""
    if dst.shape[1:] != src.shape[1:] or dst.shape[0] < src.shape[0]:
        raise ValueError(f"cannot copy a {tuple(src.shape)} tensor into {tuple(dst.shape)}")
    dst[: src.shape[0]] = src


def resize_lm(lm: CharLM, old: CharVocab, new: CharVocab, seed: int) -> CharLM:
    """A copy of ``lm`` over ``new`` (an extension of ``old``): old rows kept, new rows fresh."""
    if new.chars[: len(old.chars)] != old.chars:
        raise ValueError("the new vocabulary must extend the old one (same characters first, same order)")
    grown = build_lm(new, seed, **lm.cfg.model_dims(), dropout=lm.cfg.dropout)
    source = lm.state_dict()
    with torch.no_grad():
        for name, tensor in grown.state_dict().items():
            if name in ("embedding.fold", "embedding.case_of"):
                continue  # recomputed from the new vocabulary
            _copy_rows(tensor, source[name])
    return grown


def check_compatible(lm_cfg: LMConfig, model_cfg: ModelConfig) -> None:
    clashes = [f"{k}: model {getattr(model_cfg, k)} vs LM {getattr(lm_cfg, k)}"
               for k in SHARED_DIMS if getattr(model_cfg, k) != getattr(lm_cfg, k)]
    if clashes:
        raise ValueError("the model's sizes must match the pretrained LM's (" + "; ".join(clashes) + ")")


def initialize_from_lm(model: Seq2Seq, model_vocab: CharVocab, lm: CharLM, lm_vocab_: CharVocab) -> list[str]:
    """Copy the LM's weights into ``model``; returns the names of the model tensors written.

    ``model_vocab`` must extend ``lm_vocab_`` (see ``extend_vocab``): rows of characters the LM
    does not know keep their fresh initialization.
    """
    check_compatible(lm.cfg, model.cfg)
    if model_vocab.chars[: len(lm_vocab_.chars)] != lm_vocab_.chars:
        raise ValueError("the model's vocabulary must extend the LM's (use lm.extend_vocab)")
    lm_state = lm.state_dict()
    h = model.cfg.dec_hidden
    plan = {
        "embedding.rows.weight": lm_state["embedding.rows.weight"],
        "embedding.case.weight": lm_state["embedding.case.weight"],
        "embedding.case_proj.weight": lm_state["embedding.case_proj.weight"],
        "step.cell.weight_ih": lm_state["cell.weight_ih"],
        "step.cell.weight_hh": lm_state["cell.weight_hh"],
        "step.cell.bias_ih": lm_state["cell.bias_ih"],
        "step.cell.bias_hh": lm_state["cell.bias_hh"],
        "step.combine.bias": lm_state["combine.bias"],
        "step.out.weight": lm_state["out.weight"],
        "step.out.bias": lm_state["out.bias"],
    }
    for part in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        plan[f"encoder.gru.{part}"] = lm_state[f"forward_rnn.{part}"]
        plan[f"encoder.gru.{part}_reverse"] = lm_state[f"backward_rnn.{part}"]
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in plan.items():
            _copy_rows(params[name], value)
        params["step.combine.weight"][:, :h] = lm_state["combine.weight"]
        # Connections the LM did not have start at zero, so the decoder starts out computing exactly
        # the decoder LM (attention context ignored, initial state zero) and learns to use them:
        # the attention context's columns of combine, and the encoder-to-decoder initial state.
        params["step.combine.weight"][:, h:] = 0.0
        params["encoder.init_state.weight"].zero_()
        params["encoder.init_state.bias"].zero_()
    return sorted([*plan, "step.combine.weight", "encoder.init_state.weight", "encoder.init_state.bias"])


__all__ = ["CharLM", "LMConfig", "bits_per_char", "build_lm", "extend_vocab", "initialize_from_lm",
           "lm_vocab", "resize_lm"]
