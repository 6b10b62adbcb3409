"""Longformer attention: a (dilated) sliding window per head plus task global tokens."""

from __future__ import annotations

from sparsegraph.patterns import _csr
from sparsegraph.patterns._validate import check_int, per_head, per_layer
from sparsegraph.patterns.dilated_window import dilated_heads
from sparsegraph.patterns.global_itc import check_indices
from sparsegraph.patterns.registry import NO_GLOBALS, register
from sparsegraph.graph import AttentionGraph


def layer_window(window: int | tuple[int, ...], window_growth: int, layer: int) -> int:
    """The window of ``layer`` (see :func:`longformer`)."""
    growth = check_int("longformer.window_growth", window_growth, 1)
    if isinstance(window, (list, tuple)):
        if growth != 1:
            raise ValueError(
                f"longformer: give either per-layer windows or window_growth, not both "
                f"(window={list(window)}, window_growth={growth})"
            )
        return per_layer("longformer.window", window, layer, 1)
    return check_int("longformer.window", window, 1) * growth**layer


@register("longformer", global_tokens=NO_GLOBALS)
def longformer(
    n: int,
    *,
    window: int | tuple[int, ...],
    dilation: int | tuple[int, ...] = 1,
    global_indices: tuple[int, ...] = (),
    window_growth: int = 1,
    heads: int = 1,
    layer: int = 0,
) -> AttentionGraph:
    """Longformer (Beltagy et al. 2020): dilated sliding window + symmetric global attention.

    Edges of head ``h`` at layer ``l``, with ``w`` the layer's window and ``d`` the head's dilation:

    - window: query ``i`` attends ``i + d*t`` for ``t = -(w // 2) .. w // 2`` inside ``[0, n)``
      (exactly :func:`dilated_window`; ``d = 1`` is :func:`sliding_window`);
    - global: every ``g`` in ``global_indices`` attends all keys and is attended by all queries
      (row and column ``g`` full, exactly :func:`global_itc`), e.g. ``[CLS]`` or question tokens.

    Per-layer windows (Longformer uses small windows in the lower layers and larger ones higher
    up): ``window`` is either an int with ``w = window * window_growth ** layer`` (``growth=2``
    doubles the window every layer; the default 1 keeps it fixed), or a list giving each layer's
    window, ``w = window[layer]`` (a layer past its end raises ``ValueError``).

    Args:
        window: window size ``>= 1`` (layer 0's, when ``window_growth > 1``), or one per layer.
        dilation: an int for all heads, or one per head (length must equal ``heads``); Longformer
            dilates a few heads and keeps the others local, e.g. ``[1, 1, 2, 2]``.
        global_indices: positions in ``[0, n)`` with global attention (may be empty).
        window_growth: integer factor by which the window grows per layer (int ``window`` only).

    Edge kinds: ``"window"``, ``"global"``.
    """
    n = check_int("longformer.n", n, 1)
    w = layer_window(window, window_growth, layer)
    dilations = per_head("longformer.dilation", dilation, heads, 1)
    positions = check_indices("longformer.global_indices", global_indices, n)
    windows = dilated_heads(n, w, dilations, causal=False)
    if not positions.size:
        return AttentionGraph(windows, heads=heads).with_kinds({"window": windows}, subset=True)
    glob = _csr.global_rows_cols(n, positions)
    mats = [m + glob for m in windows]
    return AttentionGraph(mats, heads=heads).with_kinds({"window": windows, "global": glob}, subset=True)
