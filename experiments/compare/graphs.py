"""The graph of each pattern at the task's length, and its measurements.

The graph measured is the one the model's first layer attends over: ``pattern.build(n,
heads=H, layer=0, seed=graph_seed)`` with ``n`` the model's padded length (CLS token included,
rounded up to the layout block) — exactly what :class:`experiments.models.LayoutCache` builds.
Metrics come from :func:`sparsegraph.analysis.analyze` on the heads merged (an edge is present if
any head has it: what one layer can move information along).
"""

from __future__ import annotations

import math
from typing import Any

from sparsegraph import patterns
from sparsegraph.graph import AttentionGraph

__all__ = ["GRAPH_METRICS", "padded_length", "build_graph", "graph_metrics"]

#: The metric columns of the comparison table: (key, column title); see :func:`graph_metrics`.
GRAPH_METRICS: tuple[tuple[str, str], ...] = (
    ("density", "density"),
    ("avg_path_length", "path len"),
    ("diameter", "diameter"),
    ("flow_depth", "flow depth"),
    ("spectral_gap", "spectral gap"),
    ("clustering", "clustering"),
)


def padded_length(length: int, *, block: int, cls_token: bool) -> int:
    """The regular length the model's attention runs on: ``length`` tokens (+1 CLS), rounded up
    to a multiple of ``block`` (as :meth:`experiments.models.Encoder.padded_length`)."""
    return -(-(length + int(cls_token)) // block) * block


def build_graph(spec: str, n: int, *, heads: int, seed: int) -> AttentionGraph:
    """Layer 0's graph of ``spec`` on ``n`` regular positions (ETC patterns add their globals)."""
    graph = patterns.get(spec).build(n, heads=heads, layer=0, seed=seed)
    if not isinstance(graph, AttentionGraph):
        raise TypeError(f"pattern {spec!r} built {type(graph).__name__}, expected an AttentionGraph")
    return graph


def _number(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if not math.isnan(v) else None


def graph_metrics(graph: AttentionGraph, *, seed: int = 0) -> dict[str, float | None]:
    """The :data:`GRAPH_METRICS` of ``graph`` with its heads merged (an edge of any head counts).

    From :func:`sparsegraph.analysis.analyze`: ``avg_path_length`` = ``paths.mean`` (over reachable
    pairs), ``diameter`` = ``paths.diameter`` (``inf`` if not strongly connected), ``flow_depth``
    = ``flow.depth`` (layers until every query depends on every key), ``spectral_gap`` =
    ``spectral.gap`` (of the symmetrised normalised adjacency), ``clustering`` =
    ``clustering.average``; ``density`` = edges / (n_q n_k). A value the analysis only bounds or
    estimates (very large graphs are sampled, with a standard error) is reported as its estimate;
    ``None`` where it gives none.
    """
    from sparsegraph import analysis

    found = analysis.analyze(graph, merged=True, seed=seed,
                             metrics=("paths", "flow", "spectral", "clustering"))
    return {
        "density": _number(found["graph"]["density"]),
        "avg_path_length": _number(found.get("paths", {}).get("mean")),
        "diameter": _number(found.get("paths", {}).get("diameter")),
        "flow_depth": _number(found.get("flow", {}).get("depth")),
        "spectral_gap": _number(found.get("spectral", {}).get("gap")),
        "clustering": _number(found.get("clustering", {}).get("average")),
    }
