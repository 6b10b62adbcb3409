"""Hypothesis strategies for attention graphs, shared by the layout and attention tests.

Graphs are drawn from a seed so every case is reproducible: random token-level graphs, random
block-aligned graphs (blocks of 8..64 tokens, cropped so n need not divide), optionally causal,
with some query rows emptied; shared or per-head.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from sparsegraph.graph import AttentionGraph

BLOCKS = (16, 32, 64)


def _token_mask(rng: np.random.Generator, heads: int, n_q: int, n_k: int) -> np.ndarray:
    density = rng.choice([0.02, 0.1, 0.3, 0.7, 1.0])
    return rng.random((heads, n_q, n_k)) < density


def _block_mask(rng: np.random.Generator, heads: int, n_q: int, n_k: int) -> np.ndarray:
    b = int(rng.choice([8, 16, 32, 64]))
    nbq, nbk = -(-n_q // b), -(-n_k // b)
    blocks = rng.random((heads, nbq, nbk)) < rng.choice([0.2, 0.5, 0.9])
    full = np.kron(blocks, np.ones((1, b, b), bool))
    return full[:, :n_q, :n_k]


@st.composite
def graphs(draw, max_n: int = 140, square: bool | None = None, max_heads: int = 3) -> AttentionGraph:
    """A random AttentionGraph (see the module docstring)."""
    n_q = draw(st.integers(1, max_n))
    same = draw(st.booleans()) if square is None else square
    n_k = n_q if same else draw(st.integers(1, max_n))
    heads = draw(st.integers(1, max_heads))
    shared = draw(st.booleans())
    kind = draw(st.sampled_from(["token", "block"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    make = _token_mask if kind == "token" else _block_mask
    mask = make(rng, 1 if shared else heads, n_q, n_k)
    if n_q == n_k and draw(st.booleans()):  # causal
        mask &= np.tril(np.ones((n_q, n_k), bool))
    if draw(st.booleans()):  # some query rows without any edge
        mask[:, rng.random(n_q) < 0.2, :] = False
    if shared:
        return AttentionGraph.from_mask(mask[0], heads=heads)
    return AttentionGraph.from_mask(mask)


def block_sizes() -> st.SearchStrategy:
    """An int block size or a ``(block_q, block_k)`` pair from 16/32/64."""
    one = st.sampled_from(BLOCKS)
    return st.one_of(one, st.tuples(one, one))


#: A small spec for every built-in pattern (tests check that the list covers the registry).
BUILTIN_SPECS = {
    "bigbird": ["bigbird:block=16,window=3,random=2,global=1", "bigbird:block=8,window=3,random=1,global=1,mode=etc"],
    "bigbird_hf": ["bigbird_hf:block=8,random=1"],
    "causal": ["causal"],
    "dilated_window": ["dilated_window:window=6,dilation=[1,2]", "dilated_window:window=5,causal=true"],
    "erdos_renyi": ["erdos_renyi:p=0.1", "erdos_renyi:degree=3,self_loops=false"],
    "full": ["full"],
    "global_etc": ["global_etc:g=3"],
    "global_itc": ["global_itc:indices=[0,7]"],
    "local_global": ["local_global:window=5,every=2", "local_global:window=4,layer_types=[sliding_attention,full_attention,sliding_attention],sinks=1"],
    "longformer": ["longformer:window=8,global_indices=[0,3]", "longformer:window=[4,8,6],dilation=[1,2]"],
    "sink_window": ["sink_window:window=6,sinks=2", "sink_window:window=3,sinks=0"],
    "sliding_window": ["sliding_window:window=9", "sliding_window:window=16,causal=true"],
    "sparse_transformer": ["sparse_transformer:stride=8", "sparse_transformer:stride=8,mode=fixed,causal=false"],
    "watts_strogatz": ["watts_strogatz:k=4,p=0.2"],
    "window_schedule": ["window_schedule:window=3,last=9,layers=3", "window_schedule:window=4,last=8,layers=2,dilation=[1,2],sinks=1"],
}


@st.composite
def builtin_graphs(draw, max_n: int = 120) -> AttentionGraph:
    """A graph of a built-in pattern (or a union with a window) at a random small n and seed."""
    from sparsegraph import patterns

    name = draw(st.sampled_from(sorted(BUILTIN_SPECS)))
    spec = draw(st.sampled_from(BUILTIN_SPECS[name]))
    if draw(st.booleans()) and name not in ("global_etc", "bigbird", "bigbird_hf"):
        spec += "|sliding_window:window=3"
    n = draw(st.integers(16, max_n))
    if name == "bigbird":  # BigBird needs n to be a multiple of its block
        block = patterns.parse_spec(spec)[0][1]["block"]
        n = max(block * 4, n - n % block)
    if name == "bigbird_hf":  # a multiple of its block with more than 2 * random + 5 blocks
        n = max(8 * 8, n - n % 8)
    # per-head list parameters ("dilation=[1,2]") need one entry per head
    heads = 2 if ("dilation=[" in spec or "window=[" in spec) else draw(st.integers(1, 3))
    return patterns.build(spec, n, heads=heads, layer=draw(st.integers(0, 2)), seed=draw(st.integers(0, 1000)))
