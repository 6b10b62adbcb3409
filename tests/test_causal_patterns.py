"""Causal patterns (sink_window, window_schedule, local_global, Sparse Transformer's causal forms)
and the causal flow depth of sparsegraph.analysis.causal."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from sparsegraph import patterns
from sparsegraph.analysis import analyze, causal_flow, causal_flow_depth, first_future_edge, is_causal
from sparsegraph.graph import AttentionGraph
from sparsegraph.patterns.causal import gemma_layer_types, schedule_windows, specs_from_layer_types
from sparsegraph.patterns.examples import GALLERY, GALLERY_LAYERS, SMALL

CAUSAL_SPECS = [
    ("causal", 1),
    ("sliding_window:window=5,causal=true", 1),
    ("dilated_window:window=3,dilation=[1,3],causal=true", 2),
    ("sink_window:window=4,sinks=2", 1),
    ("sink_window:window=1,sinks=0", 1),
    ("window_schedule:window=3,last=9,layers=3,dilation=[1,2],dilate_from=1,sinks=1", 2),
    ("local_global:window=4,every=2", 1),
    ("local_global:window=3,layer_types=[full_attention,sliding_attention,sliding_attention]", 1),
    ("sparse_transformer:stride=4", 1),
    ("sparse_transformer:stride=4,mode=fixed,c=2", 1),
]


def mask(spec: str, n: int, heads: int = 1, layer: int = 0) -> np.ndarray:
    return patterns.build(spec, n, heads=heads, layer=layer).to_dense()


@pytest.mark.parametrize("spec, heads", CAUSAL_SPECS)
def test_causal_patterns_never_look_ahead(spec: str, heads: int) -> None:
    for n in (1, 7, 48, 131):
        for layer in range(3 if "layers" in spec or "local_global" in spec else 1):
            g = patterns.build(spec, n, heads=heads, layer=layer)
            assert is_causal(g), (spec, n, layer)
            assert not np.triu(g.to_dense().any(axis=0), 1).any()
            assert g.to_dense().any(axis=2).all()  # every query has a key (itself at least)


def test_sink_window_edges() -> None:
    n, w, s = 40, 6, 3
    i, j = np.ogrid[:n, :n]
    expected = ((j <= i) & (j > i - w)) | ((j < s) & (j <= i))
    assert (mask("sink_window:window=6,sinks=3", n)[0] == expected).all()
    g = patterns.build("sink_window:window=6,sinks=3", n)
    assert set(g.kinds) == {"window", "global"}
    assert g.kind("global").nnz == sum(min(r + 1, s) for r in range(n))
    # no sinks: exactly the causal sliding window
    assert (mask("sink_window:window=6,sinks=0", n) == mask("sliding_window:window=6,causal=true", n)).all()


def test_window_schedule_grows_shrinks_and_dilates() -> None:
    assert schedule_windows(32, 512, 12)[0] == 32 and schedule_windows(32, 512, 12)[-1] == 512
    assert schedule_windows(32, 512, 12) == sorted(schedule_windows(32, 512, 12))
    assert schedule_windows(512, 32, 12) == schedule_windows(32, 512, 12)[::-1]
    assert schedule_windows(64, 0, 4) == [64] * 4 == schedule_windows(64, 64, 4)
    spec = "window_schedule:window=4,last=10,layers=3,dilation=[1,3],dilate_from=2"
    n = 64
    for layer, w in enumerate([4, 7, 10]):
        m = mask(spec, n, heads=2, layer=layer)
        row = 50
        assert np.flatnonzero(m[0, row]).tolist() == list(range(row - w + 1, row + 1))
        d = 3 if layer >= 2 else 1
        assert np.flatnonzero(m[1, row]).tolist() == sorted(row - d * t for t in range(w))
    with pytest.raises(ValueError, match="layers=3 but layer=3"):
        patterns.build(spec, n, heads=2, layer=3)
    with pytest.raises(ValueError, match="2 entries"):
        patterns.build(spec, n, heads=4)


def test_local_global_follows_layer_types() -> None:
    assert gemma_layer_types(12, 6) == (["sliding_attention"] * 5 + ["full_attention"]) * 2
    n = 40
    full = np.tril(np.ones((n, n), bool))
    window = mask("sliding_window:window=5,causal=true", n)[0]
    for layer in range(12):
        m = mask("local_global:window=5,every=6", n, layer=layer)[0]
        assert (m == (full if layer % 6 == 5 else window)).all()
    explicit = "local_global:window=5,layer_types=[full_attention,sliding_attention]"
    assert (mask(explicit, n, layer=0)[0] == full).all() and (mask(explicit, n, layer=1)[0] == window).all()
    with pytest.raises(ValueError, match="one type per layer"):
        patterns.build(explicit, n, layer=2)
    with pytest.raises(ValueError, match="layer_types entries"):
        patterns.build("local_global:window=5,layer_types=[local]", n)
    specs = specs_from_layer_types(gemma_layer_types(3, 3), 16)
    assert specs == ["sliding_window:window=16,causal=true"] * 2 + ["causal"]
    assert specs_from_layer_types(["sliding_attention"], 16, sinks=4) == ["sink_window:window=16,sinks=4"]
    for layer, spec in enumerate(specs):  # the per-layer specs build the same graphs as the pattern
        assert (mask(spec, n)[0] == mask("local_global:window=16,every=3", n, layer=layer)[0]).all()


def test_sparse_transformer_is_causal_by_default() -> None:
    assert is_causal(patterns.build("sparse_transformer:stride=4", 32))
    assert is_causal(patterns.build("sparse_transformer:stride=4,mode=fixed", 32))
    assert not is_causal(patterns.build("sparse_transformer:stride=4,causal=false", 32))


def test_first_future_edge_names_head_and_edge() -> None:
    a = np.tril(np.ones((6, 6), bool))
    b = a.copy()
    b[3, 5] = b[4, 5] = True
    g = AttentionGraph.from_mask(np.stack([a, b]))
    assert first_future_edge(g) == (1, 3, 5)
    assert first_future_edge(patterns.build("sliding_window:window=3", 8)) == (0, 0, 1)
    assert first_future_edge(patterns.build("causal", 8)) is None


def test_new_patterns_are_in_the_gallery_and_small_specs() -> None:
    new = {"sink_window", "window_schedule", "local_global"}
    assert new <= {spec.split(":")[0] for spec, _ in GALLERY.values()}
    assert new <= {s.split(":")[0] for spec in SMALL for s in spec.split("|")}
    assert set(GALLERY_LAYERS) <= set(GALLERY)
    for title, (spec, heads) in GALLERY.items():  # every entry builds at its layer
        patterns.build(spec, 256, heads=heads, layer=GALLERY_LAYERS.get(title, 0))
    for name in new:
        doc = patterns.info(name).fn.__doc__
        assert any(k in doc for k in ("Xiao et al. 2023", "Beltagy et al. 2020", "Gemma"))


# ---------------------------------------------------------------------- causal flow depth
def oracle(g: AttentionGraph, merged: bool = True) -> tuple[float, list[float]]:
    """Causal depth and coverage from networkx shortest paths on A ∪ I."""
    m = g.to_dense().any(axis=0) if merged else g.to_dense(0)
    n = m.shape[0]
    G = nx.DiGraph()
    G.add_nodes_from(range(n))
    G.add_edges_from(zip(*np.nonzero(m)))
    d = dict(nx.all_pairs_shortest_path_length(G))
    ds = [d[i].get(j, math.inf) for i in range(n) for j in range(i + 1)]
    depth = max(ds)
    top = int(max(x for x in ds if x < math.inf))
    pairs = n * (n + 1) // 2
    return depth, [sum(x <= L for x in ds) / pairs for L in range(top + 1)]


@pytest.mark.parametrize("spec, heads", CAUSAL_SPECS)
def test_causal_flow_equals_networkx(spec: str, heads: int) -> None:
    for n in (9, 40):
        g = patterns.build(spec, n, heads=heads, layer=1 if "layer" in spec else 0)
        flow = causal_flow(g, merged=heads > 1, exact=True)
        depth, cov = oracle(g)
        assert flow.depth == depth
        assert flow.coverage == pytest.approx(cov)
        assert flow.exact


@pytest.mark.parametrize("n, w", [(10, 2), (100, 7), (257, 33), (1000, 64)])
def test_causal_window_depth_closed_form(n: int, w: int) -> None:
    expected = math.ceil((n - 1) / (w - 1))
    assert causal_flow_depth(patterns.build(f"sliding_window:window={w},causal=true", n)) == expected
    # every query reads the sinks directly, but they relay nothing (a key reads no later key): the
    # farthest key is the first one after the sinks
    assert causal_flow_depth(patterns.build(f"sink_window:window={w},sinks=4", n)) == max(1, math.ceil((n - 5) / (w - 1)))
    assert causal_flow_depth(patterns.build("causal", n)) == 1


def test_causal_flow_of_a_non_causal_graph_raises_and_a_gap_is_inf() -> None:
    with pytest.raises(ValueError, match=r"edge 0 -> 1 looks ahead"):
        causal_flow(patterns.build("sliding_window:window=3", 10))
    # a dilated window with dilation 2 splits positions by parity: odd keys never reach even queries
    g = patterns.build("dilated_window:window=3,dilation=2,causal=true", 20)
    assert causal_flow_depth(g) == math.inf


def test_sampled_causal_flow_gives_bounds_and_analyze_reports_it() -> None:
    g = patterns.build("sliding_window:window=9,causal=true", 300)
    exact = causal_flow(g, exact=True)
    sampled = causal_flow(g, exact=False, samples=40, seed=1)
    assert sampled.depth is None and sampled.depth_low <= exact.depth and sampled.depth_high == math.inf
    cov_exact = np.array(exact.coverage)
    for L in (1, 5, 20):
        assert abs(sampled.coverage[L] - cov_exact[L]) < 5 * sampled.coverage_stderr[L] + 1e-9
    res = analyze(g, metrics=["paths", "flow"])
    assert res["flow"]["depth"] == math.inf  # the ordinary flow depth: later keys never reach
    assert res["flow"]["causal"]["depth"] == exact.depth == math.ceil(299 / 8)
    assert "causal" not in analyze(patterns.build("sliding_window:window=9", 300), metrics=["flow"])["flow"]
