"""The ``triton`` backend: one generic block-sparse attention kernel for any ``BlockLayout``.

What it computes (docs/semantics.md, "What kernels.attention computes"): for query ``i`` of
head ``h`` with edge set ``E(h, i) = {j : i -> j}`` (minus padded keys),

    s_ij  = scale * <q_i, k_j>                                    j in E(h, i)
    lse_i = log sum_{j in E(h, i)} exp(s_ij)                      (-inf when E(h, i) is empty)
    o_i   = sum_{j in E(h, i)} exp(s_ij - lse_i) v_j              (0 when E(h, i) is empty)

with ``scale = 1/sqrt(head_dim)`` by default (Vaswani et al. 2017). It is exact: no entry outside
the graph contributes, no entry of the graph is dropped.

How: FlashAttention-2 (Dao 2023, "FlashAttention-2: Faster Attention with Better Parallelism and
Work Partitioning", arXiv:2307.08691) restricted to the blocks a ``sparsegraph.layout.BlockLayout``
lists, the block-sparse generalisation of Dao et al. 2022 (arXiv:2205.14135, section 3.3).

* Forward, ``_attn_fwd``: one program per (query tile, batch * head); a tile is the layout block or,
  for blocks larger than ``max_tile``, a part of it. It walks the key blocks of its layout row,
  ``col_idx[row_ptr[r] : row_ptr[r + 1]]``, loads each K/V tile, applies the packed
  bitmask only when the block is partial (``mask_idx >= 0``), keeps a running max ``m``, running
  sum ``l`` and un-normalised accumulator (the online softmax), and stores ``O = acc / l`` and the
  log-sum-exp ``lse = m + log l`` (natural log) for the backward.
* Backward (the FlashAttention-2 split into two kernels so that no program needs atomics):
  ``_attn_bwd_preprocess`` computes ``delta_i = sum_d dO_id * O_id``; ``_attn_bwd_dq`` walks the
  same row lists and accumulates ``dQ = scale * dS K`` with ``P = exp(S - lse)`` recomputed and
  ``dS = P * (dO V^T - delta)``; ``_attn_bwd_dkdv`` walks the column lists (``col_ptr``,
  ``row_idx``; ``col_perm`` finds each entry's mask) and accumulates ``dV = P^T dO`` and
  ``dK = scale * dS^T Q`` for one key tile.

Softmax runs in base 2 (``exp2``; scores pre-multiplied by ``log2(e)``) as in the Triton tutorial:
one multiply per score instead of a call to ``exp``. Everything accumulates in float32; float16 and
bfloat16 inputs go to ``tl.dot`` as they are (tensor cores on a GPU).

Queries with no edges (empty rows, rows whose keys are all padding, query positions past ``n_q``
in a tail block) would produce ``-inf - (-inf) = NaN`` in a naive online softmax; the kernels guard
the ``m = -inf`` and ``l = 0`` cases so such queries output exact zeros and receive zero gradients.

Runs on: an NVIDIA GPU (compiled), or the CPU under ``TRITON_INTERPRET=1`` (set before triton is
imported), which is how the tests check it. It has only ever been *run* in the interpreter on CPU,
and compiled (not run) for sm_80 and sm_90 by ``kernels.triton_compile_check``; see
docs/kernels.md, "Triton backend".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from sparsegraph.kernels.device import DeviceLayout, prepare
from sparsegraph.layout import BlockLayout

__all__ = ["attention", "triton_forward", "is_interpreted", "SUPPORTED_BLOCK_SIZES", "DEFAULT_MAX_TILE"]

#: Block sizes the kernels are written for (``tl.dot`` needs every dimension >= 16; powers of two).
SUPPORTED_BLOCK_SIZES = (16, 32, 64, 128)
#: Largest kernel tile by default, by dtype. Compiled for sm_80 (docs/kernels.md), 128 x 128 tiles
#: spill registers and need up to 160 KB of shared memory, and float32 64 x 64 tiles spill; a layout
#: block larger than the tile is computed as several tiles.
DEFAULT_MAX_TILE = {torch.float16: 64, torch.bfloat16: 64, torch.float32: 32}
_MIN_HEAD_DIM, _MAX_HEAD_DIM = 16, 128
_LOG2E = 1.4426950408889634  # 1 / ln 2

_TL_DTYPES = {torch.float32: tl.float32, torch.float16: tl.float16, torch.bfloat16: tl.bfloat16}


# ---------------------------------------------------------------------------------------------
# Kernels
#
# Tiles: a program works on TILE_Q query rows and TILE_K keys at a time. A layout block larger
# than the tile (block 128 with the default 64 tiles) is covered by several tiles: several
# programs per query block (forward, dQ) or per key block (dK/dV), and several key (query)
# sub-tiles per listed block in the loop. Tiles are capped because 128 x 128 tiles spill registers
# and need more shared memory than many GPUs have (docs/kernels.md, compiled resource table).
# ---------------------------------------------------------------------------------------------
@triton.jit
def _tile_edges(masks, mask_id, offs_r, c0,
                BLOCK_Q: tl.constexpr, MASK_WORDS: tl.constexpr, TILE_Q: tl.constexpr,
                TILE_WORDS: tl.constexpr, TILE_BITS: tl.constexpr):
    """Edges of partial block ``mask_id`` for block rows ``offs_r`` and block columns
    ``c0 .. c0 + TILE_K - 1``, as a bool tile [TILE_Q, TILE_K] (TILE_K = TILE_WORDS * TILE_BITS).

    ``masks[p, r, w]`` bit ``b`` is the edge (row ``r``, column ``32 * w + b``) of the block. The
    tile's TILE_WORDS words per row are loaded once and expanded by broadcasting shifts; a 16-key
    tile reads 16 bits of one word starting at bit ``c0 % 32``.
    """
    base = masks + mask_id.to(tl.int64) * (BLOCK_Q * MASK_WORDS) + c0 // 32
    words = tl.load(base + offs_r[:, None] * MASK_WORDS + tl.arange(0, TILE_WORDS)[None, :])
    # Arithmetic shift of a negative word (bit 31 set) keeps bit 31 in place: `& 1` reads it right.
    bits = (words[:, :, None] >> ((c0 % 32) + tl.arange(0, TILE_BITS))[None, None, :]) & 1
    return tl.reshape(bits, [TILE_Q, TILE_WORDS * TILE_BITS]) != 0


@triton.jit
def _tile_edges_t(masks, mask_id, offs_r, c0,
                  BLOCK_Q: tl.constexpr, MASK_WORDS: tl.constexpr, TILE_Q: tl.constexpr,
                  TILE_WORDS: tl.constexpr, TILE_BITS: tl.constexpr):
    """``_tile_edges`` transposed: the bool tile [TILE_K, TILE_Q] (keys x queries), built directly
    in that orientation (words loaded as [TILE_WORDS, TILE_Q]) rather than by transposing."""
    base = masks + mask_id.to(tl.int64) * (BLOCK_Q * MASK_WORDS) + c0 // 32
    words = tl.load(base + tl.arange(0, TILE_WORDS)[:, None] + offs_r[None, :] * MASK_WORDS)
    bits = (words[:, None, :] >> ((c0 % 32) + tl.arange(0, TILE_BITS))[None, :, None]) & 1
    return tl.reshape(bits, [TILE_WORDS * TILE_BITS, TILE_Q]) != 0


@triton.jit
def _program_list(ptr, num_heads, num_blocks, SUB: tl.constexpr, PER_HEAD: tl.constexpr):
    """The program's (batch, head) and its layout list: a query-block row (forward, dQ: ``ptr`` is
    ``row_ptr``, ``SUB`` query tiles per block) or a key-block column (dK/dV: ``col_ptr``).

    Returns ``(pid_t, pid_bh, b, h, block, start, end)``: entries ``start..end`` of the list."""
    pid_t = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // num_heads
    h = pid_bh % num_heads
    block = pid_t // SUB
    # A shared layout (one layout head) serves every model head.
    lst = block
    if PER_HEAD:
        lst += h * num_blocks
    return pid_t, pid_bh, b, h, block, tl.load(ptr + lst), tl.load(ptr + lst + 1)


@triton.jit
def _row_scores(q, k, KPM, b, stride_kpm, offs_k, k_ok, masks, mask_id, offs_r, c0, qk_scale,
                BLOCK_Q: tl.constexpr, MASK_WORDS: tl.constexpr, TILE_Q: tl.constexpr,
                TILE_WORDS: tl.constexpr, TILE_BITS: tl.constexpr, HAS_KPM: tl.constexpr,
                DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr):
    """Scores ``q k^T * qk_scale`` [TILE_Q, TILE_K] (log2 units) of one key tile, -inf off the
    graph: at padding keys and, for a partial block (``mask_id >= 0``), outside its bitmask."""
    s = tl.dot(q, tl.trans(k.to(DOT_DTYPE)), input_precision=PRECISION) * qk_scale
    if HAS_KPM:
        pad = tl.load(KPM + b.to(tl.int64) * stride_kpm + offs_k, mask=k_ok, other=1)
        s = tl.where((pad == 0)[None, :], s, float("-inf"))
    if mask_id >= 0:
        # Partial block: its bitmask is the exact edge set (0 past n_q / n_k, so it is also the
        # bounds mask of a tail block). Full blocks skip this work.
        edges = _tile_edges(masks, mask_id, offs_r, c0, BLOCK_Q, MASK_WORDS, TILE_Q, TILE_WORDS, TILE_BITS)
        s = tl.where(edges, s, float("-inf"))
    return s


@triton.jit
def _attn_fwd(
    Q, K, V, O, LSE, KPM,
    row_ptr, col_idx, mask_idx, masks,
    stride_qb, stride_qh, stride_qn,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_ob, stride_oh, stride_on,
    stride_kpm,
    num_heads, n_q, n_k, num_q_blocks, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr, MASK_WORDS: tl.constexpr,
    TILE_Q: tl.constexpr, TILE_K: tl.constexpr, TILE_WORDS: tl.constexpr, TILE_BITS: tl.constexpr,
    PER_HEAD: tl.constexpr, HAS_KPM: tl.constexpr,
    DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    """One program: TILE_Q queries of one (batch, head) against every key its layout row lists."""
    SUB_Q: tl.constexpr = BLOCK_Q // TILE_Q  # query tiles per layout block
    SUB_K: tl.constexpr = BLOCK_K // TILE_K  # key tiles per layout block
    pid_t, pid_bh, b, h, q_block, start, end = _program_list(row_ptr, num_heads, num_q_blocks, SUB_Q, PER_HEAD)

    offs_r = (pid_t % SUB_Q) * TILE_Q + tl.arange(0, TILE_Q)  # rows within the layout block
    offs_q = q_block * BLOCK_Q + offs_r
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < HEAD_DIM  # head_dim padded up to a power of two
    q_ok = offs_q < n_q

    # int64 base offsets: batch * stride overflows int32 for large tensors.
    q_base = Q + b.to(tl.int64) * stride_qb + h.to(tl.int64) * stride_qh
    k_base = K + b.to(tl.int64) * stride_kb + h.to(tl.int64) * stride_kh
    v_base = V + b.to(tl.int64) * stride_vb + h.to(tl.int64) * stride_vh
    q = tl.load(q_base + offs_q[:, None] * stride_qn + offs_d[None, :],
                mask=q_ok[:, None] & d_ok[None, :], other=0.0).to(DOT_DTYPE)

    m_i = tl.full([TILE_Q], float("-inf"), tl.float32)
    l_i = tl.zeros([TILE_Q], tl.float32)
    acc = tl.zeros([TILE_Q, BLOCK_D], tl.float32)
    # Entry e of the row list, key tile c0 of its block: one flat loop over (e, sub-tile).
    for t in range(start * SUB_K, end * SUB_K):
        e = t // SUB_K
        c0 = (t % SUB_K) * TILE_K
        kb = tl.load(col_idx + e)
        mask_id = tl.load(mask_idx + e)
        offs_k = kb * BLOCK_K + c0 + tl.arange(0, TILE_K)
        k_ok = offs_k < n_k
        kv_mask = k_ok[:, None] & d_ok[None, :]
        k = tl.load(k_base + offs_k[:, None] * stride_kn + offs_d[None, :], mask=kv_mask, other=0.0)
        v = tl.load(v_base + offs_k[:, None] * stride_vn + offs_d[None, :], mask=kv_mask, other=0.0)
        s = _row_scores(q, k, KPM, b, stride_kpm, offs_k, k_ok, masks, mask_id, offs_r, c0, qk_scale,
                        BLOCK_Q, MASK_WORDS, TILE_Q, TILE_WORDS, TILE_BITS, HAS_KPM, DOT_DTYPE, PRECISION)
        # Online softmax. A row with no edge so far has m = -inf: shift by 0 instead so that
        # exp2(-inf - (-inf)) never happens; its p is exp2(-inf) = 0 either way.
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.math.exp2(m_i - m_use)
        p = tl.math.exp2(s - m_use[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(DOT_DTYPE), v.to(DOT_DTYPE), input_precision=PRECISION)
        m_i = m_new

    # A query with no edge has l = 0 and acc = 0: output 0, lse = -inf (the log of an empty sum).
    has_edge = l_i > 0.0
    l_safe = tl.where(has_edge, l_i, 1.0)
    o = acc / l_safe[:, None]
    lse = tl.where(has_edge, (m_i + tl.math.log2(l_safe)) * 0.6931471805599453, float("-inf"))
    o_base = O + b.to(tl.int64) * stride_ob + h.to(tl.int64) * stride_oh
    tl.store(o_base + offs_q[:, None] * stride_on + offs_d[None, :], o.to(O.dtype.element_ty),
             mask=q_ok[:, None] & d_ok[None, :])
    tl.store(LSE + pid_bh.to(tl.int64) * n_q + offs_q, lse, mask=q_ok)


@triton.jit
def _attn_bwd_preprocess(
    O, DO, DELTA,
    stride_ob, stride_oh, stride_on,
    stride_dob, stride_doh, stride_don,
    num_heads, n_q,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, TILE_Q: tl.constexpr,
):
    """delta_i = sum_d dO_id * O_id (= sum_j P_ij dP_ij), one value per query."""
    pid_t = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = pid_bh // num_heads
    h = pid_bh % num_heads
    offs_q = pid_t * TILE_Q + tl.arange(0, TILE_Q)
    offs_d = tl.arange(0, BLOCK_D)
    ok = (offs_q < n_q)[:, None] & (offs_d < HEAD_DIM)[None, :]
    o = tl.load(O + b.to(tl.int64) * stride_ob + h.to(tl.int64) * stride_oh
                + offs_q[:, None] * stride_on + offs_d[None, :], mask=ok, other=0.0).to(tl.float32)
    do = tl.load(DO + b.to(tl.int64) * stride_dob + h.to(tl.int64) * stride_doh
                 + offs_q[:, None] * stride_don + offs_d[None, :], mask=ok, other=0.0).to(tl.float32)
    tl.store(DELTA + pid_bh.to(tl.int64) * n_q + offs_q, tl.sum(o * do, 1), mask=offs_q < n_q)


@triton.jit
def _attn_bwd_dq(
    Q, K, V, DO, DQ, LSE, DELTA, KPM,
    row_ptr, col_idx, mask_idx, masks,
    stride_qb, stride_qh, stride_qn,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_dob, stride_doh, stride_don,
    stride_dqb, stride_dqh, stride_dqn,
    stride_kpm,
    num_heads, n_q, n_k, num_q_blocks, qk_scale, sm_scale,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr, MASK_WORDS: tl.constexpr,
    TILE_Q: tl.constexpr, TILE_K: tl.constexpr, TILE_WORDS: tl.constexpr, TILE_BITS: tl.constexpr,
    PER_HEAD: tl.constexpr, HAS_KPM: tl.constexpr,
    DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    """dQ_i = scale * sum_j dS_ij k_j over the row lists, dS = P * (dO V^T - delta)."""
    SUB_Q: tl.constexpr = BLOCK_Q // TILE_Q
    SUB_K: tl.constexpr = BLOCK_K // TILE_K
    pid_t, pid_bh, b, h, q_block, start, end = _program_list(row_ptr, num_heads, num_q_blocks, SUB_Q, PER_HEAD)

    offs_r = (pid_t % SUB_Q) * TILE_Q + tl.arange(0, TILE_Q)
    offs_q = q_block * BLOCK_Q + offs_r
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < HEAD_DIM
    q_ok = offs_q < n_q
    qd_mask = q_ok[:, None] & d_ok[None, :]

    k_base = K + b.to(tl.int64) * stride_kb + h.to(tl.int64) * stride_kh
    v_base = V + b.to(tl.int64) * stride_vb + h.to(tl.int64) * stride_vh
    q = tl.load(Q + b.to(tl.int64) * stride_qb + h.to(tl.int64) * stride_qh
                + offs_q[:, None] * stride_qn + offs_d[None, :], mask=qd_mask, other=0.0).to(DOT_DTYPE)
    do = tl.load(DO + b.to(tl.int64) * stride_dob + h.to(tl.int64) * stride_doh
                 + offs_q[:, None] * stride_don + offs_d[None, :], mask=qd_mask, other=0.0).to(DOT_DTYPE)
    lse = tl.load(LSE + pid_bh.to(tl.int64) * n_q + offs_q, mask=q_ok, other=float("-inf"))
    delta = tl.load(DELTA + pid_bh.to(tl.int64) * n_q + offs_q, mask=q_ok, other=0.0)
    # A query with no edge has lse = -inf; +inf makes its P = exp2(s - inf) = 0 (s is -inf or finite).
    lse2 = tl.where(lse == float("-inf"), float("inf"), lse * 1.4426950408889634)

    dq = tl.zeros([TILE_Q, BLOCK_D], tl.float32)
    for t in range(start * SUB_K, end * SUB_K):
        e = t // SUB_K
        c0 = (t % SUB_K) * TILE_K
        kb = tl.load(col_idx + e)
        mask_id = tl.load(mask_idx + e)
        offs_k = kb * BLOCK_K + c0 + tl.arange(0, TILE_K)
        k_ok = offs_k < n_k
        kv_mask = k_ok[:, None] & d_ok[None, :]
        k = tl.load(k_base + offs_k[:, None] * stride_kn + offs_d[None, :], mask=kv_mask, other=0.0).to(DOT_DTYPE)
        v = tl.load(v_base + offs_k[:, None] * stride_vn + offs_d[None, :], mask=kv_mask, other=0.0).to(DOT_DTYPE)
        s = _row_scores(q, k, KPM, b, stride_kpm, offs_k, k_ok, masks, mask_id, offs_r, c0, qk_scale,
                        BLOCK_Q, MASK_WORDS, TILE_Q, TILE_WORDS, TILE_BITS, HAS_KPM, DOT_DTYPE, PRECISION)
        p = tl.math.exp2(s - lse2[:, None])
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(DOT_DTYPE), k, input_precision=PRECISION)

    dq = dq * sm_scale
    tl.store(DQ + b.to(tl.int64) * stride_dqb + h.to(tl.int64) * stride_dqh
             + offs_q[:, None] * stride_dqn + offs_d[None, :], dq.to(DQ.dtype.element_ty), mask=qd_mask)


@triton.jit
def _attn_bwd_dkdv(
    Q, K, V, DO, DK, DV, LSE, DELTA, KPM,
    col_ptr, row_idx, col_perm, mask_idx, masks,
    stride_qb, stride_qh, stride_qn,
    stride_kb, stride_kh, stride_kn,
    stride_vb, stride_vh, stride_vn,
    stride_dob, stride_doh, stride_don,
    stride_dkb, stride_dkh, stride_dkn,
    stride_dvb, stride_dvh, stride_dvn,
    stride_kpm,
    num_heads, n_q, n_k, num_k_blocks, qk_scale, sm_scale,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    BLOCK_Q: tl.constexpr, BLOCK_K: tl.constexpr, MASK_WORDS: tl.constexpr,
    TILE_Q: tl.constexpr, TILE_K: tl.constexpr, TILE_WORDS: tl.constexpr, TILE_BITS: tl.constexpr,
    PER_HEAD: tl.constexpr, HAS_KPM: tl.constexpr,
    DOT_DTYPE: tl.constexpr, PRECISION: tl.constexpr,
):
    """dV_j = sum_i P_ij dO_i and dK_j = scale * sum_i dS_ij q_i over the column lists, for the
    TILE_K keys of one program."""
    SUB_Q: tl.constexpr = BLOCK_Q // TILE_Q
    SUB_K: tl.constexpr = BLOCK_K // TILE_K
    pid_t, pid_bh, b, h, k_block, start, end = _program_list(col_ptr, num_heads, num_k_blocks, SUB_K, PER_HEAD)

    c0 = (pid_t % SUB_K) * TILE_K  # this program's first column within the layout block
    offs_k = k_block * BLOCK_K + c0 + tl.arange(0, TILE_K)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < HEAD_DIM
    k_ok = offs_k < n_k
    kd_mask = k_ok[:, None] & d_ok[None, :]

    q_base = Q + b.to(tl.int64) * stride_qb + h.to(tl.int64) * stride_qh
    do_base = DO + b.to(tl.int64) * stride_dob + h.to(tl.int64) * stride_doh
    k = tl.load(K + b.to(tl.int64) * stride_kb + h.to(tl.int64) * stride_kh
                + offs_k[:, None] * stride_kn + offs_d[None, :], mask=kd_mask, other=0.0).to(DOT_DTYPE)
    v = tl.load(V + b.to(tl.int64) * stride_vb + h.to(tl.int64) * stride_vh
                + offs_k[:, None] * stride_vn + offs_d[None, :], mask=kd_mask, other=0.0).to(DOT_DTYPE)
    if HAS_KPM:
        # The keys are fixed for this program: read their padding once, outside the loop.
        key_live = tl.load(KPM + b.to(tl.int64) * stride_kpm + offs_k, mask=k_ok, other=1) == 0

    dk = tl.zeros([TILE_K, BLOCK_D], tl.float32)
    dv = tl.zeros([TILE_K, BLOCK_D], tl.float32)
    # Entry e of the column list, query tile r0 of its block: one flat loop over (e, sub-tile).
    # Scores are computed transposed, S^T = K Q^T [TILE_K, TILE_Q], so that P^T and dS^T, the left
    # operands of dV and dK, come out of the dots without a transpose (as in the Triton tutorial).
    for t in range(start * SUB_Q, end * SUB_Q):
        e = t // SUB_Q
        offs_r = (t % SUB_Q) * TILE_Q + tl.arange(0, TILE_Q)
        qb = tl.load(row_idx + e)
        mask_id = tl.load(mask_idx + tl.load(col_perm + e))
        offs_q = qb * BLOCK_Q + offs_r
        q_ok = offs_q < n_q
        qT = tl.load(q_base + offs_q[None, :] * stride_qn + offs_d[:, None],
                     mask=d_ok[:, None] & q_ok[None, :], other=0.0).to(DOT_DTYPE)  # [BLOCK_D, TILE_Q]
        do = tl.load(do_base + offs_q[:, None] * stride_don + offs_d[None, :],
                     mask=q_ok[:, None] & d_ok[None, :], other=0.0).to(DOT_DTYPE)  # [TILE_Q, BLOCK_D]
        lse = tl.load(LSE + pid_bh.to(tl.int64) * n_q + offs_q, mask=q_ok, other=float("-inf"))
        delta = tl.load(DELTA + pid_bh.to(tl.int64) * n_q + offs_q, mask=q_ok, other=0.0)
        lse2 = tl.where(lse == float("-inf"), float("inf"), lse * 1.4426950408889634)

        sT = tl.dot(k, qT, input_precision=PRECISION) * qk_scale  # [TILE_K, TILE_Q]
        if HAS_KPM:
            sT = tl.where(key_live[:, None], sT, float("-inf"))
        if mask_id >= 0:
            edges = _tile_edges_t(masks, mask_id, offs_r, c0, BLOCK_Q, MASK_WORDS, TILE_Q, TILE_WORDS, TILE_BITS)
            sT = tl.where(edges, sT, float("-inf"))
        pT = tl.math.exp2(sT - lse2[None, :])
        dv += tl.dot(pT.to(DOT_DTYPE), do, input_precision=PRECISION)
        dpT = tl.dot(v, tl.trans(do), input_precision=PRECISION)
        dsT = pT * (dpT - delta[None, :])
        dk += tl.dot(dsT.to(DOT_DTYPE), tl.trans(qT), input_precision=PRECISION)

    dk = dk * sm_scale
    tl.store(DK + b.to(tl.int64) * stride_dkb + h.to(tl.int64) * stride_dkh
             + offs_k[:, None] * stride_dkn + offs_d[None, :], dk.to(DK.dtype.element_ty), mask=kd_mask)
    tl.store(DV + b.to(tl.int64) * stride_dvb + h.to(tl.int64) * stride_dvh
             + offs_k[:, None] * stride_dvn + offs_d[None, :], dv.to(DV.dtype.element_ty), mask=kd_mask)


# ---------------------------------------------------------------------------------------------
# Launch code
# ---------------------------------------------------------------------------------------------
def is_interpreted() -> bool:
    """True when the kernels run in Triton's interpreter (``TRITON_INTERPRET=1`` at import)."""
    # triton.jit returns a JITFunction when compiling and an interpreter object otherwise; the
    # environment variable only counts if it was set before triton was imported.
    return not isinstance(_attn_fwd, triton.runtime.JITFunction)


