"""FlexAttention interop: a :class:`~sparsegraph.layout.BlockLayout` as a PyTorch ``BlockMask``.

``to_flex_block_mask(layout)`` gives the same exact pattern to
``torch.nn.attention.flex_attention.flex_attention``, so any FlexAttention model can use this
project's patterns. The layout's full blocks become FlexAttention's *full* blocks (no mask_mod
call); its partial blocks become the mask_mod-evaluated blocks. The mask_mod is the exact edge
set everywhere: it reads the packed bitmask (``(word >> bit) & 1``) through a dense
``[heads, Qb, Kb]`` table of mask indices (full blocks: an all-ones tile; unlisted: False).
The block sizes are the layout's ``(block_q, block_k)``.

FlexAttention on CPU (torch 2.13, checked here): the forward needs ``torch.compile`` (eager
flex_attention runs an unfused reference); its backward on CPU raises NotImplementedError. See
docs/kernels.md.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.attention.flex_attention import BlockMask

from sparsegraph.kernels.device import DeviceLayout, prepare
from sparsegraph.layout import BlockLayout

__all__ = ["to_flex_block_mask"]


def to_flex_block_mask(
    layout: BlockLayout | DeviceLayout, device: torch.device | str | None = None
) -> BlockMask:
    """The layout as a FlexAttention ``BlockMask`` (batch 1, heads = the layout's heads).

    A shared layout (``heads == 1``) broadcasts over the model's heads, as FlexAttention does
    for a head dimension of 1. Queries without edges give zeros in FlexAttention too.
    """
    dl = prepare(layout, device)
    bl = dl.layout
    dev = dl.device
    H, Qb, Kb = bl.heads, bl.num_q_blocks, bl.num_k_blocks
    counts = torch.from_numpy(bl.blocks_per_row()).to(torch.int32).view(H, Qb)
    width = max(Kb, 1)  # FlexAttention's kv_indices are [.., Qb, Kb]: it densifies them to Kb columns
    # Per row: partial blocks first, then full ones, each ascending, padded with 0 (undefined).
    row = torch.repeat_interleave(torch.arange(H * Qb), counts.view(-1).long())
    col = dl.col_idx.cpu().long()
    is_full = dl.mask_idx.cpu() < 0
    kv_num, kv_idx = _pack(row[~is_full], col[~is_full], H * Qb, width)
    full_num, full_idx = _pack(row[is_full], col[is_full], H * Qb, width)
    # mask_mod must be the exact mask everywhere (FlexAttention only *skips* it on full blocks,
    # and its eager path evaluates it on every pair): table -> a bitmask for every listed block,
    # full blocks pointing at an all-ones tile; -1 = not listed.
    n_partial = bl.n_partial
    ones = torch.full((1, bl.block_q, bl.words), -1, dtype=torch.int32)  # every bit set
    tile = torch.where(dl.mask_idx.cpu() < 0, torch.tensor(n_partial, dtype=torch.int32), dl.mask_idx.cpu())
    table = torch.full((H, Qb, Kb), -1, dtype=torch.int32)
    table.view(-1)[row * Kb + col] = tile
    masks = torch.cat([dl.masks.cpu(), ones])
    table, masks = table.to(dev), masks.to(dev)
    bq, bk = bl.block_q, bl.block_k

    def mask_mod(b: Any, h: Any, q_idx: Any, kv_idx: Any) -> Any:
        hh = h if H > 1 else h * 0
        p = table[hh, q_idx // bq, kv_idx // bk]
        local_k = kv_idx % bk
        word = masks[torch.clamp(p, min=0), q_idx % bq, local_k // 32]
        bit = (word >> (local_k % 32)) & 1
        return (p >= 0) & (bit == 1)

    shape = lambda t: t.view(1, H, Qb, *t.shape[1:]).to(dev)  # noqa: E731
    return BlockMask.from_kv_blocks(
        shape(kv_num), shape(kv_idx), shape(full_num), shape(full_idx),
        BLOCK_SIZE=(bq, bk), mask_mod=mask_mod, seq_lengths=(bl.n_q, bl.n_k),
    )


def _pack(rows: torch.Tensor, cols: torch.Tensor, n_rows: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(count per row int32[n_rows], indices int32[n_rows, width]) of row-sorted entries."""
    num = torch.bincount(rows, minlength=n_rows).to(torch.int32)
    idx = torch.zeros(n_rows, width, dtype=torch.int32)
    if rows.numel():
        starts = torch.cumsum(num.long(), 0) - num.long()
        slot = torch.arange(rows.numel()) - starts[rows]
        idx[rows, slot] = cols.to(torch.int32)
    return num, idx
