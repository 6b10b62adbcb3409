"""Execution plan of the ``torch`` backend: query-block rows grouped into buckets and chunks.

The ``torch`` backend (``kernels.torch_backend``) works on flattened block views: queries as
``[slices * Qb, block_q, d]`` and keys/values as ``[slices * Kb, block_k, d]``, where a *slice* is
one (batch, head) pair (``s = b * heads + h``); query-block row ``r`` of slice ``s`` is row
``s * Qb + r``. Rows are computed with batched matmuls, which need rows of equal length, so:

* sparse buckets: the rows with exactly ``L`` listed key blocks (BigBird's regular rows have
  7..10); a chunk of them gathers its key/value blocks into ``[rows, L * block_k, d]`` and runs
  ``[block_q, d] x [d, L * block_k]`` matmuls. One long row never pads the others.
* dense buckets: rows listing at least ``DENSE_ROW_FRACTION`` of their head's key blocks (global
  rows) are computed against the whole key sequence of their slice, with no gather, one chunk
  per slice; the unlisted blocks are masked out.

All rows are processed in *plan order*: the queries are permuted once per call so that every
chunk's rows are one contiguous slice (no per-chunk gather or scatter of queries and outputs).

Masks: each chunk entry has a *tile*: ``FULL`` (no mask), a partial block's bitmask, or ``EMPTY``
(an unlisted block of a dense row). A chunk whose tiles are all ``FULL`` is not masked at all.

A plan depends on the layout, the number of slices (batch * heads) and head_dim (chunk size); it
is built once and cached on the ``DeviceLayout``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sparsegraph.kernels.device import DeviceLayout

__all__ = ["Plan", "Chunk", "plan_for", "tile_table", "DENSE_ROW_FRACTION", "CHUNK_BYTES"]

#: A row listing at least this fraction of its head's key blocks is computed densely (no gather).
DENSE_ROW_FRACTION = 0.75

#: Target bytes of one chunk's float32 score matrix. Each chunk costs a handful of multi-threaded
#: torch ops, whose start-up dominates when chunks are small and the machine is shared; chunks of
#: ~8 MB keep the per-call op count in the tens while the scores of one chunk stay in L3.
CHUNK_BYTES = 4 << 20


@dataclass(frozen=True)
class Chunk:
    """Rows ``start:end`` of the plan order, ``L`` key blocks each.

    Sparse chunk: ``cols`` int64 ``[rows * L]``, the key blocks (``s * Kb + c``) of each row.
    Dense chunk: ``cols`` is None and ``slice_`` names the slice whose whole key sequence is used.
    ``pad_cols``: int64 key-padding blocks (``b * Kb + c``) per entry (``[rows * L]``, dense:
    ``[Kb]``). ``tiles``: int64 ``[rows * L]`` ids into :func:`tile_table`, None if all FULL.
    """

    start: int
    end: int
    L: int
    cols: torch.Tensor | None
    slice_: int
    pad_cols: torch.Tensor
    tiles: torch.Tensor | None

    @property
    def rows(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Plan:
    chunks: tuple[Chunk, ...]
    order: torch.Tensor  # int64 [A]: row id (s * Qb + r) of each plan position (A active rows)
    inverse: torch.Tensor  # int64 [slices * Qb]: plan position of each row; A for rows without blocks
    max_entries: int  # max over chunks of rows * L (sizes the reusable buffers)
    tiles: torch.Tensor  # bool [n_partial + 2, block_q, block_k], True = masked; FULL, EMPTY last


def tile_table(dl: DeviceLayout) -> torch.Tensor:
    """Bool ``[n_partial + 2, block_q, block_k]``, True where a (query, key) pair is *not* an edge
    (the entries to mask out): the partial blocks' inverted bitmasks, then the ``FULL`` tile (all
    false) and the ``EMPTY`` tile (all true). Cached on the layout."""
    key = ("torch", "tiles")
    if key not in dl.cache:
        bl = dl.layout
        bits = torch.arange(32, device=dl.device, dtype=torch.int32)
        blocked = ((dl.masks.unsqueeze(-1) >> bits) & 1) == 0  # [P, bq, W, 32]
        blocked = blocked.reshape(bl.n_partial, bl.block_q, bl.words * 32)[:, :, : bl.block_k]
        extra = torch.stack([
            torch.zeros(bl.block_q, bl.block_k, dtype=torch.bool, device=dl.device),
            torch.ones(bl.block_q, bl.block_k, dtype=torch.bool, device=dl.device),
        ])
        dl.cache[key] = torch.cat([blocked, extra]).contiguous()
    return dl.cache[key]


def plan_for(dl: DeviceLayout, batch: int, heads: int, head_dim: int) -> Plan:
    """The plan for ``batch x heads`` slices and ``head_dim``, built once per layout and shape."""
    key = ("torch", "plan", batch, heads, head_dim)
    if key not in dl.cache:
        dl.cache[key] = _build(dl, batch, heads, head_dim)
    return dl.cache[key]


def _build(dl: DeviceLayout, batch: int, heads: int, head_dim: int) -> Plan:
    bl = dl.layout
    Qb, Kb, bq, bk = bl.num_q_blocks, bl.num_k_blocks, bl.block_q, bl.block_k
    tiles = tile_table(dl)
    full_tile, empty_tile = bl.n_partial, bl.n_partial + 1
    counts = bl.blocks_per_row()  # per layout row lh * Qb + r
    starts = bl.row_ptr[:-1].astype(np.int64)
    tile_of = np.where(bl.mask_idx < 0, full_tile, bl.mask_idx).astype(np.int64)
    dense_row = counts >= max(1.0, DENSE_ROW_FRACTION * Kb)
    dev = dl.device
    as_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(dev)  # noqa: E731

    # Every (slice, query block): its slice s, batch b, layout row lr.
    S = batch * heads
    s_of = np.repeat(np.arange(S), Qb)
    lh = np.zeros(S, np.int64) if bl.heads == 1 else np.tile(np.arange(heads), batch)
    lr = (lh[:, None] * Qb + np.arange(Qb)).ravel()
    b_of = s_of // heads
    L_of = counts[lr] if lr.size else np.zeros(0, np.int64)

    chunks: list[Chunk] = []
    order: list[np.ndarray] = []
    pos = 0
    max_entries = 0
    per_row_bytes = lambda width: 4 * (bq * width + 2 * width * head_dim)  # noqa: E731

    def add(rows: np.ndarray, L: int, cols, slice_: int, pad_cols: np.ndarray, tile_ids: np.ndarray) -> None:
        nonlocal pos, max_entries
        chunks.append(Chunk(
            start=pos, end=pos + rows.size, L=L, cols=None if cols is None else as_t(cols.ravel()),
            slice_=slice_, pad_cols=as_t(pad_cols.ravel()),
            tiles=None if np.all(tile_ids == full_tile) else as_t(tile_ids.ravel()),
        ))
        order.append(rows)
        pos += rows.size
        max_entries = max(max_entries, tile_ids.size)

    sparse = (L_of > 0) & ~dense_row[lr]
    for L in np.unique(L_of[sparse]):
        L = int(L)
        rows = np.flatnonzero(sparse & (L_of == L))  # row ids s * Qb + r, ascending
        entries = starts[lr[rows], None] + np.arange(L)  # [R, L] positions in the layout arrays
        c = bl.col_idx[entries].astype(np.int64)
        cols = c + (s_of[rows] * Kb)[:, None]
        pad_cols = c + (b_of[rows] * Kb)[:, None]
        tile_ids = tile_of[entries]
        per_chunk = max(1, CHUNK_BYTES // per_row_bytes(L * bk))
        for a in range(0, rows.size, per_chunk):
            sl = slice(a, a + per_chunk)
            add(rows[sl], L, cols[sl], 0, pad_cols[sl], tile_ids[sl])
    dense = (L_of > 0) & dense_row[lr]
    for s in np.unique(s_of[dense]):
        rows = np.flatnonzero(dense & (s_of == s))
        per_chunk = max(1, CHUNK_BYTES // per_row_bytes(Kb * bk))
        for a in range(0, rows.size, per_chunk):
            rs = rows[a: a + per_chunk]
            t = np.full((rs.size, Kb), empty_tile, np.int64)
            for i, row in enumerate(rs):
                e = np.arange(starts[lr[row]], starts[lr[row]] + counts[lr[row]])
                t[i, bl.col_idx[e]] = tile_of[e]
            add(rs, Kb, None, int(s), np.arange(Kb) + b_of[rs[0]] * Kb, t)
    order_np = np.concatenate(order) if order else np.zeros(0, np.int64)
    inverse = np.full(S * Qb, order_np.size, np.int64)  # rows without blocks read a zero row
    inverse[order_np] = np.arange(order_np.size)
    return Plan(tuple(chunks), as_t(order_np), as_t(inverse), max_entries, tiles)