def _check_layout(bl: BlockLayout) -> None:
    """The format invariants the kernels rely on, beyond the shapes ``BlockLayout`` checks itself.

    The kernels trust the index arrays: an index out of range reads out of bounds, and a *full*
    block at the tail would read keys past n_k without a mask. ``compile`` never produces either;
    a hand-made layout could. O(listed blocks) in numpy, once per ``DeviceLayout``.
    """
    for name, bs in (("block_q", bl.block_q), ("block_k", bl.block_k)):
        if bs not in SUPPORTED_BLOCK_SIZES:
            raise ValueError(f"layout.{name} must be one of {SUPPORTED_BLOCK_SIZES}, got {bs}")
    qb, kb, nnzb = bl.num_q_blocks, bl.num_k_blocks, bl.nnzb
    for ptr_name, ptr in (("row_ptr", bl.row_ptr), ("col_ptr", bl.col_ptr)):
        if np.any(np.diff(ptr) < 0):
            raise ValueError(f"layout.{ptr_name} must be non-decreasing (a CSR pointer array)")
    for name, arr, lo, hi in (
        ("col_idx", bl.col_idx, 0, kb), ("row_idx", bl.row_idx, 0, qb),
        ("mask_idx", bl.mask_idx, -1, bl.masks.shape[0]), ("col_perm", bl.col_perm, 0, nnzb),
    ):
        if arr.size and (arr.min() < lo or arr.max() >= hi):
            raise ValueError(
                f"layout.{name} must lie in [{lo}, {hi}), got values in [{arr.min()}, {arr.max()}]"
            )
    full = bl.mask_idx == -1
    if bl.n_k % bl.block_k and np.any(full & (bl.col_idx == kb - 1)):
        raise ValueError(
            f"layout lists tail key block {kb - 1} (n_k={bl.n_k}) as full; a tail block must be partial"
        )
    entry_row = np.repeat(np.arange(bl.heads * qb) % max(qb, 1), np.diff(bl.row_ptr))
    if bl.n_q % bl.block_q and np.any(full & (entry_row == qb - 1)):
        raise ValueError(
            f"layout lists tail query block {qb - 1} (n_q={bl.n_q}) as full; a tail block must be partial"
        )


