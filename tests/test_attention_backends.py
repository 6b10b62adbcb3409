"""Every CPU backend (dense, torch, auto) against the float64 reference: outputs and gradients
for q, k, v on generated graphs; no NaN anywhere.

Tolerances by dtype (absolute and relative, on outputs and gradients of a unit-variance problem):
float32 2e-5 / 1e-4 (accumulation-order differences only); bfloat16 4e-2 / 4e-2 and float16
5e-3 / 1e-2 (inputs rounded to the dtype, compute in float32).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsegraph import kernels
from attention_cases import BUILTIN_SPECS, block_sizes, builtin_graphs, graphs
from sparsegraph.graph import AttentionGraph
from sparsegraph.layout import compile

BACKENDS = ["dense", "torch", "auto"]
TOL = {
    torch.float32: dict(atol=2e-5, rtol=1e-4),
    torch.bfloat16: dict(atol=4e-2, rtol=4e-2),
    torch.float16: dict(atol=5e-3, rtol=1e-2),
}


def _inputs(seed, batch, heads, n_q, n_k, d, dtype):
    gen = torch.Generator().manual_seed(seed)
    mk = lambda n: torch.randn(batch, heads, n, d, generator=gen).to(dtype).requires_grad_()  # noqa: E731
    return mk(n_q), mk(n_k), mk(n_k), torch.randn(batch, heads, n_q, d, generator=gen).to(dtype)


def _run(backend, q, k, v, grad_out, layout, pad):
    q, k, v = (t.detach().clone().requires_grad_() for t in (q, k, v))
    out = kernels.attention(q, k, v, layout, key_padding_mask=pad, backend=backend)
    out.backward(grad_out)
    return out.detach(), q.grad, k.grad, v.grad


def _compare(backend, g, b, batch, d, dtype, padded, seed):
    layout = kernels.prepare(compile(g, b))
    q, k, v, go = _inputs(seed, batch, g.heads, g.n_q, g.n_k, d, dtype)
    pad = None
    if padded:
        pad = torch.rand(batch, g.n_k, generator=torch.Generator().manual_seed(seed + 1)) < 0.3
    got = _run(backend, q, k, v, go, layout, pad)
    # the oracle sees the dtype-rounded inputs, computes in float64
    want = _run("reference", q.double().float(), k.float(), v.float(), go.float(), layout, pad)
    for name, a, e in zip(("out", "dq", "dk", "dv"), got, want):
        assert a.dtype == dtype, name
        assert torch.isfinite(a).all(), f"{name} has NaN/inf"
        torch.testing.assert_close(a.float(), e, **TOL[dtype], msg=lambda m: f"{backend} {name}: {m}")


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=30)
@given(g=graphs(max_n=140), b=block_sizes(), batch=st.integers(1, 2), d=st.sampled_from([16, 32, 64]),
       padded=st.booleans(), seed=st.integers(0, 2**30))
def test_fp32_matches_reference(backend, g, b, batch, d, padded, seed) -> None:
    _compare(backend, g, b, batch, d, torch.float32, padded, seed)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=10)
@given(g=graphs(max_n=100), b=block_sizes(), dtype=st.sampled_from([torch.bfloat16, torch.float16]),
       padded=st.booleans(), seed=st.integers(0, 2**30))
def test_half_precision_matches_reference(backend, g, b, dtype, padded, seed) -> None:
    _compare(backend, g, b, 1, 32, dtype, padded, seed)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_rows_zero_and_all_padding(backend) -> None:
    mask = np.tril(np.ones((70, 70), bool))
    mask[10:30] = False
    g = AttentionGraph.from_mask(mask)
    layout = compile(g, 16)
    q, k, v, go = _inputs(0, 2, 2, 70, 70, 32, torch.float32)
    pad = torch.zeros(2, 70, dtype=torch.bool)
    pad[1] = True  # batch element 1: every key is padding
    out, dq, dk, dv = _run(backend, q, k, v, go, layout, pad)
    assert torch.all(out[:, :, 10:30] == 0) and torch.all(dq[:, :, 10:30] == 0)
    assert torch.all(out[1] == 0) and torch.all(dq[1] == 0) and torch.all(dk[1] == 0) and torch.all(dv[1] == 0)
    for t in (out, dq, dk, dv):
        assert torch.isfinite(t).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_custom_scale(backend) -> None:
    g = AttentionGraph.from_mask(np.random.default_rng(3).random((50, 60)) < 0.3)
    layout = compile(g, 32)
    q, k, v, _ = _inputs(1, 1, 2, 50, 60, 16, torch.float32)
    a = kernels.attention(q, k, v, layout, scale=0.3, backend=backend)
    e = kernels.attention(q, k, v, layout, scale=0.3, backend="reference")
    torch.testing.assert_close(a, e, **TOL[torch.float32])
    assert not torch.allclose(e, kernels.attention(q, k, v, layout, backend="reference"))
    assert math.isclose(0.3, 0.3)


@pytest.mark.parametrize("backend", ["torch", "auto"])
@settings(max_examples=25)
@given(g=builtin_graphs(), b=st.sampled_from([16, 32, 64]), padded=st.booleans(), seed=st.integers(0, 2**30))
def test_builtin_patterns_match_reference(backend, g, b, padded, seed) -> None:
    _compare(backend, g, b, 1, 32, torch.float32, padded, seed)


def test_builtin_specs_cover_the_registry() -> None:
    from sparsegraph import patterns

    assert {p.name for p in patterns.available()} <= set(BUILTIN_SPECS), "add the new pattern to BUILTIN_SPECS"


@pytest.mark.parametrize("threads", [1, 2])
def test_torch_backend_thread_counts_agree(threads) -> None:
    """The chunk loop runs on torch.get_num_threads() workers; results do not depend on it."""
    g = AttentionGraph.from_mask(np.random.default_rng(5).random((3, 200, 150)) < 0.2)
    layout = kernels.prepare(compile(g, 32))
    q, k, v, go = _inputs(7, 2, 3, 200, 150, 32, torch.float32)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = _run("torch", q, k, v, go, layout, None)
        assert torch.get_num_threads() == threads, "the backend restores the thread count"
    finally:
        torch.set_num_threads(before)
    want = _run("reference", q, k, v, go, layout, None)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e, **TOL[torch.float32])


def test_choose_backend() -> None:
    q = torch.zeros(1, 1, 256, 16)
    dense = compile(AttentionGraph.from_mask(np.ones((256, 256), bool)), 64)
    sparse = compile(AttentionGraph.from_mask(np.eye(256, dtype=bool)), 16)  # 1/16 of the blocks
    assert dense.complete and not sparse.complete
    assert kernels.choose_backend(q, dense) == "dense"
    assert kernels.choose_backend(q, sparse) == "torch"
    # the dense path's mask is bounded unless the layout is complete (then it needs none)
    big = 9000
    assert big * big > kernels.DENSE_MAX_MASK
    causal = compile(AttentionGraph.from_edges(np.arange(big), np.arange(big), big) |
                     AttentionGraph.from_mask(np.tril(np.ones((8, 8), bool)).repeat(big // 8 + 1, 0)
                                              .repeat(big // 8 + 1, 1)[:big, :big]), 64)
    assert causal.nnzb * 64 * 64 >= kernels.DENSE_CROSSOVER * big * big
    assert kernels.choose_backend(torch.zeros(1, 1, big, 16), causal) == "torch"


def test_gather_loop_peer_matches_reference() -> None:
    from sparsegraph.kernels.bench import gather_loop_attention

    mask = np.random.default_rng(2).random((2, 150, 130)) < 0.2
    mask[:, 20:40] = False
    g = AttentionGraph.from_mask(mask)
    layout = compile(g, 32)
    q, k, v, go = _inputs(3, 1, 2, 150, 130, 16, torch.float32)
    q1, k1, v1 = (t.detach().clone().requires_grad_() for t in (q, k, v))
    out = gather_loop_attention(q1, k1, v1, layout, 1 / 4)
    out.backward(go)
    want = _run("reference", q, k, v, go, layout, None)
    for a, e in zip((out.detach(), q1.grad, k1.grad, v1.grad), want):
        torch.testing.assert_close(a, e, **TOL[torch.float32])


@pytest.mark.parametrize("backend", BACKENDS)
def test_inference_mode(backend) -> None:
    """Worker threads take the caller's inference mode (tensors made under it are writable)."""
    g = AttentionGraph.from_mask(np.random.default_rng(4).random((2, 300, 260)) < 0.3)
    layout = kernels.prepare(compile(g, 32))
    q, k, v, _ = _inputs(5, 1, 2, 300, 260, 32, torch.float32)
    with torch.inference_mode():
        got = kernels.attention(q, k, v, layout, backend=backend)
    want = kernels.attention(q.detach(), k.detach(), v.detach(), layout, backend="reference")
    torch.testing.assert_close(got, want, **TOL[torch.float32])


