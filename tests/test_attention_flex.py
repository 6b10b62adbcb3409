"""FlexAttention interop: ``kernels.to_flex_block_mask(layout)`` gives FlexAttention exactly the
layout's pattern. Forward only: FlexAttention's CPU backward raises NotImplementedError (torch
2.13). Eager flex_attention (its reference path) runs the generated cases; one case runs through
``torch.compile`` (the fused CPU kernel), which is what a model would use."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.attention.flex_attention import BlockMask, flex_attention

from sparsegraph import kernels
from attention_cases import block_sizes, builtin_graphs, graphs
from sparsegraph.graph import AttentionGraph
from sparsegraph.layout import compile

TOL = dict(atol=2e-5, rtol=1e-4)  # float32

# eager flex_attention warns that it is unfused; that is what these small cases want
pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")


def _check(g: AttentionGraph, b, fn=flex_attention, seed: int = 0) -> None:
    layout = compile(g, b)
    bm = kernels.to_flex_block_mask(layout)
    assert isinstance(bm, BlockMask)
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(1, g.heads, g.n_q, 16, generator=gen)
    k = torch.randn(1, g.heads, g.n_k, 16, generator=gen)
    v = torch.randn(1, g.heads, g.n_k, 16, generator=gen)
    got = fn(q, k, v, block_mask=bm)
    want = kernels.attention(q, k, v, layout, backend="reference")
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, want, **TOL)


@settings(max_examples=20)
@given(g=graphs(max_n=100), b=block_sizes(), seed=st.integers(0, 2**30))
def test_eager_flex_equals_reference(g, b, seed) -> None:
    _check(g, b, seed=seed)


@settings(max_examples=8)
@given(g=builtin_graphs(max_n=100), b=st.sampled_from([16, 32]))
def test_eager_flex_builtin_patterns(g, b) -> None:
    _check(g, b)


def test_block_mask_lists_full_and_partial_blocks() -> None:
    mask = np.zeros((2, 96, 80), bool)
    mask[0, :32, :32] = True  # one full 32x32 block in head 0
    mask[1, 40, 70] = True  # one partial block (also a tail block) in head 1
    layout = compile(AttentionGraph.from_mask(mask), 32)
    bm = kernels.to_flex_block_mask(layout)
    assert bm.BLOCK_SIZE == (32, 32)
    assert bm.full_kv_num_blocks[0, 0].tolist() == [1, 0, 0] and bm.kv_num_blocks[0, 0].tolist() == [0, 0, 0]
    assert bm.full_kv_num_blocks[0, 1].tolist() == [0, 0, 0] and bm.kv_num_blocks[0, 1].tolist() == [0, 1, 0]
    assert int(bm.kv_indices[0, 1, 1, 0]) == 2


def test_compiled_flex_equals_reference() -> None:
    rng = np.random.default_rng(0)
    mask = rng.random((2, 150, 120)) < 0.15  # per head, tails on both axes, partial blocks
    mask[:, :, :32] |= True  # some full blocks too
    mask[:, 7] = False  # a query without edges
    _check(AttentionGraph.from_mask(mask), 32, fn=torch.compile(flex_attention, dynamic=False))
