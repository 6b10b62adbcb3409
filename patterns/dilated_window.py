"""Dilated sliding window (Longformer): a window with gaps, optionally a different gap per head."""

from __future__ import annotations

import scipy.sparse as sp

from sparsegraph.patterns import _csr
from sparsegraph.patterns._validate import check_bool, check_int, per_head
from sparsegraph.patterns.registry import NO_GLOBALS, register
from sparsegraph.graph import AttentionGraph


def dilated_steps(window: int, causal: bool) -> tuple[int, int]:
    """``(lo, hi)``: a dilated window's keys are ``i + d*t`` for ``lo <= t <= hi`` (see below)."""
    return (-(window - 1), 0) if causal else (-(window // 2), window // 2)


def dilated_heads(n: int, window: int, dilations: tuple[int, ...], causal: bool) -> list[sp.csr_matrix]:
    """One window matrix per head; heads with the same dilation share one matrix object."""
    lo, hi = dilated_steps(window, causal)
    built: dict[int, sp.csr_matrix] = {}
    for d in dilations:
        if d not in built:
            built[d] = _csr.dilated_band(n, lo, hi, d)
    return [built[d] for d in dilations]


@register("dilated_window", global_tokens=NO_GLOBALS)
def dilated_window(
    n: int, *, window: int, dilation: int | tuple[int, ...] = 1, causal: bool = False, heads: int = 1
) -> AttentionGraph:
    """Dilated sliding window (Beltagy et al. 2020, Longformer): keys at a stride of ``dilation``.

    Query ``i`` attends the keys ``i + d*t`` for ``t = -(window // 2) .. window // 2`` that lie in
    ``[0, n)``: ``2 * (window // 2) + 1`` keys away from the ends (``window`` for odd ``window``,
    ``window + 1`` for even), spanning ``d * 2 * (window // 2) + 1`` positions. ``dilation=1`` is
    :func:`sliding_window`. No wrap-around at the ends.

    ``causal=True``: keys ``i - d*t`` for ``t = 0 .. window - 1`` (itself and ``window - 1``
    dilated steps back), as in Longformer's autoregressive model.

    Args:
        window: keys per query, ``>= 1``.
        dilation: gap ``d >= 1`` between attended keys; an int for every head, or a list with one
            entry per head (its length must equal ``heads``), e.g. ``[1, 1, 2, 4]``: Longformer
            gives some heads a dilated window and keeps others local.
        causal: only look back.

    Edge kind: ``"window"``.
    """
    n = check_int("dilated_window.n", n, 1)
    window = check_int("dilated_window.window", window, 1)
    causal = check_bool("dilated_window.causal", causal)
    dilations = per_head("dilated_window.dilation", dilation, heads, 1)
    mats = dilated_heads(n, window, dilations, causal)
    return AttentionGraph(mats, heads=heads).with_kinds({"window": mats}, subset=True)
