"""analyze(), compare_table(), format_table() and JSON output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sparsegraph import patterns
from sparsegraph import AttentionGraph
from sparsegraph.analysis import METRICS, analyze, compare_table, format_table, path_lengths, to_json


def test_analyze_gathers_every_metric_and_reports_progress() -> None:
    g = patterns.build("watts_strogatz:k=4,p=0.2", 64, heads=2, seed=1)
    lines: list[str] = []
    res = analyze(g, merged=True, progress=lines.append)
    assert set(METRICS) <= set(res) and res["graph"]["head"] == "merged"
    assert [line.split()[0] for line in lines] == list(METRICS)
    assert res["paths"]["mean"] == path_lengths(g, merged=True).mean
    json.loads(to_json(res))  # JSON-ready


def test_analyze_skips_what_does_not_apply() -> None:
    cross = AttentionGraph.from_mask(np.ones((3, 5), dtype=bool))
    res = analyze(cross)
    assert "degrees" in res and "paths" not in res
    assert "square" in res["skipped"]["paths"]
    tiny = analyze(AttentionGraph.from_mask(np.ones((1, 1), dtype=bool)))
    assert "2 nodes" in tiny["skipped"]["spectral"] and tiny["paths"]["mean"] == 0.0


def test_analyze_rejects_unknown_metrics() -> None:
    with pytest.raises(ValueError, match="metrics must be a non-empty list"):
        analyze(patterns.build("full", 4), metrics=["paths", "bogus"])


def test_compare_table_and_formats() -> None:
    pats = [patterns.get("sliding_window:window=5"), patterns.get("causal")]
    rows = compare_table(pats, [16, 32], metrics=["degrees", "paths", "flow"], progress=lambda s: None)
    assert [(r["pattern"], r["n"]) for r in rows] == [
        ("sliding_window:window=5", 16), ("sliding_window:window=5", 32), ("causal", 16), ("causal", 32)]
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["pattern", "n", "keys/q"] and len(lines) == 2 + len(rows)
    assert "inf" in lines[-1]  # causal is not strongly connected
    md = format_table(rows, "markdown")
    assert md.splitlines()[0].startswith("| pattern | n |") and md.count("\n") == 1 + len(rows)
    data = json.loads(to_json(rows))
    assert data[-1]["paths"]["diameter"] == "inf"
    with pytest.raises(TypeError, match="sparsegraph.patterns.get"):
        compare_table(["causal"], [8])
    with pytest.raises(ValueError, match="fmt must be"):
        format_table(rows, "html")


def test_compare_table_with_factories_and_sampled_values() -> None:
    rng = np.random.default_rng(0)

    def ring_plus(n: int) -> AttentionGraph:
        i = np.arange(n)
        extra = rng.integers(0, n, size=n)
        return AttentionGraph.from_edges(np.concatenate([i, i]), np.concatenate([(i + 1) % n, extra]), n)

    rows = compare_table({"ring+random": ring_plus}, [300], metrics=["paths", "clustering"], exact=False, samples=20)
    cell = format_table(rows, columns=["L", "diam", "C"]).splitlines()[-1]
    assert "±" in cell  # sampled values show their standard error
    assert not rows[0]["paths"]["exact"] and rows[0]["paths"]["sources"] == 20
    assert math.isfinite(rows[0]["paths"]["mean"])
