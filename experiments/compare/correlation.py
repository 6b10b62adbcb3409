"""Does a graph metric predict the score? Rank correlations over a comparison's patterns.

For each graph metric (:data:`~sparsegraph.experiments.compare.graphs.GRAPH_METRICS`), the
Spearman rank correlation ``rho`` between the patterns' metric and their test score (accuracy;
bits per character for the character LM, where a negative ``rho`` means the metric helps), both
averaged over the seeds each pattern trained (the metric of seed ``s`` is that of the graph seed
``s`` trained on). Its interval comes from a bootstrap over seeds: each resample draws, for every
pattern, as many of its seeds as it has, with replacement, and recomputes both means and ``rho``;
the interval is the 2.5th-97.5th percentile of the resampled ``rho`` (resamples where ``rho`` is
undefined, e.g. every pattern tied on the metric, are left out and counted).

A metric *predicts* accuracy on a task when its interval excludes 0. With fewer than
:data:`MIN_PATTERNS` patterns or :data:`MIN_SEEDS` seeds a rank correlation says nothing, and the
verdict says so instead of printing one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["Correlation", "MIN_PATTERNS", "MIN_SEEDS", "metric_correlations", "runs_by_pattern", "verdict"]

#: The fewest patterns (ranks) and seeds (bootstrap units) a correlation is computed from.
MIN_PATTERNS = 5
MIN_SEEDS = 2


@dataclass(frozen=True)
class Correlation:
    """``rho`` of one metric against accuracy, with its bootstrap interval ``[low, high]``
    (None where undefined) and how many resamples gave a defined ``rho``."""

    metric: str
    rho: float | None
    low: float | None
    high: float | None
    resamples: int
    defined: int

    @property
    def predicts(self) -> bool:
        """The interval excludes 0 (a rank correlation that holds across seeds)."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    def format(self) -> str:
        if self.rho is None:
            return "–"
        interval = "" if self.low is None else f" [{self.low:+.2f}, {self.high:+.2f}]"
        return f"{self.rho:+.2f}{interval}"


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rho = spearmanr(x, y).statistic
    return None if not math.isfinite(rho) else float(rho)


def metric_correlations(runs: Mapping[str, Mapping[int, tuple[Mapping[str, float | None], float]]],
                        metrics: Sequence[str], *, resamples: int = 2000,
                        seed: int = 0) -> list[Correlation]:
    """``runs[pattern][seed] = (graph metrics of that seed's graph, test accuracy)``; one
    :class:`Correlation` per metric (see the module docstring).

    >>> runs = {p: {s: ({"m": float(i)}, 0.1 * i + 0.01 * s) for s in (0, 1)} for i, p in enumerate("abcde")}
    >>> c, = metric_correlations(runs, ["m"], resamples=200)
    >>> c.rho, c.predicts
    (1.0, True)
    """
    if not isinstance(resamples, int) or resamples < 1:
        raise ValueError(f"resamples must be an int >= 1, got {resamples!r}")
    rng = np.random.default_rng(seed)
    labels = [p for p in runs if runs[p]]
    out = []
    for key in metrics:
        usable = [p for p in labels if all(m.get(key) is not None and math.isfinite(m[key])
                                           for m, _acc in runs[p].values())]
        cells = [[(runs[p][s][0][key], runs[p][s][1]) for s in sorted(runs[p])] for p in usable]

        def rho_of(choice: list[list[int]]) -> float | None:
            x = np.array([np.mean([cells[i][j][0] for j in pick]) for i, pick in enumerate(choice)])
            y = np.array([np.mean([cells[i][j][1] for j in pick]) for i, pick in enumerate(choice)])
            return _spearman(x, y)

        rho = rho_of([list(range(len(c))) for c in cells]) if cells else None
        boot = []
        if rho is not None:
            for _ in range(resamples):
                r = rho_of([list(rng.integers(0, len(c), len(c))) for c in cells])
                if r is not None:
                    boot.append(r)
        low = high = None
        if boot:
            low, high = (float(v) for v in np.percentile(boot, [2.5, 97.5]))
        out.append(Correlation(key, rho, low, high, resamples if rho is not None else 0, len(boot)))
    return out


def verdict(task: str, correlations: Sequence[Correlation], *, patterns: int, seeds: int,
            titles: Mapping[str, str] | None = None, score: str = "accuracy") -> str:
    """One line: which metric, if any, predicts the ``score`` (accuracy, bpc) on ``task``."""
    if patterns < MIN_PATTERNS or seeds < MIN_SEEDS:
        return (f"Metric against {score} on {task}: not computed ({patterns} pattern(s), {seeds} "
                f"seed(s); a rank correlation needs >= {MIN_PATTERNS} patterns and >= {MIN_SEEDS} seeds).")
    name = (lambda k: (titles or {}).get(k, k))
    hits = [c for c in correlations if c.predicts]
    if not hits:
        return (f"Metric against {score} on {task}: no graph metric predicts {score} (every "
                "bootstrap interval over seeds contains 0).")
    best = max(hits, key=lambda c: abs(c.rho or 0.0))
    others = ", ".join(f"{name(c.metric)} ({c.format()})" for c in hits if c is not best)
    return (f"Metric against {score} on {task}: {name(best.metric)} predicts {score} "
            f"(Spearman {best.format()}, 95% bootstrap over seeds)"
            + (f"; also {others}" if others else "") + ".")


def runs_by_pattern(patterns: Sequence[Mapping[str, Any]], runs: Sequence[Any]
                    ) -> dict[str, dict[int, tuple[Mapping[str, float | None], float]]]:
    """The input of :func:`metric_correlations` from a task's pattern records (with ``per_seed``
    graph metrics) and its finished run records (``label``, ``seed``, ``test_score``)."""
    per_seed = {p["label"]: {int(s): m for s, m in p.get("per_seed", {}).items()} for p in patterns}
    out: dict[str, dict[int, tuple[Mapping[str, float | None], float]]] = {p["label"]: {} for p in patterns}
    for r in runs:
        if r.status == "done" and r.test_score is not None and r.seed in per_seed.get(r.label, {}):
            out[r.label][r.seed] = (per_seed[r.label][r.seed], r.test_score)
    return out
