"""Causal graphs: the check that a pattern never looks ahead, and information flow when it cannot.

A graph is *causal* when it has no edge ``i -> j`` with ``j > i`` in any head: query ``i`` reads
only keys at or before it, so a decoder can compute position ``i`` before it has seen ``i + 1``.

Flow depth in a causal graph. Information moves from key ``j`` to query ``i`` only when
``j <= i``, so the ordinary information-flow depth (``flow``: layers until *every* query has seen
*every* key) is ``inf`` for every causal graph. What a language model needs instead is that every
query sees its whole *prefix*. With ``d(i, j)`` the distance along attention edges of ``A ∪ I``
(``distances``; the residual connection makes walks of any length ``<= L`` count):

- causal coverage after ``L`` layers: ``C_c(L) = #{(i, j) : j <= i, d(i, j) <= L} / (n (n + 1) / 2)``,
  the share of (query, earlier-or-same key) pairs connected; ``C_c(0) = n / (n (n + 1) / 2)``;
- causal flow depth: the smallest ``L`` with ``C_c(L) = 1``, i.e. ``max_{j <= i} d(i, j)``: the
  layers after which every position depends on every earlier position; ``inf`` when some earlier
  key never reaches a later query.

For a causal window of ``w`` keys (``i - w < j <= i``) every hop moves at most ``w - 1`` positions
back, so ``d(i, j) = ceil((i - j) / (w - 1))`` and the depth is ``ceil((n - 1) / (w - 1))``.
``s`` attention sinks are read directly by every query but relay nothing (a sink reads no later
key), so the farthest key is the first after them: depth ``max(1, ceil((n - 1 - s) / (w - 1)))``.
Full causal attention has depth 1. The tests check these closed forms and a networkx oracle.

Exactness: ``causal_flow`` is exact when its distance profile is; a sampled profile gives the depth
as bounds ``low..inf`` (the largest eccentricity seen) unless a sampled query misses part of its
prefix (then ``inf`` exactly). ``analyze`` measures causal graphs exactly while
``n * edges / 2 <= CAUSAL_EXACT_WORK`` (a BFS from query ``i`` only explores ``[0, i]``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from sparsegraph.analysis._common import require_square, select_adjacency
from sparsegraph.analysis.distances import DistanceProfile, distance_profile
from sparsegraph.analysis.flow import InformationFlow
from sparsegraph.graph import AttentionGraph

__all__ = [
    "CAUSAL_EXACT_WORK",
    "CausalFlow",
    "causal_flow",
    "causal_flow_depth",
    "first_future_edge",
    "is_causal",
    "matrix_is_causal",
]

#: ``analyze`` computes the distance profile of a causal graph exactly (every query) while
#: ``n * edges / 2`` (the BFS edge visits) is at most this.
CAUSAL_EXACT_WORK = 1_500_000_000


def _future(a: sp.csr_matrix) -> tuple[int, int] | None:
    """The first edge ``(i, j)`` with ``j > i`` of a CSR matrix (smallest ``i``, then ``j``)."""
    a = sp.csr_matrix(a)
    rows = np.repeat(np.arange(a.shape[0], dtype=np.int64), np.diff(a.indptr))
    bad = np.flatnonzero(a.indices > rows)
    if bad.size == 0:
        return None
    e = int(bad[0])  # CSR order: by row, then by column (sorted indices)
    return int(rows[e]), int(a.indices[e])


def matrix_is_causal(a: sp.spmatrix) -> bool:
    """True when the matrix has no entry above the diagonal."""
    return _future(a) is None


def first_future_edge(graph: AttentionGraph) -> tuple[int, int, int] | None:
    """``(head, i, j)`` of the first edge that looks ahead (``j > i``), or ``None`` for a causal
    graph. Heads are searched in order; a shared graph reports head 0. Positions count every node
    of the graph (ETC global tokens included)."""
    if not isinstance(graph, AttentionGraph):
        raise TypeError(f"graph must be an AttentionGraph, got {type(graph).__name__}")
    for h in range(1 if graph.shared else graph.heads):
        hit = _future(graph.adjacency(h))
        if hit is not None:
            return (h, *hit)
    return None


def is_causal(graph: AttentionGraph) -> bool:
    """True when no head has an edge ``i -> j`` with ``j > i``."""
    return first_future_edge(graph) is None


@dataclass(frozen=True)
class CausalFlow(InformationFlow):
    """Causal coverage and causal flow depth of one graph (definitions in the module docstring);
    the fields, ``layers_for`` and ``as_dict`` of :class:`~sparsegraph.analysis.flow.InformationFlow`, over the
    (query, earlier key) pairs, plus ``unreached`` and ``pairs``.

    Attributes:
        coverage: ``coverage[L]`` = ``C_c(L)`` for ``L = 0 .. max finite distance seen``.
        coverage_stderr: standard errors (zeros when exact; a ratio estimator when sampled).
        depth: ``max_{j <= i} d(i, j)`` when known exactly (``inf`` if some prefix is never
            reached), else ``None`` with ``depth_low <= depth <= depth_high``.
        depth_low, depth_high: bounds on the depth.
        unreached: (query, earlier key) pairs with no path (estimated when sampled).
        pairs: ``n (n + 1) / 2``.
        exact, sources: whether every query was measured; how many were.
    """

    unreached: float = 0.0
    pairs: int = 0


def causal_flow(graph: AttentionGraph | DistanceProfile, *, complete: bool | None = None,
                **kwargs: Any) -> CausalFlow:
    """Causal coverage after ``L = 0, 1, ...`` layers and the causal flow depth.

    ``graph`` must be causal (``ValueError`` naming the first look-ahead edge otherwise), or a
    :class:`DistanceProfile` of a causal graph (the caller vouches for causality then).
    ``kwargs`` go to :func:`distance_profile` (``head``, ``merged``, ``samples``, ``seed``,
    ``exact``). ``complete``: whether every pair ``j <= i`` is an edge (depth 1 without any
    search); computed from the graph when one is given.
    """
    if isinstance(graph, DistanceProfile):
        if kwargs:
            raise TypeError(f"got a DistanceProfile and keyword arguments {sorted(kwargs)}")
        p = graph
    else:
        a = select_adjacency(graph, kwargs.get("head", 0), kwargs.get("merged", False))
        require_square(a, "causal flow")
        hit = _future(a)
        if hit is not None:
            raise ValueError(
                f"causal flow needs a causal graph; edge {hit[0]} -> {hit[1]} looks ahead (key after query)"
            )
        n = a.shape[0]
        if complete is None:
            complete = a.nnz == n * (n + 1) // 2
        p = distance_profile(graph, **kwargs)
    n = p.n
    pairs = n * (n + 1) // 2
    if p.exact:
        reach = np.cumsum(p.counts)
        coverage = reach / pairs
        err = np.zeros_like(coverage)
        unreached = float(pairs - reach[-1])
        depth = float(len(p.counts) - 1) if unreached == 0 else math.inf
        low = high = depth
    else:
        tokens = np.asarray(p.source_tokens, dtype=np.int64)
        prefix = tokens + 1  # causal pairs of each sampled query
        per = np.cumsum(p.per_source, axis=1)  # per[s, L]: keys within L layers of source s
        tot = float(prefix.sum())
        coverage = per.sum(axis=0) / tot
        s = tokens.size
        if s > 1:
            ratio = coverage[None, :]
            resid = per - ratio * prefix[:, None]
            fpc = math.sqrt(max(0.0, 1.0 - s / n))
            err = resid.std(axis=0, ddof=1) / math.sqrt(s) / prefix.mean() * fpc
        else:
            err = np.zeros_like(coverage)
        missing = prefix - per[:, -1]
        unreached = float(missing.sum() / s * n)  # mean missing per query, times n queries
        if missing.any():
            depth, low, high = math.inf, math.inf, math.inf
        else:
            depth, low, high = None, float(per.shape[1] - 1), math.inf
    if complete:
        depth, low, high = 1.0, 1.0, 1.0
        coverage = np.array([n / pairs, 1.0])
        err = np.zeros_like(coverage)
        unreached = 0.0
    return CausalFlow(
        coverage=tuple(float(x) for x in coverage), coverage_stderr=tuple(float(x) for x in err),
        depth=depth, depth_low=float(low), depth_high=float(high), unreached=unreached, pairs=pairs,
        exact=bool(p.exact or complete), sources=p.sources,
    )


def causal_flow_depth(graph: AttentionGraph, **kwargs: Any) -> float:
    """Layers until every query depends on every key at or before it (exact; ``inf`` if never)."""
    kwargs.setdefault("exact", True)
    f = causal_flow(graph, **kwargs)
    if f.depth is None:
        raise ValueError("causal_flow_depth(exact=False) cannot give an exact depth; use causal_flow() bounds")
    return f.depth
