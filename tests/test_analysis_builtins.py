"""Every built-in pattern, measured by sparsegraph.analysis and by networkx, must agree."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsegraph import patterns
from analysis_graphs import spectral_reference, undirected
from sparsegraph.patterns.examples import GALLERY, SMALL
from sparsegraph.analysis import analyze


def test_every_builtin_has_a_test_spec_and_a_gallery_entry() -> None:
    builtins = {p.name for p in patterns.available() if p.fn.__module__.startswith("sparsegraph.patterns.")}
    assert len(builtins) >= 14  # the module prefix matches (a stale prefix would check nothing)
    tested = {s.split(":")[0] for spec in SMALL for s in spec.split("|")}
    shown = {spec.split(":")[0] for spec, _ in GALLERY.values()}
    assert builtins <= tested, f"built-ins without a SMALL test spec: {builtins - tested}"
    assert builtins <= shown, f"built-ins missing from the gallery: {builtins - shown}"


@pytest.mark.parametrize("spec", SMALL)
@settings(max_examples=4)
@given(blocks=st.integers(4, 14), seed=st.integers(0, 10_000), merged=st.booleans())
def test_builtin_metrics_equal_networkx(spec: str, blocks: int, seed: int, merged: bool) -> None:
    n = 4 * blocks  # a multiple of every block size in SMALL
    g = patterns.build(spec, n, heads=2, seed=seed)
    res = analyze(g, merged=merged, head=0, seed=seed, exact=True,
                  metrics=["degrees", "paths", "flow", "spectral", "clustering"])
    mask = g.to_dense().any(axis=0) if merged else g.to_dense(0)
    size = mask.shape[0]
    G = nx.DiGraph()
    G.add_nodes_from(range(size))
    G.add_edges_from(zip(*np.nonzero(mask)))
    # degrees
    outs, ins = [d for _, d in G.out_degree()], [d for _, d in G.in_degree()]
    assert res["degrees"]["out_mean"] == pytest.approx(np.mean(outs))
    assert (res["degrees"]["in_min"], res["degrees"]["in_max"]) == (min(ins), max(ins))
    assert res["degrees"]["out_std"] == pytest.approx(np.std(outs))
    # paths
    d = dict(nx.all_pairs_shortest_path_length(G))
    ds = [d[i].get(j) for i in range(size) for j in range(size) if i != j]
    reach = [x for x in ds if x is not None]
    unreachable = sum(x is None for x in ds)
    assert res["paths"]["unreachable_pairs"] == unreachable
    assert res["paths"]["mean"] == pytest.approx(np.mean(reach))
    assert res["paths"]["diameter"] == (math.inf if unreachable else max(reach))
    # flow: coverage after L layers = share of pairs within distance L
    for L, c in enumerate(res["flow"]["coverage"]):
        within = size + sum(1 for x in reach if x <= L)
        assert c == pytest.approx(within / size**2)
    # spectral
    gap, lam2, rw_gap, comps = spectral_reference(mask)
    assert res["spectral"]["gap"] == pytest.approx(gap, abs=1e-8)
    assert res["spectral"]["rw_gap"] == pytest.approx(rw_gap, abs=1e-8)
    # clustering of the undirected graph
    U = nx.Graph(G.to_undirected())
    U.remove_edges_from(list(nx.selfloop_edges(U)))
    assert res["clustering"]["average"] == pytest.approx(nx.average_clustering(U), abs=1e-12)
    assert res["clustering"]["transitivity"] == pytest.approx(nx.transitivity(U), abs=1e-12)


def test_bigbird_analysis_at_4096_runs_on_its_block_graph() -> None:
    """The twin quotient makes BigBird exact at n = 4096 (64 blocks) -- no sampling."""
    g = patterns.build("bigbird:block=64,window=3,random=3,global=2", 4096, seed=0)
    res = analyze(g, metrics=["paths", "flow", "clustering"])
    assert res["paths"]["exact"] and res["paths"]["diameter"] == 2
    assert res["flow"]["depth"] == 2
    assert res["clustering"]["exact"]
