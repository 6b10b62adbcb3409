"""Causal patterns for language models: attention sinks, per-layer window schedules, local/global
layer alternation.

Every pattern here is *causal*: it has no edge ``i -> j`` with ``j > i`` (query ``i`` never reads a
later key), so a decoder can run it left to right. Windows count keys the way Hugging Face's
``sliding_window`` does: a causal window of ``w`` keys is ``i - w < j <= i`` (the query itself and
the ``w - 1`` keys before it), as in ``sliding_window:causal=true``.

- ``sink_window`` -- a causal window plus the first ``sinks`` positions (StreamingLLM);
- ``window_schedule`` -- Longformer's autoregressive schedule: the window grows (or shrinks) with
  depth, dilation on chosen heads of the upper layers;
- ``local_global`` -- sliding-window layers alternating with full causal layers, written in Hugging
  Face's ``layer_types`` vocabulary (``"sliding_attention"`` / ``"full_attention"``; Gemma's
  "5 local : 1 global").

The Sparse Transformer's strided and fixed patterns are causal by default
(``sparse_transformer:stride=l``, ``causal=true``); ``causal`` is full causal attention.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from sparsegraph.patterns import _csr
from sparsegraph.patterns._validate import check_int, per_head
from sparsegraph.patterns.dilated_window import dilated_heads
from sparsegraph.patterns.registry import NO_GLOBALS, format_spec, register
from sparsegraph.graph import AttentionGraph

__all__ = [
    "sink_window",
    "window_schedule",
    "local_global",
    "schedule_windows",
    "LAYER_TYPES",
    "gemma_layer_types",
    "specs_from_layer_types",
]

#: Hugging Face's ``config.layer_types`` values for the two kinds of causal layer.
LAYER_TYPES = ("sliding_attention", "full_attention")


def _causal_window(n: int, window: int) -> sp.csr_matrix:
    i = np.arange(n, dtype=np.int64)
    return _csr.row_ranges(np.maximum(i - window + 1, 0), i + 1, n)


def _sinks(n: int, sinks: int) -> sp.csr_matrix:
    """Row ``i`` has the columns ``0 .. min(i, sinks - 1)`` (the sinks at or before ``i``)."""
    i = np.arange(n, dtype=np.int64)
    return _csr.row_prefixes(np.arange(min(sinks, n), dtype=np.int64), np.minimum(i + 1, sinks), n)


def _full_causal(n: int) -> sp.csr_matrix:
    return _csr.row_ranges(np.zeros(n, dtype=np.int64), np.arange(1, n + 1, dtype=np.int64), n)


@register("sink_window", global_tokens=NO_GLOBALS)
def sink_window(n: int, *, window: int, sinks: int = 4) -> AttentionGraph:
    """Attention sinks plus a causal window (Xiao et al. 2023, StreamingLLM).

    Query ``i`` attends key ``j`` iff ``i - window < j <= i`` (itself and the ``window - 1`` keys
    before it) or ``j < sinks`` and ``j <= i`` (the first ``sinks`` positions, which every later
    query keeps reading). Xiao et al. found that a window alone collapses once the first tokens
    leave it, because softmax dumps attention on them; keeping 4 "sink" tokens restores it. A
    decoder needs to keep only ``sinks + window - 1`` keys of the past (``sparsegraph generate``).

    Args:
        window: keys in the causal window, ``>= 1``.
        sinks: leading positions every query attends, ``>= 0`` (0 gives a plain causal window).

    Edge kinds: ``"window"``, ``"global"`` (the sinks).
    """
    n = check_int("sink_window.n", n, 1)
    window = check_int("sink_window.window", window, 1)
    sinks = check_int("sink_window.sinks", sinks, 0)
    win = _causal_window(n, window)
    if sinks == 0:
        return AttentionGraph(win).with_kinds({"window": win}, subset=True)
    glob = _sinks(n, sinks)
    return AttentionGraph(win + glob).with_kinds({"window": win, "global": glob}, subset=True)


def schedule_windows(window: int, last: int, layers: int) -> list[int]:
    """The per-layer windows of :func:`window_schedule`: linear from ``window`` (layer 0) to
    ``last`` (layer ``layers - 1``), rounded to the nearest int; ``last = 0`` keeps ``window``."""
    window = check_int("window_schedule.window", window, 1)
    last = check_int("window_schedule.last", last, 0)
    layers = check_int("window_schedule.layers", layers, 1)
    if last == 0 or layers == 1:
        return [window] * layers
    return [int(np.floor(window + (last - window) * l / (layers - 1) + 0.5)) for l in range(layers)]


@register("window_schedule", global_tokens=NO_GLOBALS)
def window_schedule(
    n: int,
    *,
    window: int,
    last: int = 0,
    layers: int = 1,
    dilation: int | tuple[int, ...] = 1,
    dilate_from: int = 0,
    sinks: int = 0,
    heads: int = 1,
    layer: int = 0,
) -> AttentionGraph:
    """Causal dilated window whose size changes with depth (Beltagy et al. 2020, Longformer, §4.1).

    Layer ``l`` of ``layers`` has the window ``w_l = round(window + (last - window) * l /
    (layers - 1))`` (``last = 0``: every layer ``window``), so ``last > window`` grows the window
    with depth (Longformer's character LM: 32 at the bottom to 512 at the top), ``last < window``
    shrinks it, ``last = window`` keeps it fixed. Head ``h`` of layer ``l`` has the dilation
    ``d_h`` (``dilation``: one int for every head, or one per head) when ``l >= dilate_from`` and
    1 below it: query ``i`` attends ``i - d_h * t`` for ``t = 0 .. w_l - 1`` (``j >= 0``), plus
    the first ``sinks`` positions (``j < sinks``, ``j <= i``). Longformer keeps the lower layers
    undilated and dilates 2 heads of the upper layers (e.g. ``dilation=[1,1,2,2],
    dilate_from=6`` for 4 heads of 12 layers). Its dilation also grows with depth; here it is
    fixed per head.

    Args:
        window: window of layer 0 (keys per query), ``>= 1``.
        last: window of the top layer (``0``: ``window``).
        layers: number of layers the schedule spans (the model's depth); building for
            ``layer >= layers`` raises.
        dilation: per-head dilation of the dilated layers (an int: every head).
        dilate_from: first layer with dilation.
        sinks: leading positions every query also attends (as in :func:`sink_window`).

    Edge kinds: ``"window"``, ``"global"`` (the sinks).
    """
    n = check_int("window_schedule.n", n, 1)
    windows = schedule_windows(window, last, layers)
    if layer >= len(windows):
        raise ValueError(
            f"window_schedule spans layers={len(windows)} but layer={layer} was asked for: set layers "
            "to the model's depth"
        )
    dilate_from = check_int("window_schedule.dilate_from", dilate_from, 0)
    sinks = check_int("window_schedule.sinks", sinks, 0)
    dils = per_head("window_schedule.dilation", dilation, heads, 1)
    if layer < dilate_from:
        dils = (1,) * heads
    wins = dilated_heads(n, windows[layer], dils, causal=True)
    if not sinks:
        return AttentionGraph(wins, heads=heads).with_kinds({"window": wins}, subset=True)
    glob = _sinks(n, sinks)
    return AttentionGraph([m + glob for m in wins], heads=heads).with_kinds(
        {"window": wins, "global": glob}, subset=True)


def gemma_layer_types(n_layers: int, every: int = 6) -> list[str]:
    """Hugging Face ``layer_types`` for ``n_layers`` with one ``full_attention`` layer in every
    ``every`` (Gemma 2/3's ``sliding_window_pattern``: layers ``every-1, 2*every-1, ...`` are full)."""
    n_layers = check_int("n_layers", n_layers, 1)
    every = check_int("every", every, 1)
    return [LAYER_TYPES[1] if (l + 1) % every == 0 else LAYER_TYPES[0] for l in range(n_layers)]


def specs_from_layer_types(layer_types: Sequence[str], window: int, sinks: int = 0) -> list[str]:
    """One spec per layer for ``AttentionConfig.pattern`` from Hugging Face's ``layer_types``:
    ``sliding_attention`` -> ``sliding_window:window=W,causal=true`` (or ``sink_window`` with
    ``sinks > 0``), ``full_attention`` -> ``causal``."""
    window = check_int("window", window, 1)
    sinks = check_int("sinks", sinks, 0)
    out = []
    for i, t in enumerate(layer_types):
        if t not in LAYER_TYPES:
            raise ValueError(f"layer_types[{i}] must be one of {list(LAYER_TYPES)}, got {t!r}")
        if t == LAYER_TYPES[1]:
            out.append("causal")
        elif sinks:
            out.append(format_spec("sink_window", {"window": window, "sinks": sinks}))
        else:
            out.append(format_spec("sliding_window", {"window": window, "causal": True}))
    if not out:
        raise ValueError("layer_types must list at least one layer")
    return out


@register("local_global", global_tokens=NO_GLOBALS)
def local_global(
    n: int,
    *,
    window: int,
    every: int = 6,
    layer_types: tuple[str, ...] = (),
    sinks: int = 0,
    layer: int = 0,
) -> AttentionGraph:
    """Sliding-window layers alternating with full causal layers (Gemma 2/3, Team Gemma 2024-25).

    Layer ``l`` is ``layer_types[l]`` in Hugging Face's vocabulary when ``layer_types`` is given,
    else ``full_attention`` when ``(l + 1) % every == 0`` and ``sliding_attention`` otherwise
    (``every = 6``: Gemma 3's "5 local : 1 global"; ``every = 2``: Gemma 2's alternation).
    ``sliding_attention``: query ``i`` attends ``i - window < j <= i`` (plus ``j < sinks``);
    ``full_attention``: every ``j <= i``. A decoder's cache is bounded only if every layer is
    local; the full layers keep every key.

    Args:
        window: keys in the local layers' causal window, ``>= 1``.
        every: one full layer in every ``every`` layers (ignored when ``layer_types`` is given).
        layer_types: explicit per-layer types (``sliding_attention`` / ``full_attention``); a
            layer past the list's end raises.
        sinks: leading positions the local layers also attend.

    Edge kinds: ``"window"``, ``"global"`` (the sinks) in the local layers; none in full layers.
    """
    n = check_int("local_global.n", n, 1)
    window = check_int("local_global.window", window, 1)
    every = check_int("local_global.every", every, 1)
    sinks = check_int("local_global.sinks", sinks, 0)
    if layer_types:
        bad = [t for t in layer_types if t not in LAYER_TYPES]
        if bad:
            raise ValueError(f"local_global.layer_types entries must be in {list(LAYER_TYPES)}, got {bad}")
        if layer >= len(layer_types):
            raise ValueError(
                f"local_global.layer_types lists {len(layer_types)} layers but layer={layer} was asked "
                "for: give one type per layer"
            )
        kind = layer_types[layer]
    else:
        kind = LAYER_TYPES[1] if (layer + 1) % every == 0 else LAYER_TYPES[0]
    if kind == LAYER_TYPES[1]:
        return AttentionGraph(_full_causal(n))
    return sink_window(n, window=window, sinks=sinks)
