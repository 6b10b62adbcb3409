"""The graphs each pattern of a comparison trains on, and their measurements.

The graph measured for the run of seed ``s`` is the one its model's first layer attends over:
``pattern.build(n, heads=H, layer=0, seed=s)`` with ``n`` the model's padded length
(:meth:`~sparsegraph.experiments.models.ModelConfig.padded_length`) and the run's seed as the
graph seed — exactly what :class:`~sparsegraph.experiments.models.LayoutCache` builds. A pattern
that uses no seed has one graph for every seed, measured once. Metrics come from
:func:`sparsegraph.analysis.analyze` on the heads merged (an edge is present if any head has it:
what one layer can move information along).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

from sparsegraph import patterns
from sparsegraph.graph import AttentionGraph

__all__ = ["GRAPH_METRICS", "PatternGraphs", "RoutingProblem", "routing_problem", "measure_pattern",
           "build_graph", "graph_metrics"]

#: The metric columns of the comparison table: (key, column title); see :func:`graph_metrics`.
GRAPH_METRICS: tuple[tuple[str, str], ...] = (
    ("density", "density"),
    ("avg_path_length", "path len"),
    ("diameter", "diameter"),
    ("flow_depth", "flow depth"),
    ("spectral_gap", "spectral gap"),
    ("clustering", "clustering"),
    ("routable", "routable"),
)


@dataclass(frozen=True)
class RoutingProblem:
    """What the ``routable`` column needs (tasks whose answer sits at known positions).

    ``needed``: ``[E, k]`` graph positions (ETC globals and CLS counted) each example's answer
    depends on; ``readout``: the graph positions the pooled vector is read from; ``layers``: the
    model's depth. ``routable`` is the fraction of examples whose needed positions can meet at a
    readout position within ``layers`` layers of the trained graphs
    (:func:`sparsegraph.analysis.routing.routable`).
    """

    needed: Any
    readout: tuple[int, ...]
    layers: int


def routing_problem(needed: Any, *, pooling: str, global_tokens: int, layers: int
                    ) -> RoutingProblem | None:
    """The :class:`RoutingProblem` of a model whose inputs have answer positions ``needed``
    (token indices, ``[E, k]``); None under mean pooling, where the pooled vector sums every
    position, the needed tokens meet in the pooling itself and every graph routes them."""
    import numpy as np

    if needed is None or pooling == "mean":
        return None
    cls = int(pooling == "cls")
    positions = np.asarray(needed, dtype=np.int64) + global_tokens + cls
    readout = (global_tokens,) if pooling == "cls" else tuple(range(global_tokens))
    return RoutingProblem(positions, readout, layers)


def build_graph(spec: str, n: int, *, heads: int, seed: int, layer: int = 0) -> AttentionGraph:
    """Layer ``layer``'s graph of ``spec`` on ``n`` regular positions (ETC patterns add their
    globals)."""
    graph = patterns.get(spec).build(n, heads=heads, layer=layer, seed=seed)
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
    = ``flow.depth`` (layers until every query depends on every key; for a causal graph
    ``flow.causal.depth``, until every query depends on its whole prefix), ``spectral_gap`` =
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
        # a causal graph never lets a query see later keys, so its ordinary flow depth is inf;
        # its causal flow depth (layers until every query has seen its whole prefix) is the measure
        "flow_depth": _number((found.get("flow", {}).get("causal") or found.get("flow", {})).get("depth")),
        "spectral_gap": _number(found.get("spectral", {}).get("gap")),
        "clustering": _number(found.get("clustering", {}).get("average")),
        "routable": None,  # set by measure_pattern for tasks with a RoutingProblem
    }


@dataclass
class PatternGraphs:
    """One pattern's trained graphs: per seed the :data:`GRAPH_METRICS` of its layer-0 graph.

    ``metrics`` is the mean over the seeds, ``metrics_std`` the sample standard deviation where
    the seeds' graphs differ (None for a metric that is the same for every seed, or with one seed).
    """

    spec: str
    n: int
    heads: int
    global_tokens: int
    per_seed: dict[int, dict[str, float | None]]
    metrics: dict[str, float | None] = field(default_factory=dict)
    metrics_std: dict[str, float | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, _title in GRAPH_METRICS:
            xs = [m.get(key) for m in self.per_seed.values()]
            if not xs or any(x is None for x in xs):
                self.metrics[key], self.metrics_std[key] = None, None
                continue
            self.metrics[key] = sum(xs) / len(xs)
            differ = len(xs) > 1 and max(xs) != min(xs)
            self.metrics_std[key] = statistics.stdev(xs) if differ else None

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "n": self.n, "heads": self.heads,
                "global_tokens": self.global_tokens, "metrics": self.metrics,
                "metrics_std": self.metrics_std,
                "per_seed": {str(s): m for s, m in self.per_seed.items()}}


def measure_pattern(spec: str, n: int, *, heads: int, seeds: Sequence[int], global_tokens: int,
                    routing: RoutingProblem | None = None) -> PatternGraphs:
    """Measure the layer-0 graph of ``spec`` that each of ``seeds`` trains on (one graph for a
    pattern that uses no seed), and with a ``routing`` problem the fraction of its examples
    every layer's graph together can route."""
    from sparsegraph import patterns as _patterns
    from sparsegraph.analysis import routing as _routing

    uses_seed = _patterns.get(spec).uses_seed
    per_seed: dict[int, dict[str, float | None]] = {}
    shared: dict[str, float | None] | None = None
    for s in seeds:
        if uses_seed or shared is None:
            shared = graph_metrics(build_graph(spec, n, heads=heads, seed=s))
            if routing is not None:
                stack = [build_graph(spec, n, heads=heads, seed=s, layer=i)
                         for i in range(routing.layers)]
                shared["routable"] = _routing.routable_fraction(stack, routing.needed,
                                                                routing.readout)
        per_seed[s] = dict(shared)
    return PatternGraphs(spec=spec, n=n, heads=heads, global_tokens=global_tokens, per_seed=per_seed)