def _kernel_layout(layout: BlockLayout | DeviceLayout, device: torch.device) -> DeviceLayout:
    """``layout`` on ``device``, its invariants checked once (the result is kept in its cache)."""
    if not isinstance(layout, (BlockLayout, DeviceLayout)):
        raise TypeError(
            f"layout must be a BlockLayout or DeviceLayout (kernels.prepare), got {type(layout).__name__}"
        )
    dl = prepare(layout, device)
    key = ("triton", "masks")
    if key not in dl.cache:
        _check_layout(dl.layout)
        # A layout without partial blocks has a zero-size masks array; the kernels never read it
        # then, but give them a real one-block buffer rather than a zero-size pointer.
        masks = dl.masks
        if masks.shape[0] == 0:
            masks = torch.zeros((1, *masks.shape[1:]), dtype=torch.int32, device=dl.device)
        dl.cache[key] = masks
    return dl


def _check_inputs(
    q: Any, k: Any, v: Any, dl: DeviceLayout, scale: Any, key_padding_mask: Any
) -> tuple[float, torch.Tensor | None]:
    """Validate the call (also when this backend is used directly, not through ``kernels.attention``).

    Returns the scale as a float and the padding mask as a uint8 view (or None).
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{name} must have shape [batch, heads, n, head_dim], got {list(t.shape)}")
        if t.dtype not in _TL_DTYPES:
            raise TypeError(f"{name} must be float32, float16 or bfloat16, got {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    batch, heads, n_q, d = q.shape
    if k.shape[:2] != (batch, heads) or k.shape[3] != d:
        raise ValueError(
            f"k must have shape [{batch}, {heads}, n_k, {d}] to match q {list(q.shape)}, got {list(k.shape)}"
        )
    if v.shape != k.shape:
        raise ValueError(f"v must have the shape of k {list(k.shape)}, got {list(v.shape)}")
    if not _MIN_HEAD_DIM <= d <= _MAX_HEAD_DIM:
        raise ValueError(f"head_dim must lie in [{_MIN_HEAD_DIM}, {_MAX_HEAD_DIM}], got {d}")
    n_k = k.shape[2]
    if (dl.n_q, dl.n_k) != (n_q, n_k):
        raise ValueError(f"layout is for n_q={dl.n_q}, n_k={dl.n_k}, but q has n_q={n_q} and k has n_k={n_k}")
    if dl.heads not in (1, heads):
        raise ValueError(f"layout has heads={dl.heads}: expected 1 (shared) or heads={heads} of q")
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"scale must be a real number or None, got {type(scale).__name__} {scale!r}")
    if not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")
    if key_padding_mask is not None:
        if not isinstance(key_padding_mask, torch.Tensor):
            raise TypeError(f"key_padding_mask must be a torch.Tensor, got {type(key_padding_mask).__name__}")
        if key_padding_mask.dtype != torch.bool:
            raise TypeError(
                f"key_padding_mask must have dtype torch.bool (True = padding), got {key_padding_mask.dtype}"
            )
        if tuple(key_padding_mask.shape) != (batch, n_k):
            raise ValueError(
                f"key_padding_mask must have shape [batch, n_k] = [{batch}, {n_k}], "
                f"got {list(key_padding_mask.shape)}"
            )
        if key_padding_mask.device != q.device:
            raise ValueError(f"key_padding_mask is on {key_padding_mask.device}, q on {q.device}")
        # bool and uint8 are both one byte: a view, not a copy; the kernels compare with 0.
        key_padding_mask = key_padding_mask.contiguous().view(torch.uint8)
    if not is_interpreted() and q.device.type == "cpu":
        raise ValueError(
            "the triton backend needs q on a GPU, got a CPU tensor; on a machine without a GPU set "
            "TRITON_INTERPRET=1 before triton is imported to run it in the interpreter, or use "
            "backend='torch'"
        )
    return float(scale), key_padding_mask


def _rows(t: torch.Tensor) -> tuple[int, int, int]:
    """(batch, head, position) strides of a [B, H, N, D] tensor whose last dimension is dense."""
    return t.stride(0), t.stride(1), t.stride(2)


def _dense_last(t: torch.Tensor) -> torch.Tensor:
    # The kernels address head_dim with unit stride; copy only when that is not so.
    return t if t.stride(-1) == 1 else t.contiguous()


@dataclass(frozen=True)
class _Call:
    """Per-call settings, fixed between the forward and its backward."""

    scale: float
    kpm: torch.Tensor | None  # uint8 view of the bool key padding mask, or None
    allow_tf32: bool
    max_tile: int


def _launch_options(dtype: torch.dtype, call: _Call, dl: DeviceLayout, d: int) -> dict[str, Any]:
    """The kernels' constexpr parameters and launch settings for one call."""
    # The interpreter multiplies the raw uint16 bit patterns when tl.dot gets bfloat16 operands
    # (triton-lang/triton#11584, "not supported yet" there), so in the interpreter bfloat16 tiles
    # are widened to float32 before each dot. Compiled for a GPU, the dots take bfloat16 directly.
    dot_dtype = tl.float32 if (dtype == torch.bfloat16 and is_interpreted()) else _TL_DTYPES[dtype]
    tile_q, tile_k = min(dl.block_q, call.max_tile), min(dl.block_k, call.max_tile)
    block_d = max(16, triton.next_power_of_2(d))
    return dict(
        HEAD_DIM=d, BLOCK_D=block_d,
        BLOCK_Q=dl.block_q, BLOCK_K=dl.block_k, MASK_WORDS=-(-dl.block_k // 32),
        TILE_Q=tile_q, TILE_K=tile_k, TILE_WORDS=max(1, tile_k // 32), TILE_BITS=min(32, tile_k),
        PER_HEAD=dl.heads > 1, HAS_KPM=call.kpm is not None, DOT_DTYPE=dot_dtype,
        # Correctness first: float32 inputs get exact IEEE dots unless the caller opts into TF32.
        PRECISION="tf32" if call.allow_tf32 else "ieee",
        num_warps=_num_warps(tile_q, tile_k, block_d),
    )


def _num_warps(tile_q: int, tile_k: int, block_d: int) -> int:
    # From the compiled resource table in docs/kernels.md (sm_80, ptxas): 64 x 64 tiles spill
    # registers with 4 warps and fit with 8; 32 x 32 tiles fit with 4 unless head_dim is 128.
    # Not tuned for speed: no GPU has run these kernels.
    return 8 if tile_q * tile_k * block_d >= 32 * 32 * 128 else 4


def _forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dl: DeviceLayout,
             call: _Call) -> tuple[torch.Tensor, torch.Tensor]:
    batch, heads, n_q, d = q.shape
    opts = _launch_options(q.dtype, call, dl, d)
    kpm = call.kpm
    o = torch.empty_like(q)
    lse = torch.empty((batch, heads, n_q), dtype=torch.float32, device=q.device)
    # Query tiles wholly past n_q (a 128-row block of a 70-row sequence) are not launched.
    grid = (triton.cdiv(n_q, opts["TILE_Q"]), batch * heads)
    if 0 in grid:  # nothing to compute; CUDA refuses empty grids
        return o, lse
    _attn_fwd[grid](
        q, k, v, o, lse, kpm if kpm is not None else lse,  # never read when HAS_KPM is False
        dl.row_ptr, dl.col_idx, dl.mask_idx, dl.cache[("triton", "masks")],
        *_rows(q), *_rows(k), *_rows(v), *_rows(o),
        kpm.stride(0) if kpm is not None else 0,
        heads, n_q, k.shape[2], dl.layout.num_q_blocks, call.scale * _LOG2E,
        **opts,
    )
    return o, lse


def _backward(
    do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor,
    lse: torch.Tensor, dl: DeviceLayout, call: _Call, need_dq: bool = True, need_dkdv: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    batch, heads, n_q, d = q.shape
    n_k = k.shape[2]
    do = _dense_last(do)
    opts = _launch_options(q.dtype, call, dl, d)
    masks = dl.cache[("triton", "masks")]
    kpm = call.kpm
    kpm_arg = kpm if kpm is not None else lse  # never read when HAS_KPM is False
    kpm_stride = kpm.stride(0) if kpm is not None else 0
    q_tiles, k_tiles = triton.cdiv(n_q, opts["TILE_Q"]), triton.cdiv(n_k, opts["TILE_K"])

    if 0 in (q_tiles, k_tiles, batch * heads):
        # An empty q or k axis (or batch): no edge anywhere, every gradient is zero (or empty);
        # CUDA refuses empty grids.
        zeros = torch.zeros_like
        return (zeros(q) if need_dq else None, zeros(k) if need_dkdv else None, zeros(v) if need_dkdv else None)
    # Every element of dq, dk, dv is written by the kernels: no memset needed.
    dq = torch.empty_like(q) if need_dq else None
    dk, dv = (torch.empty_like(k), torch.empty_like(v)) if need_dkdv else (None, None)
    delta = torch.empty_like(lse)
    _attn_bwd_preprocess[(q_tiles, batch * heads)](
        o, do, delta, *_rows(o), *_rows(do), heads, n_q,
        HEAD_DIM=d, BLOCK_D=opts["BLOCK_D"], TILE_Q=opts["TILE_Q"],
    )
    if need_dq:
        _attn_bwd_dq[(q_tiles, batch * heads)](
            q, k, v, do, dq, lse, delta, kpm_arg,
            dl.row_ptr, dl.col_idx, dl.mask_idx, masks,
            *_rows(q), *_rows(k), *_rows(v), *_rows(do), *_rows(dq), kpm_stride,
            heads, n_q, n_k, dl.layout.num_q_blocks, call.scale * _LOG2E, call.scale,
            **opts,
        )
    if need_dkdv:
        _attn_bwd_dkdv[(k_tiles, batch * heads)](
            q, k, v, do, dk, dv, lse, delta, kpm_arg,
            dl.col_ptr, dl.row_idx, dl.col_perm, dl.mask_idx, masks,
            *_rows(q), *_rows(k), *_rows(v), *_rows(do), *_rows(dk), *_rows(dv), kpm_stride,
            heads, n_q, n_k, dl.layout.num_k_blocks, call.scale * _LOG2E, call.scale,
            **opts,
        )
    return dq, dk, dv


class _BlockSparseAttention(torch.autograd.Function):
    """Autograd wrapper: forward saves (q, k, v, O, lse); backward recomputes P tile by tile."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dl: DeviceLayout,
                call: _Call) -> torch.Tensor:
        o, lse = _forward(q, k, v, dl, call)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.dl, ctx.call = dl, call
        return o

    @staticmethod
    @once_differentiable  # the backward kernels are not themselves differentiable
    def backward(ctx: Any, do: torch.Tensor) -> tuple[Any, ...]:
        q, k, v, o, lse = ctx.saved_tensors
        need_q, need_k, need_v = ctx.needs_input_grad[:3]
        dq, dk, dv = _backward(do, q, k, v, o, lse, ctx.dl, ctx.call,
                               need_dq=need_q, need_dkdv=need_k or need_v)
        return dq, dk, dv, None, None


def _prepare_call(q: Any, k: Any, v: Any, layout: Any, scale: Any, key_padding_mask: Any,
                  allow_tf32: Any, max_tile: Any) -> tuple[DeviceLayout, _Call]:
    """Validate a call; the layout on q's device and the per-call settings."""
    if not isinstance(allow_tf32, bool):
        raise TypeError(f"allow_tf32 must be a bool, got {type(allow_tf32).__name__} {allow_tf32!r}")
    if max_tile is not None and (isinstance(max_tile, bool) or not isinstance(max_tile, int)):
        raise TypeError(
            f"max_tile must be None or an int in {SUPPORTED_BLOCK_SIZES}, got {type(max_tile).__name__} {max_tile!r}"
        )
    if max_tile is not None and max_tile not in SUPPORTED_BLOCK_SIZES:
        raise ValueError(f"max_tile must be None or one of {SUPPORTED_BLOCK_SIZES}, got {max_tile}")
    dl = _kernel_layout(layout, q.device if isinstance(q, torch.Tensor) else None)
    scale, kpm = _check_inputs(q, k, v, dl, scale, key_padding_mask)
    if max_tile is None:
        max_tile = DEFAULT_MAX_TILE[q.dtype]
    return dl, _Call(scale=scale, kpm=kpm, allow_tf32=allow_tf32, max_tile=max_tile)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    layout: BlockLayout | DeviceLayout,
    *,
    scale: float | None = None,
    key_padding_mask: torch.Tensor | None = None,
    allow_tf32: bool = False,
    max_tile: int | None = None,
) -> torch.Tensor:
    """Block-sparse attention over ``layout``'s edges, differentiable in q, k, v.

    ``o_i = sum_{j in E(h, i)} softmax_j(scale * q_i . k_j) v_j`` where ``E(h, i)`` is query
    ``i``'s edge set in head ``h`` of the compiled graph minus the keys marked as padding; ``o_i = 0``
    with zero gradients when ``E(h, i)`` is empty. FlashAttention-2 (Dao 2023) over the listed
    blocks. This is the ``triton`` backend of ``kernels.attention``; it may also be called directly.

    Args:
        q: [batch, heads, n_q, head_dim]; float32, float16 or bfloat16; head_dim in 16..128.
        k, v: [batch, heads, n_k, head_dim], the dtype and device of q.
        layout: a ``DeviceLayout`` (``kernels.prepare(layout, q.device)``, reused across calls) or a
            ``BlockLayout`` (copied to the device on every call), for (n_q, n_k), with 1 head
            (shared by every head of q) or ``heads`` heads.
        scale: score scale; default ``1 / sqrt(head_dim)``.
        key_padding_mask: bool [batch, n_k]; True marks a padding key, which no query attends.
        allow_tf32: let float32 dots use TF32 tensor cores on a GPU (about 1e-3 relative error);
            off by default so that float32 results match the float64 reference closely.
        max_tile: largest kernel tile (16, 32, 64 or 128) on either axis; layout blocks larger
            than it are computed as several tiles (same result). Default ``DEFAULT_MAX_TILE``:
            64 for float16 / bfloat16, 32 for float32.

    Returns:
        The output, shaped and typed like q.
    """
    dl, call = _prepare_call(q, k, v, layout, scale, key_padding_mask, allow_tf32, max_tile)
    return _BlockSparseAttention.apply(_dense_last(q), _dense_last(k), _dense_last(v), dl, call)


@torch.no_grad()
def triton_forward(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    layout: BlockLayout | DeviceLayout,
    *,
    scale: float | None = None,
    key_padding_mask: torch.Tensor | None = None,
    allow_tf32: bool = False,
    max_tile: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The forward kernel alone, without autograd: ``(output, lse)``.

    ``lse[b, h, i] = log sum_{j in E(h, i)} exp(scale * q_i . k_j)`` (natural log, float32),
    ``-inf`` for a query with no edge. Arguments as in :func:`attention`.
    """
    dl, call = _prepare_call(q, k, v, layout, scale, key_padding_mask, allow_tf32, max_tile)
    return _forward(_dense_last(q), _dense_last(k), _dense_last(v), dl, call)