def test_choose_backend_short_sequences() -> None:
    """Below SMALL_ENTRIES the dense path starts at SMALL_CROSSOVER of the dense work (2+ threads)."""
    from sparsegraph.kernels.api import SMALL_CROSSOVER, SMALL_ENTRIES

    n = 1024
    assert n * n <= SMALL_ENTRIES
    band = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) < 200  # ~0.45 of the blocks
    layout = compile(AttentionGraph.from_mask(band), 64)
    frac = layout.nnzb * 64 * 64 / (n * n)
    assert SMALL_CROSSOVER <= frac < kernels.DENSE_CROSSOVER
    assert kernels.choose_backend(torch.zeros(1, 1, n, 16), layout, threads=2) == "dense"
    n2 = 2048
    band2 = np.abs(np.subtract.outer(np.arange(n2), np.arange(n2))) < 400
    layout2 = compile(AttentionGraph.from_mask(band2), 64)
    assert layout2.nnzb * 64 * 64 / (n2 * n2) < kernels.DENSE_CROSSOVER
    assert kernels.choose_backend(torch.zeros(1, 1, n2, 16), layout2, threads=2) == "torch"


def _band_layout(n: int, half_width: int, block: int = 32):
    band = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) < half_width
    layout = compile(AttentionGraph.from_mask(band), block)
    return layout, layout.nnzb * block * block / (n * n)


