"""Sparse Transformer factorized attention (Child et al. 2019): strided and fixed patterns."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

from sparsegraph.patterns import _csr
from sparsegraph.patterns._validate import check_bool, check_choice, check_int
from sparsegraph.patterns.registry import NO_GLOBALS, register
from sparsegraph.graph import AttentionGraph


def _strided(n: int, stride: int, causal: bool) -> tuple[sp.csr_matrix, sp.csr_matrix, str]:
    ahead = 0 if causal else 1
    local = _csr.dilated_band(n, -(stride - 1), ahead * (stride - 1), 1)  # |i - j| < stride
    # every stride-th key: j = i + stride*t for any t (clipped to the sequence), t <= 0 if causal
    stride_part = _csr.dilated_band(n, -n, ahead * n, stride)
    return local, stride_part, "stride"


def _fixed(n: int, stride: int, c: int, causal: bool) -> tuple[sp.csr_matrix, sp.csr_matrix, str]:
    i = np.arange(n, dtype=np.int64)
    block_start = (i // stride) * stride
    stops = i + 1 if causal else np.minimum(block_start + stride, n)
    local = _csr.row_ranges(block_start, stops, n)
    j = np.arange(n, dtype=np.int64)
    summary = j[j % stride >= stride - c]  # the last c positions of every block
    counts = np.searchsorted(summary, i, side="right") if causal else np.full(n, summary.size)
    return local, _csr.row_prefixes(summary, counts, n), "summary"


@register("sparse_transformer", global_tokens=NO_GLOBALS)
def sparse_transformer(
    n: int,
    *,
    stride: int,
    mode: Literal["strided", "fixed"] = "strided",
    c: int = 1,
    causal: bool = True,
) -> AttentionGraph:
    """Sparse Transformer factorized attention (Child et al. 2019), both components in every head.

    ``mode="strided"`` (the paper's A(1) ∪ A(2) with stride ``l``): query ``i`` attends key ``j``
    iff ``0 <= i - j < l`` (local: itself and the ``l - 1`` keys before it) or
    ``(i - j) % l == 0`` (every ``l``-th key back). Non-causal: ``|i - j| < l`` or
    ``(i - j) % l == 0`` in both directions.

    ``mode="fixed"``: ``j // l == i // l`` (same block of ``l`` positions; the last block may be
    shorter) or ``j % l >= l - c`` (``j`` is one of the last ``c`` "summary" positions of its
    block). Causal adds ``j <= i`` to both.

    The paper also splits the two components over alternating heads or layers; this pattern is
    their union (its "merged" variant), so every head has the same edges.

    Args:
        stride: ``l >= 1``, the block length / stride.
        mode: ``"strided"`` or ``"fixed"``.
        c: summary positions per block, ``1 <= c <= stride`` (``"fixed"`` only).
        causal: only look back (the paper's autoregressive setting).

    Edge kinds: ``"local"`` and ``"stride"`` (strided) or ``"summary"`` (fixed).
    """
    n = check_int("sparse_transformer.n", n, 1)
    stride = check_int("sparse_transformer.stride", stride, 1)
    mode = check_choice("sparse_transformer.mode", mode, ("strided", "fixed"))
    c = check_int("sparse_transformer.c", c, 1, stride)
    causal = check_bool("sparse_transformer.causal", causal)
    if mode == "strided":
        local, other, name = _strided(n, stride, causal)
    else:
        local, other, name = _fixed(n, stride, c, causal)
    return AttentionGraph(local + other).with_kinds({"local": local, name: other}, subset=True)
