"""Sliding-window (local) attention: each query attends the keys around it."""

from __future__ import annotations

import numpy as np

from sparsegraph.patterns import _csr
from sparsegraph.patterns._validate import check_bool, check_int
from sparsegraph.patterns.registry import NO_GLOBALS, register
from sparsegraph.graph import AttentionGraph


def window_range(n: int, window: int, causal: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, stops)``: query ``i`` attends the keys ``starts[i] <= j < stops[i]``."""
    i = np.arange(n, dtype=np.int64)
    if causal:
        return np.maximum(i - window + 1, 0), i + 1
    half = window // 2
    return np.maximum(i - half, 0), np.minimum(i + half + 1, n)


@register("sliding_window", global_tokens=NO_GLOBALS)
def sliding_window(n: int, *, window: int, causal: bool = False) -> AttentionGraph:
    """Sliding window: query ``i`` attends key ``j`` iff ``|i - j| <= window // 2``.

    As in Longformer (Beltagy et al. 2020) and BigBird's window (Zaheer et al. 2020), where a
    window of ``w`` covers ``i - w/2 .. i + w/2``. Away from the ends a query has
    ``2 * (window // 2) + 1`` keys: ``window`` keys for odd ``window``, ``window + 1`` for even.
    The window is cut at the sequence ends (no wrap-around), so the first and last queries have
    fewer keys. Every query attends itself.

    ``causal=True``: query ``i`` attends ``i - window < j <= i``, i.e. itself and the
    ``window - 1`` keys before it (``window`` keys away from the start).

    Args:
        window: window size, ``>= 1`` (``1`` is self-attention only). Larger than ``n`` is allowed
            and gives full (or full causal) attention.
        causal: only look back.

    Edge kind: ``"window"``.
    """
    n = check_int("sliding_window.n", n, 1)
    window = check_int("sliding_window.window", window, 1)
    causal = check_bool("sliding_window.causal", causal)
    starts, stops = window_range(n, window, causal)
    m = _csr.row_ranges(starts, stops, n)
    return AttentionGraph(m).with_kinds({"window": m}, subset=True)
