"""Internal global tokens (BigBird-ITC, Longformer's task global attention)."""

from __future__ import annotations

import numpy as np

from sparsegraph.patterns import _csr
from sparsegraph.patterns._validate import check_int, check_int_tuple
from sparsegraph.patterns.registry import NO_GLOBALS, register
from sparsegraph.graph import AttentionGraph


def check_indices(where: str, indices: object, n: int) -> np.ndarray:
    """Sorted distinct positions from ``indices``, each checked to lie in ``[0, n)``."""
    values = check_int_tuple(where, indices)
    bad = [v for v in values if not 0 <= v < n]
    if bad:
        raise ValueError(f"{where} must lie in [0, {n}) for n={n}, got {bad}")
    return np.unique(np.asarray(values, dtype=np.int64))


@register("global_itc", global_tokens=NO_GLOBALS)
def global_itc(n: int, *, indices: tuple[int, ...]) -> AttentionGraph:
    """Existing positions made global (ITC): their rows and columns are full.

    For each ``g`` in ``indices``: the edges ``g -> j`` and ``j -> g`` for every ``j < n``
    (including ``g -> g``), and no others.

    BigBird's ITC (internal transformer construction, Zaheer et al. 2020) and Longformer's
    symmetric task-specific global attention (Beltagy et al. 2020, e.g. ``[CLS]`` or the question
    tokens). Only those edges: union it with a local pattern, e.g.
    ``sliding_window:window=64|global_itc:indices=[0]``.

    Args:
        indices: the global positions, each in ``[0, n)`` (repeats are merged; an empty list
            gives a graph without edges).

    Edge kind: ``"global"``.
    """
    n = check_int("global_itc.n", n, 1)
    positions = check_indices("global_itc.indices", indices, n)
    m = _csr.global_rows_cols(n, positions)
    return AttentionGraph(m).with_kinds({"global": m}, subset=True)
