"""``analyze``: every metric of one graph in a dict; ``compare_table``: many patterns x many n.

``analyze(graph)`` returns a JSON-ready dict with one entry per metric family plus ``"graph"``
(size, heads, edges). Infinite values (the diameter of a graph that is not strongly connected)
stay ``float("inf")``; ``to_json`` writes them as the string ``"inf"``.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

from sparsegraph.analysis._common import check_count, select_adjacency
from sparsegraph.analysis.causal import CAUSAL_EXACT_WORK, causal_flow, matrix_is_causal
from sparsegraph.analysis.clustering import clustering
from sparsegraph.analysis.degrees import degree_stats
from sparsegraph.analysis.distances import distance_profile
from sparsegraph.analysis.flow import information_flow
from sparsegraph.analysis.paths import path_lengths
from sparsegraph.analysis.smallworld import small_world
from sparsegraph.analysis.spectral import spectral_gap
from sparsegraph.graph import AttentionGraph

#: The metric families, in the order ``analyze`` computes them.
METRICS = ("degrees", "paths", "flow", "spectral", "clustering", "small_world")
#: Families that need a square graph (n_q == n_k).
_SQUARE = {"paths", "flow", "spectral", "clustering", "small_world"}
#: Families that need at least this many nodes.
_MIN_NODES = {"spectral": 2, "small_world": 3}

Progress = Callable[[str], None]


def analyze(
    graph: AttentionGraph,
    *,
    metrics: Iterable[str] | None = None,
    head: int = 0,
    merged: bool = False,
    seed: int = 0,
    samples: int | None = None,
    exact: bool | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every metric (or those named in ``metrics``, see ``METRICS``) of one head or all heads merged.

    ``seed``, ``samples`` and ``exact`` go to the metrics that sample (paths/flow, clustering,
    small world) or start from a random vector (spectral). ``progress`` is called with a short
    line after each metric (its name and seconds taken). Metrics that do not apply to the graph
    (a non-square cross-attention graph, too few nodes) are listed under ``"skipped"`` with the
    reason instead of raising.
    """
    wanted = check_metrics(metrics)
    a = select_adjacency(graph, head, merged)
    prov = graph.provenance
    out: dict[str, Any] = {
        "graph": {
            "spec": prov.spec or prov.name, "n_q": graph.n_q, "n_k": graph.n_k, "heads": graph.heads,
            "num_global": graph.num_global, "head": "merged" if merged else head, "seed": prov.seed,
            "edges": int(a.nnz), "density": a.nnz / (a.shape[0] * a.shape[1]) if a.nnz else 0.0,
        }
    }
    skipped: dict[str, str] = {}
    kw = dict(head=head, merged=merged)
    profile = None
    # A causal graph (no edge to a later key) also gets the causal flow depth (analysis.causal);
    # its BFS from query i only explores [0, i], so it is measured exactly while affordable.
    causal = a.shape[0] == a.shape[1] and matrix_is_causal(a)
    if causal and exact is None and a.shape[0] * a.nnz // 2 <= CAUSAL_EXACT_WORK:
        exact = True
    for name in wanted:
        if name in _SQUARE and graph.n_q != graph.n_k:
            skipped[name] = f"needs a square graph, got n_q={graph.n_q}, n_k={graph.n_k}"
            continue
        if graph.n_q < _MIN_NODES.get(name, 1):
            skipped[name] = f"needs at least {_MIN_NODES[name]} nodes, got {graph.n_q}"
            continue
        t0 = time.perf_counter()
        if name == "degrees":
            out[name] = degree_stats(graph, **kw).as_dict()
        elif name in ("paths", "flow"):
            if profile is None:
                profile = distance_profile(graph, samples=samples, seed=seed, exact=exact, **kw)
            res = path_lengths(profile) if name == "paths" else information_flow(profile)
            out[name] = res.as_dict()
            if name == "flow" and causal:
                n_ = a.shape[0]
                out[name]["causal"] = causal_flow(profile, complete=a.nnz == n_ * (n_ + 1) // 2).as_dict()
        elif name == "spectral":
            out[name] = spectral_gap(graph, seed=seed, **kw).as_dict()
        elif name == "clustering":
            out[name] = clustering(graph, samples=samples, seed=seed, exact=exact, **kw).as_dict()
        elif name == "small_world":
            out[name] = small_world(graph, samples=samples, seed=seed, exact=exact, **kw).as_dict()
        if progress is not None:
            progress(f"{name} {time.perf_counter() - t0:.2f}s")
    if skipped:
        out["skipped"] = skipped
    return out


def compare_table(
    patterns: Sequence[Any] | Mapping[str, Callable[[int], AttentionGraph]],
    ns: Sequence[int],
    *,
    heads: int = 1,
    layer: int = 0,
    seed: int = 0,
    metrics: Iterable[str] | None = None,
    head: int | None = None,
    samples: int | None = None,
    exact: bool | None = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """``analyze`` of every pattern at every ``n``: one row (dict) per (pattern, n).

    Args:
        patterns: pattern objects with ``build(n, heads=, layer=, seed=)`` and ``spec`` (as
            ``patterns.get(spec)`` returns), or a mapping ``{label: factory(n) -> AttentionGraph}``.
            (``sparsegraph`` does not import the pattern library; pass ``patterns.get(spec)``.)
        ns: sequence lengths.
        heads, layer, seed: passed to ``build``; ``seed`` also seeds the metrics.
        head: analyse this head; ``None`` (default) analyses the union of the heads (the layer).
        metrics, samples, exact: as in :func:`analyze`.
        progress: called with a line when each case starts and after each metric.

    Each row is ``{"pattern": label, "n": n, **analyze(...)}``.
    """
    if isinstance(patterns, Mapping):
        entries = [(str(k), f) for k, f in patterns.items()]
    else:
        entries = []
        for p in patterns:
            if isinstance(p, str):
                raise TypeError(
                    f"compare_table needs pattern objects, got the string {p!r}; pass "
                    f"sparsegraph.patterns.get({p!r}) (sparsegraph does not import the pattern library)"
                )
            if not hasattr(p, "build"):
                raise TypeError(f"patterns must have a build() method, got {type(p).__name__}")
            entries.append((str(getattr(p, "spec", p)), _builder(p, heads, layer, seed)))
    ns = [check_count("n", n, 1) for n in ns]
    if not ns:
        raise ValueError("ns must list at least one sequence length")
    rows = []
    total = len(entries) * len(ns)
    k = 0
    for label, factory in entries:
        for n in ns:
            k += 1
            if progress is not None:
                progress(f"[{k}/{total}] {label} n={n}: building")
            g = factory(n)
            if not isinstance(g, AttentionGraph):
                raise TypeError(f"the factory for {label!r} returned {type(g).__name__}, not an AttentionGraph")
            merged = head is None and g.heads > 1
            step = None
            if progress is not None:
                prefix = f"[{k}/{total}] {label} n={n}: "
                step = lambda line, prefix=prefix: progress(prefix + line)  # noqa: E731
            res = analyze(g, metrics=metrics, head=0 if head is None else head, merged=merged,
                          seed=seed, samples=samples, exact=exact, progress=step)
            rows.append({"pattern": label, "n": n, **res})
    return rows


def _builder(p: Any, heads: int, layer: int, seed: int) -> Callable[[int], AttentionGraph]:
    return lambda n: p.build(n, heads=heads, layer=layer, seed=seed)


def check_metrics(metrics: Iterable[str] | None) -> list[str]:
    """The metric families named in ``metrics`` (a list or ``"a,b"``) in ``METRICS`` order; all for ``None``."""
    if metrics is None:
        return list(METRICS)
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    wanted = list(metrics)
    bad = [m for m in wanted if m not in METRICS]
    if bad or not wanted:
        raise ValueError(f"metrics must be a non-empty list from {list(METRICS)}, got {wanted!r}")
    return [m for m in METRICS if m in wanted]


# ---------------------------------------------------------------------------------- tables
def get_path(row: Mapping[str, Any], path: str) -> Any:
    """``row["a"]["b"]`` for ``path = "a.b"`` in a nested summary row; ``None`` where it is missing."""
    cur: Any = row
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _num(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 1:
        return f"{int(x)}"
    return f"{x:.{digits}g}"


def _with_err(value: Any, err: Any, exact: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if exact or not err:
        return _num(value, digits)
    return f"{_num(value, digits)}±{err:.1g}"


def _bounds(row: Mapping[str, Any], fam: str, key: str) -> str:
    exact_v = get_path(row, f"{fam}.{key}")
    if exact_v is not None:
        return _num(exact_v)
    lo, hi = get_path(row, f"{fam}.{key}_low"), get_path(row, f"{fam}.{key}_high")
    if lo is None:
        return "-"
    return f"{_num(lo)}..{_num(hi)}"


def _coverage(row: Mapping[str, Any], layers: int) -> str:
    cov = get_path(row, "flow.coverage")
    if not cov:
        return "-"
    return f"{cov[min(layers, len(cov) - 1)]:.3f}"


def _layers_for(row: Mapping[str, Any], frac: float) -> str:
    cov = get_path(row, "flow.coverage")
    if not cov:
        return "-"
    hits = [L for L, c in enumerate(cov) if c >= frac - 1e-12]
    return str(hits[0]) if hits else ">" + str(len(cov) - 1)


#: (header, function of a row -> cell text, description). The default table columns.
COLUMNS: list[tuple[str, Callable[[Mapping[str, Any]], str], str]] = [
    ("pattern", lambda r: str(r.get("pattern", get_path(r, "graph.spec"))), "pattern spec"),
    ("n", lambda r: str(r.get("n", get_path(r, "graph.n_q"))), "sequence length (nodes incl. ETC tokens: see graph.n_q)"),
    ("keys/q", lambda r: _num(get_path(r, "degrees.out_mean"), 4), "mean keys per query (out-degree)"),
    ("density", lambda r: f"{get_path(r, 'graph.density'):.2%}" if get_path(r, "graph.density") is not None else "-", "edges / n^2"),
    ("L", lambda r: _with_err(get_path(r, "paths.mean"), get_path(r, "paths.mean_stderr"), get_path(r, "paths.exact"), 4),
     "average shortest-path length (directed)"),
    ("diam", lambda r: _bounds(r, "paths", "diameter"), "diameter (lo..hi: bounds)"),
    ("unreach", lambda r: _with_err(get_path(r, "paths.unreachable_pairs"), get_path(r, "paths.unreachable_stderr"),
                                    get_path(r, "paths.exact"), 3), "unreachable ordered pairs"),
    ("cov@1", lambda r: _coverage(r, 1), "coverage after 1 layer"),
    ("cov@2", lambda r: _coverage(r, 2), "coverage after 2 layers"),
    ("L90", lambda r: _layers_for(r, 0.9), "layers to 90% coverage"),
    ("depth", lambda r: _bounds(r, "flow", "depth"), "layers to full coverage"),
    ("c-depth", lambda r: _bounds(r, "flow.causal", "depth"),
     "causal graphs: layers until every query has seen its whole prefix (analysis.causal)"),
    ("gap", lambda r: _num(get_path(r, "spectral.gap"), 3), "spectral gap of D^-1/2 A_sym D^-1/2"),
    ("rw gap", lambda r: _num(get_path(r, "spectral.rw_gap"), 3), "spectral gap of the random walk D^-1 A"),
    ("C", lambda r: _with_err(get_path(r, "clustering.average"), get_path(r, "clustering.average_stderr"),
                              get_path(r, "clustering.exact"), 3), "average clustering"),
    ("T", lambda r: _with_err(get_path(r, "clustering.transitivity"), get_path(r, "clustering.transitivity_stderr"),
                              get_path(r, "clustering.exact"), 3), "transitivity"),
    ("sigma", lambda r: _num(get_path(r, "small_world.sigma"), 3), "small-world sigma"),
    ("omega", lambda r: _num(get_path(r, "small_world.omega"), 3), "small-world omega"),
]


def format_table(rows: Sequence[Mapping[str, Any]], fmt: str = "text", columns: Sequence[str] | None = None) -> str:
    """Rows of ``compare_table`` (or ``analyze`` results) as a text or markdown table.

    ``columns`` picks headers from ``COLUMNS`` (default: every column some row has a value for).
    Estimated values show ``±standard error``; diameters and depths known only by bounds show
    ``lo..hi``; ``-`` marks a metric not computed.
    """
    if fmt not in ("text", "markdown"):
        raise ValueError(f"fmt must be 'text' or 'markdown', got {fmt!r}")
    known = {h: f for h, f, _ in COLUMNS}
    if columns is None:
        cols = [h for h, f, _ in COLUMNS if any(f(r) != "-" for r in rows)] if rows else [h for h, _, _ in COLUMNS[:2]]
    else:
        bad = [c for c in columns if c not in known]
        if bad:
            raise ValueError(f"unknown columns {bad}; choose from {list(known)}")
        cols = list(columns)
    cells = [[known[c](r) for c in cols] for r in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(cols)]
    fmt_row = lambda row: "  ".join(x.ljust(w) if i == 0 else x.rjust(w) for i, (x, w) in enumerate(zip(row, widths)))  # noqa: E731
    return "\n".join([fmt_row(cols), fmt_row(["-" * w for w in widths]), *(fmt_row(r) for r in cells)])


def to_json(rows: Any, **kwargs: Any) -> str:
    """JSON text of ``analyze``/``compare_table`` results; ``inf`` becomes the string ``"inf"``."""
    return json.dumps(_jsonable(rows), **kwargs)


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy scalars
        return _jsonable(x.item())
    return x
