"""Curves: metrics against sequence length, coverage against depth, degree histograms.

``plot_metrics`` takes the rows of ``sparsegraph.analysis.compare_table`` (one per pattern and
``n``) and draws one panel per metric with one line per pattern; ``n`` is on a log2 axis, and
metrics that span orders of magnitude across patterns (path length, diameter, spectral gap) on a
log axis too. Sampled estimates carry +-1 standard-error bars; a diameter known only by bounds is
drawn as a bar from the lower to the upper bound; an infinite value (a diameter when some key
never reaches some query) is a hollow triangle at the top edge of its panel.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sparsegraph.analysis.degrees import degree_sequences
from sparsegraph.analysis.flow import InformationFlow, information_flow
from sparsegraph.analysis.summary import get_path
from sparsegraph.graph import AttentionGraph
from sparsegraph.plot._style import new_figure


def _value(path: str, err: str | None = None) -> Callable[[Mapping[str, Any]], tuple[float, float, float] | None]:
    """Getter of ``(value, lower error, upper error)`` for a metric with an optional stderr."""

    def get(row: Mapping[str, Any]) -> tuple[float, float, float] | None:
        v = get_path(row, path)
        if v is None or isinstance(v, str) or math.isnan(v):
            return None
        if math.isinf(v):
            return math.inf, 0.0, 0.0
        e = (get_path(row, err) or 0.0) if err else 0.0
        return float(v), float(e), float(e)

    return get


def _bounded(fam: str, key: str) -> Callable[[Mapping[str, Any]], tuple[float, float, float] | None]:
    """Getter for an exact value or, failing that, the middle of its bounds with the bounds as bar."""

    def get(row: Mapping[str, Any]) -> tuple[float, float, float] | None:
        v = get_path(row, f"{fam}.{key}")
        if v is not None:
            return float(v), 0.0, 0.0
        lo, hi = get_path(row, f"{fam}.{key}_low"), get_path(row, f"{fam}.{key}_high")
        if lo is None:
            return None
        if math.isinf(lo):
            return math.inf, 0.0, 0.0
        return float(lo), 0.0, float(hi - lo)

    return get


def _layers_for(frac: float) -> Callable[[Mapping[str, Any]], tuple[float, float, float] | None]:
    def get(row: Mapping[str, Any]) -> tuple[float, float, float] | None:
        cov = get_path(row, "flow.coverage")
        if not cov:
            return None
        hits = [L for L, c in enumerate(cov) if c >= frac - 1e-12]
        return (float(hits[0]), 0.0, 0.0) if hits else None

    return get


#: name -> (axis label, getter, log y axis). The panels ``plot_metrics`` can draw.
CURVES: dict[str, tuple[str, Callable[[Mapping[str, Any]], tuple[float, float, float] | None], bool]] = {
    "path_length": ("average path length L", _value("paths.mean", "paths.mean_stderr"), True),
    "diameter": ("diameter (= layers to full coverage)", _bounded("paths", "diameter"), True),
    "layers_90": ("layers to 90% coverage", _layers_for(0.9), True),
    "spectral_gap": ("spectral gap of N", _value("spectral.gap"), True),
    "rw_gap": ("spectral gap of the random walk", _value("spectral.rw_gap"), True),
    "clustering": ("average clustering C", _value("clustering.average", "clustering.average_stderr"), False),
    "transitivity": ("transitivity", _value("clustering.transitivity", "clustering.transitivity_stderr"), False),
    "sigma": ("small-world sigma", _value("small_world.sigma"), True),
    "omega": ("small-world omega", _value("small_world.omega"), False),
    "keys_per_query": ("keys per query", _value("degrees.out_mean"), True),
}
_MARKERS = ("o", "s", "D", "v", "P", "X", "^", "<", ">", "h")
DEFAULT_CURVES = ("path_length", "diameter", "spectral_gap", "clustering", "sigma", "keys_per_query")


def plot_metrics(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] = DEFAULT_CURVES,
    *,
    cols: int = 3,
    title: str | None = None,
) -> Figure:
    """One panel per metric (see ``CURVES``), each metric against ``n``, one line per pattern."""
    bad = [m for m in metrics if m not in CURVES]
    if bad or not metrics:
        raise ValueError(f"metrics must be a non-empty list from {list(CURVES)}, got {list(metrics)!r}")
    if not rows:
        raise ValueError("rows is empty: nothing to plot (pass compare_table(...) rows)")
    labels = list(dict.fromkeys(str(r.get("pattern", get_path(r, "graph.spec"))) for r in rows))
    cols = max(1, min(cols, len(metrics)))
    nrows = math.ceil(len(metrics) / cols)
    fig = new_figure(4.2 * cols, 3.2 * nrows + 0.8)
    axes = fig.subplots(nrows, cols, squeeze=False)
    colors = _palette(len(labels))
    for i, name in enumerate(metrics):
        ax = axes[i // cols][i % cols]
        ylabel, getter, logy = CURVES[name]
        drawn = False
        infinite: list[tuple[float, Any, str]] = []
        for k, (label, color) in enumerate(zip(labels, colors)):
            pts = []
            for r in rows:
                if str(r.get("pattern", get_path(r, "graph.spec"))) != label:
                    continue
                n = r.get("n", get_path(r, "graph.n_q"))
                v = getter(r)
                if v is None or n is None:
                    continue
                if math.isinf(v[0]):
                    infinite.append((n, color, _MARKERS[k % len(_MARKERS)]))
                elif not logy or v[0] > 0:
                    pts.append((n, *v))
            if not pts:
                continue
            pts.sort()
            x, y, lo, hi = (np.array(c, dtype=np.float64) for c in zip(*pts))
            ax.errorbar(x, y, yerr=np.vstack([lo, hi]) if (lo.any() or hi.any()) else None,
                        marker=_MARKERS[k % len(_MARKERS)], ms=5, lw=1.4, capsize=2, color=color,
                        label=label, alpha=0.9)
            drawn = True
        ax.set_xscale("log", base=2)
        if logy and drawn:
            ax.set_yscale("log")
        if infinite:
            # infinite values: hollow triangles on the top edge (x in data units, y in axes units)
            trans = ax.get_xaxis_transform()
            for n, color, marker in infinite:
                ax.plot([n], [0.97], marker="^", ms=7, mfc="none", mec=color, transform=trans, clip_on=False)
            ax.text(0.99, 0.01, "△ = infinite", transform=ax.transAxes, fontsize=7, ha="right", va="bottom",
                    color="#555555")
        ax.set_xlabel("sequence length n")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
        if not drawn and not infinite:
            ax.text(0.5, 0.5, "not computed / undefined", ha="center", va="center", transform=ax.transAxes,
                    fontsize=8, color="#777777")
    for j in range(len(metrics), nrows * cols):
        axes[j // cols][j % cols].axis("off")
    handles, labs = [], []
    for ax in fig.axes:
        h, lab = ax.get_legend_handles_labels()
        for hh, ll in zip(h, lab):
            if ll not in labs:
                handles.append(hh)
                labs.append(ll)
    if handles:
        fig.legend(handles, labs, loc="outside lower center", ncols=min(len(labs), 3), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def plot_coverage(
    curves: Mapping[str, AttentionGraph | InformationFlow | Mapping[str, Any]],
    *,
    ax: Axes | None = None,
    max_layers: int | None = None,
    log_layers: bool | None = None,
    title: str | None = None,
) -> Figure:
    """Coverage after ``L`` layers (fraction of (query, key) pairs connected) for several patterns.

    ``curves`` maps a label to an ``AttentionGraph`` (measured here, all heads merged), an
    ``InformationFlow``, or an ``analyze`` result. Sampled curves get a +-1 standard-error band.
    ``log_layers`` (default: when some curve needs more than 32 layers) puts ``L`` on a log axis.
    """
    if not curves:
        raise ValueError("curves is empty: pass {label: graph or information_flow(...)}")
    flows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for label, item in curves.items():
        if isinstance(item, AttentionGraph):
            item = information_flow(item, merged=item.heads > 1)
        if isinstance(item, InformationFlow):
            cov, err = np.array(item.coverage), np.array(item.coverage_stderr)
        else:
            c = get_path(item, "flow.coverage")
            if c is None:
                raise ValueError(f"curves[{label!r}] has no flow.coverage (analyze it with the 'flow' metric)")
            cov = np.array(c)
            err = np.array(get_path(item, "flow.coverage_stderr") or np.zeros_like(cov))
        flows[str(label)] = (cov, err)
    if ax is None:
        fig = new_figure(6.4, 4.2)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    longest = max(c.size for c, _ in flows.values()) - 1
    if log_layers is None:
        log_layers = longest > 32
    end = longest if max_layers is None else min(longest, max_layers)
    for k, ((label, (cov, err)), color) in enumerate(zip(flows.items(), _palette(len(flows)))):
        # a curve that reached its final value early stays flat out to the longest one
        if cov.size <= end:
            cov = np.concatenate([cov, np.full(end + 1 - cov.size, cov[-1])])
            err = np.concatenate([err, np.full(end + 1 - err.size, err[-1])])
        cov, err = cov[: end + 1], err[: end + 1]
        L = np.arange(cov.size)
        start = 1 if log_layers else 0
        ax.step(L[start:], cov[start:], where="post", color=color, lw=1.6, label=label, alpha=0.9)
        if cov.size <= 40:
            ax.plot(L[start:], cov[start:], ls="none", marker=_MARKERS[k % len(_MARKERS)], ms=4, color=color)
        if err.any():
            ax.fill_between(L[start:], (cov - err)[start:], (cov + err)[start:], step="post", color=color, alpha=0.2)
    if log_layers:
        ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("stacked attention layers L")
    ax.set_ylabel("coverage (share of query-key pairs)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.14),
              ncols=2 if len(flows) > 3 else len(flows))
    ax.set_title(title or "information flow: coverage after L layers (residual connections)", fontsize=10)
    return fig


def plot_degree_histogram(
    graph: AttentionGraph,
    head: int = 0,
    *,
    merged: bool = False,
    ax: Axes | None = None,
    bins: int | None = None,
    title: str | None = None,
) -> Figure:
    """Histograms of the out-degrees (keys per query) and in-degrees (queries per key).

    Integer-wide bins when the degrees span at most ``bins`` (default 60) values, else ``bins``
    equal bins; a log count axis when the counts span more than two decades.
    """
    out, inn = degree_sequences(graph, head=head, merged=merged)
    if ax is None:
        fig = new_figure(6.4, 4.0)
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    nbins = 60 if bins is None else int(bins)
    both = np.concatenate([out, inn])
    lo, hi = (int(both.min()), int(both.max())) if both.size else (0, 0)
    edges = np.arange(lo, hi + 2) - 0.5 if hi - lo + 1 <= nbins else np.linspace(lo, hi + 1, nbins + 1)
    ax.hist(out, bins=edges, alpha=0.6, color="#4c72b0", label=f"out-degree (keys per query), mean {out.mean():.1f}")
    ax.hist(inn, bins=edges, alpha=0.6, color="#dd8452", label=f"in-degree (queries per key), mean {inn.mean():.1f}")
    counts = np.concatenate([np.bincount(out - lo), np.bincount(inn - lo)])
    counts = counts[counts > 0]
    if counts.size and counts.max() / counts.min() > 100:
        ax.set_yscale("log")
    ax.set_xlabel("degree")
    ax.set_ylabel("tokens")
    ax.legend(fontsize=8, frameon=False)
    ax.grid(True, alpha=0.3)
    prov = graph.provenance
    what = "all heads merged" if merged else f"head {head}"
    ax.set_title(title or f"degrees of {prov.spec or prov.name} (n={graph.n_q})  ·  {what}", fontsize=10)
    return fig


def _palette(k: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if k <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(k)]
