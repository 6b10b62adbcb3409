"""Imports every built-in pattern module so that each registers itself."""

from sparsegraph.patterns.bigbird import bigbird
from sparsegraph.patterns.bigbird_hf import bigbird_hf
from sparsegraph.patterns.causal import local_global, sink_window, window_schedule
from sparsegraph.patterns.dilated_window import dilated_window
from sparsegraph.patterns.erdos_renyi import erdos_renyi
from sparsegraph.patterns.full import causal, full
from sparsegraph.patterns.global_etc import global_etc
from sparsegraph.patterns.global_itc import global_itc
from sparsegraph.patterns.longformer import longformer
from sparsegraph.patterns.sliding_window import sliding_window
from sparsegraph.patterns.sparse_transformer import sparse_transformer
from sparsegraph.patterns.watts_strogatz import watts_strogatz

__all__ = [
    "full",
    "causal",
    "erdos_renyi",
    "sliding_window",
    "dilated_window",
    "watts_strogatz",
    "global_itc",
    "global_etc",
    "bigbird",
    "bigbird_hf",
    "longformer",
    "sparse_transformer",
    "sink_window",
    "window_schedule",
    "local_global",
]
