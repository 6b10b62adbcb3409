"""The figures of a comparison (matplotlib, Agg backend, PNG under ``OUT/plots/``).

- ``curves.png``: validation accuracy against training step, one line per pattern (mean over
  seeds, the band spans the seeds' min..max), the majority-class baseline dashed; one panel per
  task.
- ``accuracy_vs_graph.png``: test accuracy against each graph metric: a small point per (pattern,
  seed) for the graph that seed trained, and the pattern's mean over seeds (error bar = std);
  one row per task, one panel per metric.
- ``speed_memory.png``: forward+backward milliseconds and peak MiB of one attention layer
  against the length (log-log), one line per pattern; one row per task.
"""

from __future__ import annotations

import io

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sparsegraph.experiments.compare.graphs import GRAPH_METRICS  # noqa: E402
from sparsegraph.experiments.compare.results import TaskResults, summarise  # noqa: E402
from sparsegraph.experiments.infra.atomic import atomic_write_bytes  # noqa: E402

__all__ = ["FIGURES", "curves", "accuracy_vs_graph", "speed_memory", "write_all"]

#: The files :func:`write_all` writes under ``OUT/plots/``, in order, with what each shows (the
#: alt text of a report's image links).
FIGURES: dict[str, str] = {
    "curves.png": "validation score against training step",
    "accuracy_vs_graph.png": "test score against each graph metric",
    "speed_memory.png": "one attention layer's time and peak memory against length",
}


