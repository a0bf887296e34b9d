"""The decoder step as exported: ``model.DecoderStep`` in eval mode, with its weights folded.

Same inputs, outputs and function as the training module; fewer and larger operations, which
is what a CPU runtime is fast at (benchmarks/clean_throughput.py). ``export.check_parity``
proves every export against the unfolded PyTorch model.

- The previous character's embedding enters the step only through linear maps, so its
  products with the GRU input weights and with the copy gate are tables computed once
  (vocabulary x 3 * dec_hidden, and vocabulary), with the biases folded in.
- The location filters' biases, through their projection, join the query bias.
- The combine, gate and copy-mode projections read the same vector: one matrix product.
- The output bias includes the mask that never generates PAD, BOS or UNK.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from strseq_tasks.core.vocab import UNK
from strseq_tasks.learn.model import NEG, DecoderStep, mix_copy


def _frozen(tensor: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(tensor.detach().clone().contiguous(), requires_grad=False)


class FoldedDecoderStep(nn.Module):
    def __init__(self, step: DecoderStep):
        super().__init__()
        cfg = step.cfg
        hid, emb_dim = cfg.dec_hidden, cfg.emb_dim
        state_dim = cfg.dec_hidden + 2 * cfg.enc_hidden
        self.hid, self.pad = hid, cfg.loc_kernel // 2
        with torch.no_grad():
            vocab_size = step.embedding.fold.shape[0]
            emb = step.embedding(torch.arange(vocab_size))  # vocab x emb_dim
            cell = step.cell
            table = emb @ cell.weight_ih[:, :emb_dim].T + cell.bias_ih  # vocab x 3*hid
            table[:, : 2 * hid] += cell.bias_hh[: 2 * hid]  # reset and update gates add both biases
            self.input_table = _frozen(table)
            self.w_feed = _frozen(cell.weight_ih[:, emb_dim:].T)  # hid x 3*hid
            self.w_hidden = _frozen(cell.weight_hh.T)  # hid x 3*hid
            self.b_hidden_new = _frozen(cell.bias_hh[2 * hid :])  # stays inside reset * (.)
            att = step.attention
            self.w_query = _frozen(att.query.weight.T)  # hid x attn_dim
            self.b_query = _frozen(att.query.bias + att.loc.weight @ att.conv.bias)
            self.w_filters = _frozen(att.conv.weight)  # filters x 1 x kernel
            self.w_loc = _frozen(att.loc.weight.T)  # filters x attn_dim
            self.w_energy = _frozen(att.energy.weight.T)  # attn_dim x 1 (a matrix: onnxruntime is slow on vectors)
            gate_w = step.gate.weight[0]  # state_dim + emb_dim
            self.gate_table = _frozen(emb @ gate_w[state_dim:] + step.gate.bias)  # vocab
            # state -> [combine (hid) | gate (1) | copy modes]
            self.w_state = _frozen(torch.cat([step.combine.weight, gate_w[None, :state_dim], step.mode.weight]).T)
            self.b_state = _frozen(torch.cat([step.combine.bias, torch.zeros(1), step.mode.bias]))
            self.w_out = _frozen(step.out.weight.T)  # hid x vocab
            self.b_out = _frozen(step.out.bias + step.never)

    def forward(self, prev, hidden, prev_attn, feed, enc_out, keys, src_mask, copy_map):
        hid = self.hid
        # extended (copied out-of-vocabulary) ids are read back as UNK, as in CharEmbedding
        prev = torch.where(prev >= self.input_table.shape[0], torch.full_like(prev, UNK), prev)
        gi = self.input_table[prev] + feed @ self.w_feed  # batch x 3*hid
        gh = hidden @ self.w_hidden
        reset, update = torch.sigmoid(gi[:, : 2 * hid] + gh[:, : 2 * hid]).chunk(2, dim=1)
        new = torch.tanh(gi[:, 2 * hid :] + reset * (gh[:, 2 * hid :] + self.b_hidden_new))
        hidden = new + update * (hidden - new)  # (1 - update) * new + update * hidden
        filters = F.conv1d(prev_attn.unsqueeze(1), self.w_filters, padding=self.pad)  # batch x filters x src_len
        loc = filters.transpose(1, 2) @ self.w_loc  # batch x src_len x attn_dim
        query = (hidden @ self.w_query + self.b_query).unsqueeze(1)
        scores = (torch.tanh(keys + query + loc) @ self.w_energy).squeeze(2)  # batch x src_len
        attn = torch.softmax(scores.masked_fill(src_mask < 0.5, NEG), dim=1)
        context = torch.bmm(attn.unsqueeze(1), enc_out).squeeze(1)  # batch x 2*enc_hidden
        projected = torch.cat([hidden, context], dim=1) @ self.w_state + self.b_state
        feed = torch.tanh(projected[:, :hid])
        gate = projected[:, hid : hid + 1] + self.gate_table[prev].unsqueeze(1)  # batch x 1
        mode = torch.softmax(projected[:, hid + 1 :], dim=1)  # batch x 3
        log_vocab = torch.log_softmax(feed @ self.w_out + self.b_out, dim=1)
        return mix_copy(log_vocab, gate, attn, mode, copy_map), hidden, attn, feed
