"""The picture of one training run: ``runs/<name>/curves.png`` from its ``metrics.jsonl``.

Left panel: the training loss (the mean over each logging window) and the evaluation loss against
the step; right panel: the same for the run's tracked metric (``TrainConfig.metric``, accuracy
for the classifiers), the evaluation split's points marked. The trainer draws it at the end of
``fit`` (``TrainConfig.plots``); ``python -m sparsegraph.experiments.train.plots RUN_DIR`` redraws it, e.g. for
a run still in progress.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sparsegraph.experiments.train.metrics import read_metrics

__all__ = ["plot_run"]

# keys of a metrics.jsonl row that are not plotted as curves
_NOT_CURVES = {"step", "epoch", "split", "count", "lr", "grad_norm", "tokens_per_s"}


def plot_run(run_dir: str | Path, out: str | Path | None = None, title: str | None = None,
             metric: str | None = None) -> Path | None:
    """Draw ``run_dir/metrics.jsonl`` to ``out`` (default ``run_dir/curves.png``), titled
    ``title`` (default: the last parts of ``run_dir``), with ``metric`` beside the loss (default:
    the first other metric the rows hold, alphabetically; none when there is no other).

    Returns the path, or ``None`` when there is nothing to draw yet (no logged step).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    src = run_dir / "metrics.jsonl"
    if not src.exists():
        raise FileNotFoundError(f"{src} does not exist: is {str(run_dir)!r} a run directory?")
    rows = [r for r in read_metrics(src) if isinstance(r, dict) and "step" in r and "split" in r]
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in rows:
        for k, v in r.items():
            if k in _NOT_CURVES or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            series.setdefault((k, r["split"]), []).append((int(r["step"]), float(v)))
    if not series:
        return None
    others = sorted({k for k, _ in series if k != "loss"})
    if metric is None or metric not in others:
        metric = others[0] if others else None
    panels = ["loss"] + ([metric] if metric is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, key in zip(axes[0], panels):
        for (k, split), pts in sorted(series.items()):
            if k != key:
                continue
            pts.sort()
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            if split == "train":
                ax.plot(xs, ys, lw=1.2, label=f"train ({key}, window mean)")
            else:
                ax.plot(xs, ys, marker="o", ms=4, lw=1.2, label=split)
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title if title is not None else "/".join(run_dir.parts[-3:]), fontsize=10)
    fig.tight_layout()
    path = Path(out) if out is not None else run_dir / "curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sparsegraph.experiments.train.plots RUN_DIR", file=sys.stderr)
        return 2
    try:
        path = plot_run(args[0])
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path if path is not None else "nothing logged yet")
    return 0


if __name__ == "__main__":
    sys.exit(main())
