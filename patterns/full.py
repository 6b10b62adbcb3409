"""Full and causal attention: the dense baselines every sparse pattern is compared with."""

from __future__ import annotations

import numpy as np

from sparsegraph.patterns import _csr
from sparsegraph.patterns._validate import check_int
from sparsegraph.patterns.registry import NO_GLOBALS, register
from sparsegraph.graph import AttentionGraph


@register("full", global_tokens=NO_GLOBALS)
def full(n: int) -> AttentionGraph:
    """Full attention: every query attends every key, edges ``i -> j`` for all ``i, j < n``.

    (Vaswani et al. 2017.) Density 1; diameter 1.
    """
    n = check_int("full.n", n, 1)
    # written row by row as ranges: no dense n x n intermediate
    return AttentionGraph(_csr.row_ranges(np.zeros(n, dtype=np.int64), np.full(n, n), n))


@register("causal", global_tokens=NO_GLOBALS)
def causal(n: int) -> AttentionGraph:
    """Causal (autoregressive) attention: edges ``i -> j`` for ``j <= i``."""
    n = check_int("causal.n", n, 1)
    return AttentionGraph(_csr.row_ranges(np.zeros(n, dtype=np.int64), np.arange(1, n + 1), n))
