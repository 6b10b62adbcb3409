"""compare's rank correlation of graph metrics with accuracy, bootstrapped over seeds."""

from __future__ import annotations

import numpy as np
import pytest

from sparsegraph.experiments.compare import correlation as corr
from sparsegraph.experiments.compare.results import RunRecord, TaskResults, markdown_table


def _runs(accuracy, metric, seeds=(0, 1, 2)):
    return {p: {s: ({"m": metric(i, s), "flat": 1.0}, accuracy(i, s)) for s in seeds}
            for i, p in enumerate("abcdef")}


def test_a_metric_that_orders_the_patterns_predicts_accuracy() -> None:
    runs = _runs(lambda i, s: 0.2 + 0.1 * i + 0.01 * s, lambda i, s: float(i))
    m, flat = corr.metric_correlations(runs, ["m", "flat"], resamples=300)
    assert m.rho == pytest.approx(1.0) and m.predicts and m.low > 0
    assert flat.rho is None and not flat.predicts and flat.format() == "–"
    line = corr.verdict("toy", [m, flat], patterns=6, seeds=3, titles={"m": "path len"})
    assert "path len predicts accuracy" in line


def test_noise_does_not_pass_for_a_prediction() -> None:
    rng = np.random.default_rng(0)
    noise = rng.random((6, 3))
    # the seeds' accuracies disagree with each other and with the metric's order
    runs = _runs(lambda i, s: float(noise[i, s]), lambda i, s: float(i))
    (m,) = corr.metric_correlations(runs, ["m"], resamples=500, seed=1)
    assert m.low is not None and m.low < 0 < m.high and not m.predicts
    assert "no graph metric predicts" in corr.verdict("toy", [m], patterns=6, seeds=3)


def test_too_few_patterns_or_seeds_say_so() -> None:
    assert "not computed" in corr.verdict("toy", [], patterns=4, seeds=3)
    assert "not computed" in corr.verdict("toy", [], patterns=6, seeds=1)
    with pytest.raises(ValueError, match="resamples"):
        corr.metric_correlations({}, ["m"], resamples=0)


def test_the_table_prints_the_correlations_with_enough_patterns_and_seeds() -> None:
    labels = list("abcde")
    patterns = [{"label": p, "spec": p, "metrics": {}, "metrics_std": {},
                 "per_seed": {str(s): {"density": 0.1 * (i + 1), "avg_path_length": 2.0}
                              for s in (0, 1)}} for i, p in enumerate(labels)]
    runs = [RunRecord(task="t", label=p, spec=p, seed=s, status="done", test_score=0.3 + 0.1 * i + 0.01 * s)
            for i, p in enumerate(labels) for s in (0, 1)]
    tr = TaskResults(task="t", preset="cpu", config={}, length=64, seq_len=63, data="",
                     baseline={"test": 0.25}, patterns=patterns, runs=runs)
    text = markdown_table(tr)
    assert "| density | +1.00 [" in text and "density predicts accuracy" in text
    one_seed = TaskResults(**{**tr.__dict__, "runs": [r for r in runs if r.seed == 0]})
    assert "not computed (5 pattern(s), 1 seed(s)" in markdown_table(one_seed)


def test_accuracy_plot_says_why_a_metric_panel_is_empty() -> None:
    """A task without known answer positions (ListOps) has no routable column: its panel says
    so instead of drawing bare axes; the panels with data have points and no such note."""
    from sparsegraph.experiments.compare import plots

    labels = list("ab")
    patterns = [{"label": p, "spec": p, "metrics": {}, "metrics_std": {},
                 "per_seed": {"0": {"density": 0.1 * (i + 1)}}} for i, p in enumerate(labels)]
    runs = [RunRecord(task="listops", label=p, spec=p, seed=0, status="done", test_score=0.3 + 0.1 * i)
            for i, p in enumerate(labels)]
    tr = TaskResults(task="listops", preset="cpu", config={}, length=64, seq_len=63, data="",
                     baseline={"test": 0.25}, patterns=patterns, runs=runs)
    fig = plots.accuracy_vs_graph([tr])
    try:
        by_title = {ax.get_xlabel(): ax for ax in fig.axes}
        notes = {t: [x.get_text() for x in ax.texts] for t, ax in by_title.items()}
        assert notes["routable"] == ["routable:\nnot defined for listops"]
        assert by_title["density"].lines and not any("not defined" in n for n in notes["density"])
    finally:
        import matplotlib.pyplot as plt
        plt.close(fig)
