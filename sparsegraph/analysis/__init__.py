"""Graph analysis of attention patterns: is this pattern a good graph?

BigBird's argument (Zaheer et al. 2020) is that a sparse graph with short paths, a wide spectral
gap and local clustering keeps what full attention can express; these functions measure that for
any :class:`~sparsegraph.AttentionGraph`. Every metric takes ``head=`` (one head, default 0) or
``merged=True`` (the union of the heads: a multi-head layer lets query ``i`` read key ``j`` when
any head has the edge).

Direction: edge ``i -> j`` is query ``i`` attending key ``j``; information flows ``j -> i``.
Distances ``d(i, j)`` are taken along attention edges from the query, so ``d(i, j)`` is the
number of stacked layers after which key ``j`` can influence query ``i``.

Modules (one metric family each): ``paths`` (average shortest-path length, diameter,
unreachable pairs), ``flow`` (coverage after L layers, information-flow depth), ``causal``
(is a graph causal; causal coverage and flow depth: every query has seen its prefix), ``spectral``
(spectral gaps), ``clustering`` (average clustering, transitivity), ``degrees``, ``smallworld``
(sigma, omega), ``routing`` (can given positions reach a readout through a stack of layer graphs), ``summary`` (``analyze``, ``compare_table``, ``format_table``); ``distances``
is the shared BFS engine and ``quotient`` the exact twin (block) reduction that makes
block-aligned patterns cheap at any length.
"""

from sparsegraph.analysis.causal import CausalFlow, causal_flow, causal_flow_depth, first_future_edge, is_causal
from sparsegraph.analysis.clustering import Clustering, clustering
from sparsegraph.analysis.degrees import DegreeStats, degree_sequences, degree_stats
from sparsegraph.analysis.distances import DistanceProfile, distance_profile
from sparsegraph.analysis.flow import InformationFlow, coverage, flow_depth, information_flow
from sparsegraph.analysis.paths import PathLengths, average_path_length, diameter, path_lengths
from sparsegraph.analysis.quotient import TwinQuotient, twin_quotient
from sparsegraph.analysis.routing import reach, routable, routable_fraction
from sparsegraph.analysis.smallworld import (
    SmallWorld,
    lattice_clustering,
    lattice_path_length,
    random_reference,
    ring_lattice,
    small_world,
)
from sparsegraph.analysis.spectral import SpectralGap, spectral_gap
from sparsegraph.analysis.summary import METRICS, analyze, compare_table, format_table, to_json

__all__ = [
    "METRICS",
    "CausalFlow",
    "Clustering",
    "DegreeStats",
    "DistanceProfile",
    "InformationFlow",
    "PathLengths",
    "SmallWorld",
    "SpectralGap",
    "TwinQuotient",
    "analyze",
    "average_path_length",
    "causal_flow",
    "causal_flow_depth",
    "clustering",
    "compare_table",
    "coverage",
    "degree_sequences",
    "degree_stats",
    "diameter",
    "distance_profile",
    "first_future_edge",
    "flow_depth",
    "format_table",
    "information_flow",
    "is_causal",
    "lattice_clustering",
    "lattice_path_length",
    "path_lengths",
    "random_reference",
    "reach",
    "routable",
    "routable_fraction",
    "ring_lattice",
    "small_world",
    "spectral_gap",
    "to_json",
    "twin_quotient",
]
