"""The float64 reference backend against an independent per-query computation, and the API's
input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsegraph import kernels
from attention_cases import block_sizes, graphs
from sparsegraph.graph import AttentionGraph
from sparsegraph.layout import compile


def _per_query(q, k, v, g: AttentionGraph, scale: float, pad) -> torch.Tensor:
    """softmax over each query's edge list, one query at a time (float64)."""
    B, H, n_q, d = q.shape
    out = torch.zeros(B, H, n_q, d, dtype=torch.float64)
    for h in range(H):
        adj = g.adjacency(h)
        for i in range(n_q):
            keys = adj.indices[adj.indptr[i]:adj.indptr[i + 1]]
            for b in range(B):
                js = [int(j) for j in keys if pad is None or not bool(pad[b, j])]
                if not js:
                    continue
                s = (k[b, h, js].double() @ q[b, h, i].double()) * scale
                out[b, h, i] = torch.softmax(s, 0) @ v[b, h, js].double()
    return out


@settings(max_examples=25)
@given(graphs(max_n=40), block_sizes(), st.integers(1, 2), st.booleans(), st.integers(0, 2**31 - 1))
def test_reference_equals_per_query_softmax(g, b, batch, padded, seed) -> None:
    torch.manual_seed(seed)
    H, d = g.heads, 16
    q = torch.randn(batch, H, g.n_q, d)
    k = torch.randn(batch, H, g.n_k, d)
    v = torch.randn(batch, H, g.n_k, d)
    pad = (torch.rand(batch, g.n_k) < 0.3) if padded else None
    out = kernels.attention(q, k, v, compile(g, b), key_padding_mask=pad, backend="reference")
    expected = _per_query(q, k, v, g, 1 / math.sqrt(d), pad)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-6)


def test_reference_no_edge_rows_zero_output_zero_grad() -> None:
    mask = np.zeros((20, 30), bool)
    mask[5, 3:9] = True
    L = compile(AttentionGraph.from_mask(mask), 16)
    q = torch.randn(1, 2, 20, 16, requires_grad=True)
    k = torch.randn(1, 2, 30, 16, requires_grad=True)
    v = torch.randn(1, 2, 30, 16, requires_grad=True)
    out = kernels.attention(q, k, v, L, backend="reference")
    out.square().sum().backward()
    rows = torch.ones(20, dtype=torch.bool)
    rows[5] = False
    assert torch.all(out[:, :, rows] == 0)
    assert torch.all(q.grad[:, :, rows] == 0)
    keys = torch.ones(30, dtype=torch.bool)
    keys[3:9] = False
    assert torch.all(k.grad[:, :, keys] == 0) and torch.all(v.grad[:, :, keys] == 0)
    for t in (out, q.grad, k.grad, v.grad):
        assert torch.isfinite(t).all()


def test_reference_refuses_large_inputs() -> None:
    n = 9000  # 9000**2 > reference.MAX_ENTRIES
    g = AttentionGraph.from_edges([0], [0], n, n)
    q = torch.zeros(1, 1, n, 16)
    with pytest.raises(ValueError, match="reference"):
        kernels.attention(q, q, q, compile(g, 64), backend="reference")


# ---------------------------------------------------------------------- API input checks
def _setup(n_q=32, n_k=48, heads=2, d=16, dtype=torch.float32):
    g = AttentionGraph.from_mask(np.ones((n_q, n_k), bool))
    q = torch.randn(1, heads, n_q, d, dtype=dtype)
    k = torch.randn(1, heads, n_k, d, dtype=dtype)
    return compile(g, 16), q, k, k.clone()


@pytest.mark.parametrize(
    "mutate, exc, match",
    [
        (lambda L, q, k, v: (L, q[0], k, v), ValueError, "q must have shape"),
        (lambda L, q, k, v: (L, q.double(), k, v), TypeError, "float32"),
        (lambda L, q, k, v: (L, q, k.half(), v), TypeError, "one dtype"),
        (lambda L, q, k, v: (L, q, k, v[:, :, :10]), ValueError, "k and v"),
        (lambda L, q, k, v: (L, q[:, :1], k, v), ValueError, "batch, heads"),
        (lambda L, q, k, v: (L, q[..., :8], k[..., :8], v[..., :8]), ValueError, "head_dim"),
        (lambda L, q, k, v: (L, q[:, :, :20], k, v), ValueError, "n_q=32"),
        (lambda L, q, k, v: (np.ones((32, 48)), q, k, v), TypeError, "layout"),
        (lambda L, q, k, v: (L, q.numpy(), k, v), TypeError, "q must be a torch.Tensor"),
    ],
)
def test_bad_inputs(mutate, exc, match) -> None:
    args = mutate(*_setup())
    with pytest.raises(exc, match=match):
        kernels.attention(args[1], args[2], args[3], args[0])


def test_bad_layout_heads_scale_padding_backend() -> None:
    g3 = AttentionGraph.from_mask(np.ones((3, 32, 48), bool) & (np.random.default_rng(0).random((3, 32, 48)) < 0.5))
    L, q, k, v = _setup()
    with pytest.raises(ValueError, match="heads=3"):
        kernels.attention(q, k, v, compile(g3, 16))
    with pytest.raises(TypeError, match="scale"):
        kernels.attention(q, k, v, L, scale="1")
    with pytest.raises(ValueError, match="scale"):
        kernels.attention(q, k, v, L, scale=float("nan"))
    with pytest.raises(TypeError, match="key_padding_mask"):
        kernels.attention(q, k, v, L, key_padding_mask=torch.zeros(1, 48))
    with pytest.raises(ValueError, match="key_padding_mask"):
        kernels.attention(q, k, v, L, key_padding_mask=torch.zeros(2, 48, dtype=torch.bool))
    with pytest.raises(ValueError, match="backend"):
        kernels.attention(q, k, v, L, backend="nope")


def test_prepared_layout_is_reused() -> None:
    _, q, k, v = _setup()
    L = compile(AttentionGraph.from_mask(np.tril(np.ones((32, 48), bool))), 16)
    dl = kernels.prepare(L)
    assert kernels.prepare(dl) is dl
    a = kernels.attention(q, k, v, dl, backend="dense")
    assert ("dense", "safe_mask") in dl.cache
    torch.testing.assert_close(a, kernels.attention(q, k, v, L, backend="reference"))
