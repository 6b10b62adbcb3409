"""The ``dense`` backend: ``F.scaled_dot_product_attention`` with the layout's dense bool mask.

Quadratic in n, but PyTorch's fused CPU kernel makes it the fastest path when a layout computes
most of the dense entries anyway (BigBird at n=1024 is 55 % dense); ``auto`` picks it there.
A query row without edges would make SDPA divide by zero (NaN): such rows get an all-true mask
(finite, discarded) and their output is multiplied by 0, which also zeroes their gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sparsegraph.kernels.device import DeviceLayout

__all__ = ["attention"]


def _rows_with_edges(mask: torch.Tensor) -> torch.Tensor:
    """``mask.any(-1, keepdim=True)`` for a bool mask, computed as a uint8 max: torch's CPU
    ``any`` over the last dimension was 45x slower (57 ms against 1.3 ms for a
    [32, 4, 272, 272] mask, the ListOps shape of the ``cpu`` preset)."""
    return mask.view(torch.uint8).amax(-1, keepdim=True).bool()


def _masks(layout: DeviceLayout, key_padding_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask safe for SDPA, rows-with-edges as bool), cached on the layout when there is no padding."""
    if key_padding_mask is None:
        key = ("dense", "safe_mask")
        if key not in layout.cache:
            mask = layout.dense_mask().unsqueeze(0)
            has = _rows_with_edges(mask)
            layout.cache[key] = (mask | ~has, has)
        return layout.cache[key]
    mask = layout.dense_mask().unsqueeze(0) & ~key_padding_mask[:, None, None, :]
    has = _rows_with_edges(mask)
    if not bool(has.all()):
        mask |= ~has
    return mask, has


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    layout: DeviceLayout,
    *,
    scale: float,
    key_padding_mask: torch.Tensor | None,
) -> torch.Tensor:
    if key_padding_mask is None and layout.layout.complete:
        # every pair is an edge: no mask, so SDPA may use its fused (memory-linear) kernel
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    safe, has = _masks(layout, key_padding_mask)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, scale=scale)
    if bool(has.all()):
        return out
    return out * has.to(out.dtype)
