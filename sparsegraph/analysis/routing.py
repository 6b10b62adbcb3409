"""Routing through a stack of layer graphs: can the positions an answer depends on reach the
model's readout within its ``L`` layers?

Model (the residual model of ``flow``, but with one graph per layer). Layer ``l`` has graph
``G_l``; an edge ``i -> j`` (query ``i`` attends key ``j``, any head) moves information from
``j`` to ``i``, and the residual connection keeps what ``i`` already had. The positions holding
information from source ``s`` after ``l`` layers are

    R_0(s) = {s},   R_l(s) = R_{l-1}(s) ∪ {i : i -> j in G_l for some j in R_{l-1}(s)}.

A task whose answer is a relation between the tokens at positions ``P`` (two needles, a query and
the value it recalls) is *routable* in a model whose pooled vector is read from the positions
``R`` (the CLS token; the ETC global tokens; every position under mean pooling) when the
information of all of ``P`` can meet at one readout position:

    routable(P) = ∩_{p in P} R_L(p) ∩ R  ≠  ∅.

Meeting anywhere else first and travelling on to ``R`` is the same condition (whatever reaches the
meeting point by layer ``l`` and then ``R`` by layer ``L`` reaches ``R`` by ``L`` from each of
``P``). It is necessary for the model to compute the answer from its pooled vector and says
nothing about whether training finds the weights: a graph that cannot route an example stays at
chance on it, one that can may still need training to use the route.

The oracle in the tests is a layer-by-layer breadth-first search on networkx graphs.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from sparsegraph.graph import AttentionGraph

__all__ = ["reach", "routable", "routable_fraction"]


def _layer_matrices(graphs: Sequence[AttentionGraph]) -> list[sp.csr_matrix]:
    if not isinstance(graphs, (list, tuple)) or not graphs:
        raise ValueError(f"graphs must be a non-empty list of AttentionGraph (one per layer), got {graphs!r:.80}")
    mats = []
    for i, g in enumerate(graphs):
        if not isinstance(g, AttentionGraph):
            raise TypeError(f"graphs[{i}] must be an AttentionGraph, got {type(g).__name__}")
        if g.n_q != g.n_k or (g.n_q, g.n_k) != (graphs[0].n_q, graphs[0].n_k):
            raise ValueError(f"graphs[{i}] is {g.n_q}x{g.n_k}: every layer graph must be square "
                             f"and of one size ({graphs[0].n_q}x{graphs[0].n_k} for graphs[0])")
        mats.append(g.merge_heads().adjacency(0).astype(bool).tocsr())
    return mats


def reach(graphs: Sequence[AttentionGraph], sources: Iterable[int]) -> np.ndarray:
    """``out[k, i]``: after all layers of ``graphs`` (layer 0 first), position ``i`` holds
    information from ``sources[k]`` (the sets ``R_L`` of the module docstring)."""
    mats = _layer_matrices(graphs)
    n = mats[0].shape[0]
    src = np.asarray(list(sources), dtype=np.int64)
    if src.size and (src.min() < 0 or src.max() >= n):
        raise ValueError(f"sources must be positions in [0, {n}), got {src.min()}..{src.max()}")
    x = np.zeros((n, src.size), dtype=bool)
    x[src, np.arange(src.size)] = True
    for a in mats:
        # i gains s's information when one of its keys j holds it: (A @ x)[i] > 0
        x = x | (a @ x.astype(np.float32) > 0)
    return x.T


def routable(graphs: Sequence[AttentionGraph], needed: Sequence[Sequence[int]],
             readout: Sequence[int] | None = None) -> np.ndarray:
    """One bool per example: can the positions ``needed[e]`` of example ``e`` meet at a readout
    position within the layers of ``graphs``? ``readout`` lists the positions the pooled vector is
    read from (None: every position, as under mean pooling)."""
    n = _layer_matrices(graphs[:1])[0].shape[0] if graphs else 0
    flat = sorted({int(p) for ex in needed for p in ex})
    if any(len(ex) == 0 for ex in needed):
        raise ValueError("every example must need at least one position")
    out_mask = np.ones(n, dtype=bool)
    if readout is not None:
        r = np.asarray(list(readout), dtype=np.int64)
        if r.size == 0 or r.min() < 0 or r.max() >= n:
            raise ValueError(f"readout must be a non-empty list of positions in [0, {n}), got {list(r)[:8]}")
        out_mask = np.zeros(n, dtype=bool)
        out_mask[r] = True
    rows = reach(graphs, flat)
    where = {p: k for k, p in enumerate(flat)}
    result = np.empty(len(needed), dtype=bool)
    for e, ex in enumerate(needed):
        meet = out_mask.copy()
        for p in ex:
            meet &= rows[where[int(p)]]
        result[e] = bool(meet.any())
    return result


def routable_fraction(graphs: Sequence[AttentionGraph], needed: Sequence[Sequence[int]],
                      readout: Sequence[int] | None = None) -> float:
    """The fraction of examples :func:`routable` says yes to (0.0 for no examples)."""
    ok = routable(graphs, needed, readout)
    return float(ok.mean()) if ok.size else 0.0
