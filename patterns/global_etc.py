"""Extra global tokens in front (BigBird-ETC)."""

from __future__ import annotations

import numpy as np

from sparsegraph.patterns import _csr
from sparsegraph.patterns._validate import check_int
from sparsegraph.patterns.registry import register
from sparsegraph.graph import AttentionGraph


@register("global_etc", global_tokens=lambda p: p["g"])
def global_etc(n: int, *, g: int) -> AttentionGraph:
    """``g`` extra global tokens placed in front of the ``n`` regular tokens (BigBird-ETC).

    The graph has ``g + n`` positions and ``num_global = g``: positions ``0 .. g-1`` are the global
    tokens, ``g .. g+n-1`` the regular tokens (the model prepends ``g`` learned embeddings). Edges:
    ``a -> j`` for every global ``a < g`` and every ``j < g + n`` (a global token attends to all),
    and ``i -> a`` for every ``i`` and global ``a`` (all attend to the global tokens). Nothing
    among the regular tokens: combine it with a local pattern through ``|``
    (``global_etc:g=2|sliding_window:window=64``), which places the other parts over the regular
    tokens with ``pad_front``. (Zaheer et al. 2020, ETC: Ainslie et al. 2020.)

    Args:
        g: number of global tokens, ``>= 1``.

    Edge kind: ``"global"``.
    """
    n = check_int("global_etc.n", n, 1)
    g = check_int("global_etc.g", g, 1)
    m = _csr.global_rows_cols(g + n, np.arange(g, dtype=np.int64))
    return AttentionGraph(m, num_global=g).with_kinds({"global": m}, subset=True)