def _colors(labels: Sequence[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {lab: cmap(i % 10) for i, lab in enumerate(labels)}


def _legend(ax: plt.Axes) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def curves(tasks: Sequence[TaskResults]) -> plt.Figure:
    """The validation score (accuracy, bpc) vs step per pattern; one panel per task."""
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, tr in zip(axes[0], tasks):
        sc = tr.scoring
        labels = [p["label"] for p in tr.patterns]
        col = _colors(labels)
        for lab in labels:
            per_seed = [dict((int(s), a) for s, a in r.curve) for r in tr.runs
                        if r.label == lab and r.curve]
            if not per_seed:
                continue
            steps = sorted(set().union(*per_seed))
            vals = [[c[s] for c in per_seed if s in c] for s in steps]
            mean = [(100 if sc.percent else 1) * sum(v) / len(v) for v in vals]
            ax.plot(steps, mean, marker="o", ms=3, color=col[lab], label=lab)
            if len(per_seed) > 1:
                k = 100 if sc.percent else 1
                ax.fill_between(steps, [k * min(v) for v in vals], [k * max(v) for v in vals],
                                color=col[lab], alpha=0.15, lw=0)
        k = 100 if sc.percent else 1
        base = tr.baseline.get("val")
        if base is not None:
            ax.axhline(k * base, color="grey", ls="--", lw=1, label=sc.baseline)
        ax.set_title(f"{tr.task} ({tr.preset}): validation {sc.key}")
        ax.set_xlabel("training step")
        ax.set_ylabel(sc.title)
        ax.grid(alpha=0.3)
        _legend(ax)
    fig.tight_layout()
    return fig


def _label_lifts(points: Sequence[tuple[float, float]], cells: int = 30) -> list[int]:
    """How many labels to stack each point's label above: the number of earlier points that fall
    in the same cell of a ``cells x cells`` grid over the points' range (patterns with equal
    metrics and accuracies, e.g. every pattern at chance level, would print over each other)."""
    if not points:
        return []
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    (x0, x1), (y0, y1) = (min(xs), max(xs)), (min(ys), max(ys))

    def cell(v: float, lo: float, hi: float) -> int:
        return 0 if hi <= lo else round((v - lo) / (hi - lo) * cells)

    seen: dict[tuple[int, int], int] = {}
    lifts = []
    for x, y in points:
        c = (cell(x, x0, x1), cell(y, y0, y1))
        lifts.append(seen.get(c, 0))
        seen[c] = seen.get(c, 0) + 1
    return lifts


def accuracy_vs_graph(tasks: Sequence[TaskResults]) -> plt.Figure:
    """The test score (accuracy, bpc) against each graph metric; rows = tasks, columns = metrics."""
    keys = [(k, t) for k, t in GRAPH_METRICS]
    fig, axes = plt.subplots(len(tasks), len(keys), figsize=(3.2 * len(keys), 3.0 * len(tasks)),
                             squeeze=False)
    for row, tr in zip(axes, tasks):
        k = 100 if tr.scoring.percent else 1
        summary = summarise(tr)
        col = _colors([s["label"] for s in summary])
        per_seed = {p["label"]: p.get("per_seed", {}) for p in tr.patterns}
        for ax, (key, title) in zip(row, keys):
            # one small point per (pattern, seed): that seed's graph against its accuracy
            seeds = 0
            for r in tr.runs:
                x = per_seed.get(r.label, {}).get(str(r.seed), {}).get(key)
                if r.test_score is not None and x is not None and math.isfinite(x):
                    ax.plot([x], [k * r.test_score], ".", color=col[r.label], alpha=0.5, ms=5)
                    seeds += 1
            points = [(s, s.get(key), k * s["test_score"]) for s in summary
                      if s.get(key) is not None and s.get("test_score") is not None
                      and not (isinstance(s.get(key), float) and not math.isfinite(s.get(key)))]
            if not points and not seeds:
                # e.g. routable on a task without known answer positions (ListOps): say why the
                # panel is empty rather than draw bare axes
                ax.text(0.5, 0.5, f"{title}:\nnot defined for {tr.task}", ha="center",
                        va="center", transform=ax.transAxes, fontsize=8, color="grey")
                ax.set_xticks([])
            for (s, x, y), lift in zip(points, _label_lifts([(x, y) for _s, x, y in points])):
                err = k * s["test_score_std"] if s.get("test_score_std") else None
                ax.errorbar([x], [y], yerr=None if err is None else [err], fmt="o",
                            color=col[s["label"]], capsize=3)
                ax.annotate(s["label"], (x, y), fontsize=7, xytext=(3, 3 + 8 * lift),
                            textcoords="offset points")
            base = tr.baseline.get("test")
            if base is not None:
                ax.axhline(k * base, color="grey", ls="--", lw=1)
            ax.set_xlabel(title)
            ax.grid(alpha=0.3)
        row[0].set_ylabel(f"{tr.task}: test {tr.scoring.title}")
    fig.tight_layout()
    return fig


def speed_memory(tasks: Sequence[TaskResults]) -> plt.Figure | None:
    """ms and MiB of one attention layer (fwd+bwd, batch 1) against n; None without a sweep."""
    with_sweep = [tr for tr in tasks if tr.sweep]
    if not with_sweep:
        return None
    fig, axes = plt.subplots(len(with_sweep), 2, figsize=(10, 3.6 * len(with_sweep)), squeeze=False)
    for (ax_t, ax_m), tr in zip(axes, with_sweep):
        labels = [p["label"] for p in tr.patterns]
        col = _colors(labels)
        for lab in labels:
            rows = sorted((r for r in tr.sweep if r["label"] == lab and r.get("ms") is not None),
                          key=lambda r: r["n"])
            if rows:
                # the median with its fastest-slowest range; an unreliable median is drawn hollow
                ns = [r["n"] for r in rows]
                ms = [r["ms"] for r in rows]
                err = [[r["ms"] - r.get("ms_low", r["ms"]) for r in rows],
                       [r.get("ms_high", r["ms"]) - r["ms"] for r in rows]]
                ax_t.errorbar(ns, ms, yerr=err, color=col[lab], label=lab, capsize=2, lw=1)
                for r in rows:
                    ax_t.plot([r["n"]], [r["ms"]], marker="o", color=col[lab],
                              mfc=col[lab] if r.get("reliable", True) else "white")
            mem = [r for r in rows if r.get("peak_mb") is not None]
            if mem:
                ax_m.plot([r["n"] for r in mem], [max(r["peak_mb"], 1e-2) for r in mem],
                          marker="o", color=col[lab], label=lab)
        ax_t.axvline(tr.length, color="grey", ls=":", lw=1)
        ax_m.axvline(tr.length, color="grey", ls=":", lw=1)
        for ax, what in ((ax_t, "fwd+bwd ms"), (ax_m, "peak MiB")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("sequence length n")
            ax.set_ylabel(what)
            ax.set_title(f"{tr.task}: one attention layer, {what}"
                         + (" (hollow: unreliable)" if ax is ax_t else ""))
            ax.grid(alpha=0.3, which="both")
            _legend(ax)
    fig.tight_layout()
    return fig


def write_all(out: Path, tasks: Sequence[TaskResults]) -> list[Path]:
    """Draw every figure into ``out/plots/``; returns the files written."""
    d = out / "plots"
    d.mkdir(parents=True, exist_ok=True)
    written = []
    draw = {"curves.png": curves, "accuracy_vs_graph.png": accuracy_vs_graph,
            "speed_memory.png": speed_memory}
    for name in FIGURES:
        fig = draw[name](tasks)
        if fig is None:
            continue
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        atomic_write_bytes(d / name, buf.getvalue())
        written.append(d / name)
    return written
