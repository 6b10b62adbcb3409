"""The textbook full attention that the throughput measurement uses as its BERT baseline.

``P = softmax(Q K^T / sqrt(d))`` is materialised as ``[batch, heads, n, n]`` and kept for the
backward pass, ``O = P V`` (Vaswani et al. 2017; BERT's implementation): quadratic memory, which
is what sparse attention is measured against. It takes over a
:class:`~sparsegraph.experiments.models.SparseSelfAttention`'s projections, so the two models have
the same weights.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["EagerFullAttention"]


class EagerFullAttention(nn.Module):
    """Full attention computed with an explicit probability matrix (see the module docstring)."""

    def __init__(self, attn: nn.Module) -> None:
        super().__init__()
        self.qkv, self.out = attn.qkv, attn.out
        self.n_heads, self.head_dim = attn.n_heads, attn.head_dim
        self.cache = attn.cache  # unused here; keeps Encoder.graphs() working

    def forward(self, x: torch.Tensor, n: int, key_padding_mask: torch.Tensor | None = None,
                rotary: object = None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        s = torch.matmul(q, k.transpose(-1, -2)) * self.head_dim**-0.5
        if key_padding_mask is not None:
            s = s.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
        p = torch.softmax(s, dim=-1)
        return self.out(torch.matmul(p, v).transpose(1, 2).reshape(b, t, d))
