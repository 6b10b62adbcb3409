"""sparsegraph.analysis.routing against a layer-by-layer breadth-first search (networkx)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsegraph import patterns
from sparsegraph.analysis import routing
from sparsegraph.graph import AttentionGraph


def _oracle_reach(graphs: list[AttentionGraph], s: int) -> set[int]:
    held = {s}
    for g in graphs:
        G = g.merge_heads().to_networkx(0)  # edge i -> j: information flows j -> i
        held = held | {i for i, j in G.edges() if j in held}
    return held


@st.composite
def layer_stacks(draw):
    n = draw(st.integers(2, 24))
    layers = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    graphs = [AttentionGraph.from_mask(rng.random((draw(st.integers(1, 2)), n, n)) < 0.08)
              for _ in range(layers)]
    return graphs


@given(layer_stacks(), st.data())
@settings(max_examples=40, deadline=None)
def test_reach_matches_a_layered_bfs(graphs, data) -> None:
    n = graphs[0].n_q
    sources = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4))
    got = routing.reach(graphs, sources)
    for k, s in enumerate(sources):
        assert set(np.flatnonzero(got[k])) == _oracle_reach(graphs, s)
    needed = [sources[:2]]
    readout = [0]
    want = all(0 in _oracle_reach(graphs, p) for p in sources[:2])
    assert routing.routable(graphs, needed, readout)[0] == want


def test_a_window_routes_only_as_far_as_its_layers_reach() -> None:
    # window 5 (2 on each side): information travels 2 positions per layer
    n, L = 64, 3
    graphs = [patterns.build("sliding_window:window=5", n, layer=i) for i in range(L)]
    needed = [[0, 2 * L], [0, 2 * L + 1], [10, 20]]
    assert routing.routable(graphs, needed, readout=[0]).tolist() == [True, False, False]
    # under mean pooling two needles meet halfway: 12 apart is reachable in 3 layers, 13 is not
    assert routing.routable(graphs, [[10, 22], [10, 23]]).tolist() == [True, False]
    # a global CLS routes everything in 2 layers; full attention in 1
    itc = [patterns.build("sliding_window:window=5|global_itc:indices=[0]", n)] * 2
    assert routing.routable(itc, [[5, 60]], readout=[0]).all()
    assert routing.routable_fraction([patterns.build("full", n)], [[3, 50], [1, 2]], readout=[0]) == 1.0


def test_bad_input_raises() -> None:
    g = patterns.build("full", 8)
    with pytest.raises(ValueError, match="non-empty list"):
        routing.reach([], [0])
    with pytest.raises(ValueError, match="sources must be positions"):
        routing.reach([g], [8])
    with pytest.raises(ValueError, match="one size"):
        routing.reach([g, patterns.build("full", 9)], [0])
    with pytest.raises(ValueError, match="readout"):
        routing.routable([g], [[0]], readout=[9])
    with pytest.raises(ValueError, match="at least one position"):
        routing.routable([g], [[]])
