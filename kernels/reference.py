"""The ``reference`` backend: dense masked softmax in float64, the oracle every backend is tested
against. Quadratic memory: refuses more than ``MAX_ENTRIES`` score entries.

    S = q k^T * scale;  S[i, j] = -inf where (i -> j) is no edge or j is padding;
    P = softmax(S) per row, with P = 0 on a row without edges;  out = P v.
"""

from __future__ import annotations

import torch

from sparsegraph.kernels.device import DeviceLayout

__all__ = ["attention", "MAX_ENTRIES"]

#: Largest ``batch * heads * n_q * n_k`` the reference computes (2**26 float64 = 512 MB per tensor).
MAX_ENTRIES = 2**26


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    layout: DeviceLayout,
    *,
    scale: float,
    key_padding_mask: torch.Tensor | None,
) -> torch.Tensor:
    """Exact graph attention in float64, cast back to q's dtype; autograd gives the gradients."""
    batch, heads, n_q, _ = q.shape
    n_k = k.shape[2]
    entries = batch * heads * n_q * n_k
    if entries > MAX_ENTRIES:
        raise ValueError(
            f"the reference backend is for small checks: batch*heads*n_q*n_k = {entries} exceeds "
            f"{MAX_ENTRIES}; use backend='torch' (or 'auto') for this size"
        )
    mask = layout.dense_mask().unsqueeze(0)  # [1, heads or 1, n_q, n_k]
    if key_padding_mask is not None:
        mask = mask & ~key_padding_mask[:, None, None, :]
    qd, kd, vd = q.double(), k.double(), v.double()
    s = torch.matmul(qd, kd.transpose(-1, -2)) * scale
    s = s.masked_fill(~mask, float("-inf"))
    # Shift by the row max (a constant per row, so detached); rows without edges shift by 0.
    m = s.detach().amax(-1, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    p = torch.exp(s - m)
    denom = p.sum(-1, keepdim=True)
    p = p / torch.where(denom > 0, denom, torch.ones_like(denom))
    return torch.matmul(p, vd).to(q.dtype)
