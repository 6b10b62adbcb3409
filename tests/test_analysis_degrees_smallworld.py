"""Degree statistics and the small-world coefficients with their reference graphs."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis_graphs import graphs, undirected
from sparsegraph import AttentionGraph
from sparsegraph.analysis import (
    degree_stats,
    lattice_clustering,
    lattice_path_length,
    random_reference,
    ring_lattice,
    small_world,
)
from sparsegraph.analysis.smallworld import _connected_reference


@given(graphs(max_n=14))
def test_degrees_equal_networkx(g: AttentionGraph) -> None:
    G = g.to_networkx()
    outs = np.array([d for _, d in G.out_degree()])
    ins = np.array([d for _, d in G.in_degree()])
    s = degree_stats(g)
    assert (s.out_min, s.out_max, s.in_min, s.in_max) == (outs.min(), outs.max(), ins.min(), ins.max())
    assert s.out_mean == pytest.approx(outs.mean()) and s.in_std == pytest.approx(ins.std())
    assert s.edges == G.number_of_edges() and s.density == pytest.approx(G.number_of_edges() / g.n_q**2)


def test_degrees_of_cross_attention() -> None:
    m = np.zeros((3, 5), dtype=bool)
    m[0, :] = True
    m[2, 1] = True
    s = degree_stats(AttentionGraph.from_mask(m))
    assert (s.n_q, s.n_k, s.out_max, s.out_min, s.in_max) == (3, 5, 5, 0, 2)


@settings(max_examples=40)
@given(st.integers(3, 30), st.integers(1, 14))
def test_lattice_references_equal_networkx(n: int, h: int) -> None:
    k = 2 * h
    if k > n - 1:
        with pytest.raises(ValueError, match="k must be even and <= n - 1"):
            ring_lattice(n, k)
        return
    G = nx.from_scipy_sparse_array(ring_lattice(n, k))
    assert all(d == k for _, d in G.degree())
    assert lattice_clustering(n, k) == pytest.approx(nx.average_clustering(G), abs=1e-12)
    assert lattice_path_length(n, k) == pytest.approx(nx.average_shortest_path_length(G), abs=1e-12)
    if 2 < n and k < 2 * n / 3:
        assert lattice_clustering(n, k) == pytest.approx(3 * (k - 2) / (4 * (k - 1)))


@given(st.integers(2, 40), st.floats(0, 1), st.integers(0, 100))
def test_random_reference_is_a_simple_graph_with_m_edges(n: int, frac: float, seed: int) -> None:
    m = int(frac * n * (n - 1) // 2)
    r = random_reference(n, m, seed)
    assert r.nnz == 2 * m and (r != r.T).nnz == 0 and not r.diagonal().any()
    again = random_reference(n, m, seed)
    assert (r != again).nnz == 0  # seeded


def test_random_reference_is_uniform_over_pairs() -> None:
    """Each pair of K_6 appears in G(6, 5) with probability 5/15 (chi-square over 3000 draws)."""
    counts = np.zeros((6, 6))
    draws = 3000
    for s in range(draws):
        counts += random_reference(6, 5, s).toarray()
    upper = counts[np.triu_indices(6, 1)]
    expected = draws * 5 / 15
    chi2 = ((upper - expected) ** 2 / expected).sum()
    assert chi2 < 36.1  # 14 degrees of freedom, p = 0.001


def test_sigma_and_omega_follow_their_definitions_with_networkx_values() -> None:
    from sparsegraph.patterns import build

    g = build("watts_strogatz:k=6,p=0.1", 150, seed=2)
    sw = small_world(g, references=2, seed=4)
    u = undirected(g)
    c, l = nx.average_clustering(u), nx.average_shortest_path_length(u)
    refs = [nx.from_scipy_sparse_array(_connected_reference(150, u.number_of_edges(), 4, r)[0]) for r in range(2)]
    c_r = np.mean([nx.average_clustering(r) for r in refs])
    l_r = np.mean([nx.average_shortest_path_length(r) for r in refs])
    k = 2 * round(u.number_of_edges() / 150)
    assert sw.exact and sw.lattice_k == k and sw.edges == u.number_of_edges()
    assert sw.clustering == pytest.approx(c) and sw.path_length == pytest.approx(l)
    assert sw.random_clustering == pytest.approx(c_r) and sw.random_path_length == pytest.approx(l_r)
    assert sw.sigma == pytest.approx((c / c_r) / (l / l_r))
    assert sw.omega == pytest.approx(l_r / l - c / lattice_clustering(150, k))
    assert sw.sigma > 1  # a small world
    assert small_world(g, references=2, seed=4) == sw  # seeded


def test_small_world_undefined_cases_say_why() -> None:
    two = np.kron(np.eye(2, dtype=bool), np.ones((5, 5), dtype=bool))
    sw = small_world(AttentionGraph.from_mask(two), references=1)
    assert sw.sigma is None and sw.omega is None and any("disconnected" in x for x in sw.notes)
    ring = ring_lattice(30, 2)  # k = 2: no triangles anywhere
    sw = small_world(AttentionGraph(ring), references=1)
    assert sw.omega is None and sw.sigma is None
    star = np.zeros((60, 60), dtype=bool)
    star[0, :] = star[:, 0] = True  # mean degree 2: its G(n, M) references are never connected
    sw = small_world(AttentionGraph.from_mask(star), references=1)
    assert sw.omega is None and any("connected pairs" in x for x in sw.notes)
    with pytest.raises(ValueError, match="at least 3 nodes"):
        small_world(AttentionGraph.from_mask(np.ones((2, 2), dtype=bool)))
    with pytest.raises(ValueError, match="references must be >= 1"):
        small_world(AttentionGraph(ring), references=0)