def test_choose_backend_one_thread() -> None:
    """One thread: dense only from SERIAL_CROSSOVER, except at n_q * n_k <= SERIAL_SMALL_ENTRIES."""
    from sparsegraph.kernels.api import SERIAL_CROSSOVER, SERIAL_SMALL_ENTRIES, SMALL_CROSSOVER

    q = torch.zeros(1, 1, 1024, 16)
    mid, frac = _band_layout(1024, 300)
    assert kernels.DENSE_CROSSOVER <= frac < SERIAL_CROSSOVER
    assert kernels.choose_backend(q, mid, threads=2) == "dense"
    assert kernels.choose_backend(q, mid, threads=1) == "torch"
    wide, frac = _band_layout(1024, 500)
    assert frac >= SERIAL_CROSSOVER
    assert kernels.choose_backend(q, wide, threads=1) == "dense"
    assert 512 * 512 <= SERIAL_SMALL_ENTRIES
    short, frac = _band_layout(512, 60)
    assert SMALL_CROSSOVER <= frac < kernels.DENSE_CROSSOVER
    assert kernels.choose_backend(torch.zeros(1, 1, 512, 16), short, threads=1) == "dense"
    # the default is torch's thread count
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert kernels.choose_backend(q, mid) == "torch"
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        kernels.choose_backend(q, mid, threads=0)