"""The Triton block-sparse kernel (``kernels.triton_backend``) against the float64 reference.

Runs in Triton's interpreter on the CPU (``TRITON_INTERPRET=1``, set by conftest before triton is
imported; with ``TRITON_INTERPRET=0`` on a machine with a GPU the same tests run the compiled
kernels on CUDA tensors). The interpreter is slow: about 15-20 ms per (query tile, key tile) pair
per batch*head forward and twice that backward, so sizes stay small (n <= 96 in the generated cases,
one bigger case at n = 251).

Tolerances, on outputs and gradients of a unit-variance problem, as
``max |got - want| <= atol + rtol * |want|`` elementwise (``torch.testing.assert_close``):
float32 2e-5 / 1e-4 (accumulation order only: IEEE dots, float32 accumulators);
float16 5e-3 / 1e-2 (inputs and P rounded to float16 for the dots, outputs stored in float16);
bfloat16 4e-2 / 4e-2 (8-bit mantissa; outputs and gradients stored in bfloat16).
The oracle sees the dtype-rounded inputs and computes in float64.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsegraph import kernels
from sparsegraph import patterns
from attention_cases import graphs
from sparsegraph.kernels import reference
from sparsegraph.kernels import triton_backend as tb
from sparsegraph.graph import AttentionGraph
from sparsegraph.layout import BlockLayout, compile

#: In the interpreter the kernels take CPU tensors; compiled (``TRITON_INTERPRET=0`` on a machine
#: with a GPU) they take CUDA tensors, so the same tests check a real GPU run.
DEVICE = torch.device("cpu" if tb.is_interpreted() or not torch.cuda.is_available() else "cuda")

TOL = {
    torch.float32: dict(atol=2e-5, rtol=1e-4),
    torch.float16: dict(atol=5e-3, rtol=1e-2),
    torch.bfloat16: dict(atol=4e-2, rtol=4e-2),
}
DTYPES = st.sampled_from([torch.float32, torch.float16, torch.bfloat16])
# Block sizes 16 and 32, equal or not on the two axes.
BLOCKS = st.sampled_from([16, 32, (16, 32), (32, 16)])


def _inputs(seed: int, batch: int, heads: int, n_q: int, n_k: int, d: int, dtype: torch.dtype,
            transposed: bool = False) -> tuple[torch.Tensor, ...]:
    """q, k, v, grad_out from a seed. ``transposed``: strided views of [batch, n, heads, d] tensors,
    the layout a model's projections produce, so the kernels' stride handling is exercised."""
    gen = torch.Generator().manual_seed(seed)

    def mk(n: int) -> torch.Tensor:
        if transposed:
            return torch.randn(batch, n, heads, d, generator=gen).to(DEVICE, dtype).transpose(1, 2)
        return torch.randn(batch, heads, n, d, generator=gen).to(DEVICE, dtype)

    return mk(n_q), mk(n_k), mk(n_k), mk(n_q)


def _padding(seed: int, batch: int, n_k: int) -> torch.Tensor:
    return (torch.rand(batch, n_k, generator=torch.Generator().manual_seed(seed + 1)) < 0.3).to(DEVICE)


def _triton(q, k, v, go, layout, pad, scale=None, max_tile=None):
    q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
    out = tb.attention(q, k, v, layout, scale=scale, key_padding_mask=pad, max_tile=max_tile)
    dq, dk, dv = torch.autograd.grad(out, (q, k, v), go)
    return out.detach(), dq, dk, dv


def _reference(q, k, v, go, layout, pad, scale=None):
    q, k, v = (t.detach().double().requires_grad_() for t in (q, k, v))
    d = q.shape[-1]
    out = reference.attention(q, k, v, kernels.prepare(layout, DEVICE), key_padding_mask=pad,
                              scale=1.0 / math.sqrt(d) if scale is None else scale)
    dq, dk, dv = torch.autograd.grad(out, (q, k, v), go.double())
    return out.detach(), dq, dk, dv


def _edgeless_queries(layout: BlockLayout, heads: int, pad: torch.Tensor | None, batch: int) -> torch.Tensor:
    """Bool [batch, heads, n_q]: queries with no (unpadded) edge."""
    mask = torch.from_numpy(layout.to_dense()).to(DEVICE).expand(heads, -1, -1)[None]  # [1, H, n_q, n_k]
    if pad is not None:
        mask = mask & ~pad[:, None, None, :]
    return ~mask.any(-1).expand(batch, -1, -1)


def _check(g: AttentionGraph, block, batch: int, d: int, dtype: torch.dtype, padded: bool,
           transposed: bool, seed: int, scale: float | None = None, max_tile: int | None = None) -> None:
    layout = compile(g, block)
    q, k, v, go = _inputs(seed, batch, g.heads, g.n_q, g.n_k, d, dtype, transposed)
    pad = _padding(seed, batch, g.n_k) if padded else None
    got = _triton(q, k, v, go, layout, pad, scale, max_tile)
    want = _reference(q, k, v, go, layout, pad, scale)
    for name, a, e in zip(("out", "dq", "dk", "dv"), got, want):
        assert a.dtype == dtype and a.shape == e.shape, name
        assert torch.isfinite(a).all(), f"{name} has NaN/inf"
        torch.testing.assert_close(a.double(), e, **TOL[dtype], msg=lambda m: f"{name} ({dtype}): {m}")
    # Queries without an edge: exactly zero output and zero dq (not merely close to it).
    empty = _edgeless_queries(layout, g.heads, pad, batch)
    assert torch.all(got[0][empty] == 0) and torch.all(got[1][empty] == 0)


# ------------------------------------------------------------------ generated graphs
@settings(max_examples=40)
@given(g=graphs(max_n=80, max_heads=2), block=BLOCKS, batch=st.integers(1, 2),
       d=st.sampled_from([16, 24, 32]), dtype=DTYPES, padded=st.booleans(),
       transposed=st.booleans(), max_tile=st.sampled_from([16, 32, 64]), seed=st.integers(0, 2**30))
def test_matches_reference_on_generated_graphs(g, block, batch, d, dtype, padded, transposed, max_tile,
                                               seed) -> None:
    """Token-level and block-aligned random graphs, causal or not, shared or per-head, square or
    cross (n_q != n_k), with empty rows, any n (tail blocks), padded keys; head_dim 24 is padded to
    32 inside the kernel; max_tile 16 splits 32-blocks into sub-tiles."""
    _check(g, block, batch, d, dtype, padded, transposed, seed, max_tile=max_tile)


@settings(max_examples=10)
@given(g=graphs(max_n=96, max_heads=2), block=st.sampled_from([64, 128, (64, 128), (128, 32), (16, 64)]),
       max_tile=st.sampled_from([16, 32, 64, 128]), dtype=DTYPES, padded=st.booleans(),
       seed=st.integers(0, 2**30))
def test_large_blocks_and_sub_tiles(g, block, max_tile, dtype, padded, seed) -> None:
    """Layout blocks of 64 and 128, computed as one tile or as 16/32/64 sub-tiles: the bitmask of a
    sub-tile starts mid-block (mid-word for 16-key tiles), query tiles past n_q are not launched."""
    _check(g, block, 1, 16, dtype, padded, False, seed, max_tile=max_tile)


@settings(max_examples=6)
@given(n_q=st.integers(1, 70), n_k=st.integers(1, 70), block=BLOCKS, dtype=DTYPES,
       seed=st.integers(0, 2**30))
def test_block_aligned_full_blocks(n_q, n_k, block, dtype, seed) -> None:
    """Graphs made of whole compile-size blocks: most listed blocks are *full* (no bitmask read),
    only the tails partial."""
    bq, bk = (block, block) if isinstance(block, int) else block
    rng = np.random.default_rng(seed)
    blocks = rng.random((-(-n_q // bq), -(-n_k // bk))) < 0.6
    mask = np.kron(blocks, np.ones((bq, bk), bool))[:n_q, :n_k]
    g = AttentionGraph.from_mask(mask, heads=2)
    layout = compile(g, block)
    if n_q >= bq and n_k >= bk and blocks[: n_q // bq, : n_k // bk].any():
        assert (layout.mask_idx == -1).any()  # the full-block path is really taken
    _check(g, block, 1, 16, dtype, padded=False, transposed=False, seed=seed)


# ------------------------------------------------------------------ built-in patterns
#: A small-n spec for every built-in pattern, and the multiple n must be of (bigbird pads nothing).
SMALL_SPECS = {
    "bigbird": ("bigbird:block=16,window=3,random=1,global=1", 16),
    "bigbird_etc": ("bigbird:block=16,window=3,random=1,global=1,mode=etc", 16),
    "bigbird_hf": ("bigbird_hf:block=8,random=1", 64),
    "causal": ("causal", 1),
    "dilated_window": ("dilated_window:window=5,dilation=2", 1),
    "erdos_renyi": ("erdos_renyi:p=0.1", 1),
    "full": ("full", 1),
    "global_etc": ("global_etc:g=3", 1),
    "global_itc": ("global_itc:indices=[0,7]", 1),
    "local_global": ("local_global:window=5,every=2", 1),
    "longformer": ("longformer:window=9,global_indices=[0,5]", 1),
    "sink_window": ("sink_window:window=6,sinks=2", 1),
    "sliding_window": ("sliding_window:window=9", 1),
    "sparse_transformer": ("sparse_transformer:stride=8", 1),
    "watts_strogatz": ("watts_strogatz:k=4,p=0.2", 1),
    "window_schedule": ("window_schedule:window=3,last=9,layers=3", 1),
    "window_and_etc_union": ("sliding_window:window=5|global_etc:g=2", 1),
}


def test_every_registered_pattern_has_a_case() -> None:
    """A pattern added to the registry must get a line in SMALL_SPECS (so it is tested below)."""
    covered = {spec.split(":")[0] for spec, _ in SMALL_SPECS.values() if "|" not in spec}
    missing = sorted({info.name for info in patterns.available()} - covered)
    assert not missing, f"add small-n specs for {missing} to SMALL_SPECS"


@pytest.mark.parametrize("case", sorted(SMALL_SPECS))
@settings(max_examples=2)
@given(n=st.integers(20, 64), block=st.sampled_from([16, 32]), heads=st.integers(1, 2),
       padded=st.booleans(), seed=st.integers(0, 2**30))
def test_builtin_patterns(case, n, block, heads, padded, seed) -> None:
    """Every built-in pattern at a small n, shared or per-head as the pattern builds it (random
    ones differ per head), ETC global tokens in front, with and without key padding."""
    spec, multiple = SMALL_SPECS[case]
    n = -(-n // multiple) * multiple
    g = patterns.build(spec, n, heads=heads, seed=seed % 1000)
    _check(g, block, 1, 16, torch.float32, padded, transposed=False, seed=seed)


def test_larger_case_bigbird_like_n256() -> None:
    """One case with more blocks per row (n=256, block 32, per-head random blocks, global rows and
    columns, a window), every head different."""
    n, b, heads = 256, 32, 2
    rng = np.random.default_rng(7)
    nb = n // b
    blocks = np.zeros((heads, nb, nb), bool)
    for h in range(heads):
        for r in range(nb):
            blocks[h, r, max(0, r - 1): r + 2] = True
            blocks[h, r, rng.choice(nb, 2, replace=False)] = True
    blocks[:, 0, :] = blocks[:, :, 0] = True
    mask = np.kron(blocks, np.ones((1, b, b), bool))[:, : n - 5, : n - 5]  # tails: n=251
    mask &= rng.random(mask.shape) < 0.9  # make most blocks partial
    _check(AttentionGraph.from_mask(mask), b, 1, 32, torch.float32, True, False, seed=3)


# ------------------------------------------------------------------ log-sum-exp, empty rows
@settings(max_examples=6)
@given(g=graphs(max_n=64, max_heads=2), block=BLOCKS, padded=st.booleans(), seed=st.integers(0, 2**30))
def test_lse_is_logsumexp_over_edges(g, block, padded, seed) -> None:
    """``triton_forward``'s lse equals log sum exp(scale q.k) over each query's edges in float64,
    and is -inf exactly for queries without an edge."""
    layout = compile(g, block)
    q, k, v, _ = _inputs(seed, 2, g.heads, g.n_q, g.n_k, 16, torch.float32)
    pad = _padding(seed, 2, g.n_k) if padded else None
    out, lse = tb.triton_forward(q, k, v, layout, key_padding_mask=pad, scale=0.7)
    mask = torch.from_numpy(layout.to_dense()).to(DEVICE)[None]
    if pad is not None:
        mask = mask & ~pad[:, None, None, :]
    s = (q.double() @ k.double().transpose(-1, -2)) * 0.7
    want = torch.logsumexp(s.masked_fill(~mask, float("-inf")), -1)
    empty = ~mask.any(-1).expand_as(want)
    assert torch.all(lse[empty] == float("-inf"))
    torch.testing.assert_close(lse[~empty].double(), want[~empty], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out).all()


def test_all_padding_and_empty_rows_give_exact_zeros() -> None:
    """A batch element whose keys are all padding and a band of query rows without edges: zero
    outputs and zero gradients (not NaN) for q; zero dk/dv for keys nobody attends."""
    mask = np.tril(np.ones((70, 70), bool))
    mask[10:30] = False
    layout = compile(AttentionGraph.from_mask(mask), 16)
    q, k, v, go = _inputs(0, 2, 2, 70, 70, 32, torch.float32)
    pad = torch.zeros(2, 70, dtype=torch.bool, device=DEVICE)
    pad[1] = True
    out, dq, dk, dv = _triton(q, k, v, go, layout, pad)
    assert torch.all(out[:, :, 10:30] == 0) and torch.all(dq[:, :, 10:30] == 0)
    assert torch.all(out[1] == 0) and torch.all(dq[1] == 0) and torch.all(dk[1] == 0) and torch.all(dv[1] == 0)
    for t in (out, dq, dk, dv):
        assert torch.isfinite(t).all()
    want = _reference(q, k, v, go, layout, pad)
    for a, e in zip((out, dq, dk, dv), want):
        torch.testing.assert_close(a.double(), e, **TOL[torch.float32])


def test_empty_graph_and_custom_scale() -> None:
    """A graph without any edge (no listed block at all) outputs zeros; a custom scale is used."""
    empty = compile(AttentionGraph.from_mask(np.zeros((40, 24), bool)), 16)
    q, k, v, go = _inputs(1, 1, 2, 40, 24, 16, torch.float32)
    out, dq, dk, dv = _triton(q, k, v, go, empty, None)
    assert empty.nnzb == 0
    assert all(torch.all(t == 0) for t in (out, dq, dk, dv))
    g = AttentionGraph.from_mask(np.random.default_rng(3).random((50, 60)) < 0.3)
    _check(g, 32, 1, 16, torch.float32, False, False, seed=5, scale=0.3)


@pytest.mark.parametrize("n_q, n_k", [(0, 5), (5, 0), (0, 0)])
def test_empty_axes(n_q, n_k) -> None:
    """No queries or no keys: empty or zero outputs and gradients, no launch of an empty grid."""
    layout = compile(AttentionGraph.from_mask(np.zeros((n_q, n_k), bool)), 16)
    q, k, v, go = _inputs(0, 1, 2, n_q, n_k, 16, torch.float32)
    out, dq, dk, dv = _triton(q, k, v, go, layout, None)
    assert out.shape == q.shape and dq.shape == q.shape and dk.shape == k.shape and dv.shape == v.shape
    assert all(torch.all(t == 0) for t in (out, dq, dk, dv))


@pytest.mark.parametrize("wants", [(True, False, False), (False, True, True), (False, False, True)])
def test_gradients_of_a_subset_of_inputs(wants) -> None:
    """Only the inputs that require grad get one (the dQ or dK/dV kernel is skipped otherwise),
    and those gradients equal the reference's."""
    g = AttentionGraph.from_mask(np.random.default_rng(4).random((33, 40)) < 0.4)
    layout = compile(g, 16)
    q, k, v, go = _inputs(9, 1, 2, 33, 40, 16, torch.float32)
    leaves = [t.detach().requires_grad_(w) for t, w in zip((q, k, v), wants)]
    tb.attention(*leaves, layout).backward(go)
    want = _reference(q, k, v, go, layout, None)[1:]
    for leaf, w, e in zip(leaves, wants, want):
        if w:
            torch.testing.assert_close(leaf.grad.double(), e, **TOL[torch.float32])
        else:
            assert leaf.grad is None


# ------------------------------------------------------------------ integration with kernels.attention
def test_dispatch_through_kernels_attention() -> None:
    """``kernels.attention(..., backend="triton")`` reaches this kernel, with a reused DeviceLayout."""
    g = AttentionGraph.from_mask(np.random.default_rng(0).random((2, 45, 45)) < 0.2)
    dl = kernels.prepare(compile(g, 16), DEVICE)
    q, k, v, _ = _inputs(2, 1, 2, 45, 45, 16, torch.float32)
    pad = _padding(2, 1, 45)
    via_api = kernels.attention(q, k, v, dl, key_padding_mask=pad, backend="triton")
    direct = tb.attention(q, k, v, dl, key_padding_mask=pad)
    assert torch.equal(via_api, direct)
    torch.testing.assert_close(via_api.double(), _reference(q, k, v, q, dl.layout, pad)[0], **TOL[torch.float32])
    assert "triton" in kernels.available_backends()


# ------------------------------------------------------------------ bad input
def _three_head_layout() -> BlockLayout:
    per_head = np.ones((3, 20, 20), bool) & (np.arange(3) > 0)[:, None, None]  # heads differ
    return compile(AttentionGraph.from_mask(per_head), 16)


def _small():
    layout = compile(AttentionGraph.from_mask(np.ones((20, 20), bool)), 16)
    q, k, v, _ = _inputs(0, 1, 2, 20, 20, 16, torch.float32)
    return layout, q, k, v


@pytest.mark.parametrize(
    "change, error, words",
    [
        (lambda L, q, k, v: (L, q.half(), k, v), TypeError, "share one dtype"),
        (lambda L, q, k, v: (L, q.double(), k.double(), v.double()), TypeError, "float32, float16 or bfloat16"),
        (lambda L, q, k, v: (L, q[..., :8], k[..., :8], v[..., :8]), ValueError, "head_dim"),
        (lambda L, q, k, v: (L, q[:, :, :10], k, v), ValueError, "n_q=20"),
        (lambda L, q, k, v: (L, q[0], k[0], v[0]), ValueError, "[batch, heads, n, head_dim]"),
        (lambda L, q, k, v: ("layout", q, k, v), TypeError, "BlockLayout"),
        (lambda L, q, k, v: (_three_head_layout(), q, k, v), ValueError, "heads=3"),
    ],
)
def test_bad_input_raises(change, error, words) -> None:
    layout, q, k, v = _small()
    L, q, k, v = change(layout, q, k, v)
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        tb.attention(q, k, v, L)


def test_bad_padding_scale_and_flags_raise() -> None:
    layout, q, k, v = _small()
    with pytest.raises(TypeError, match="torch.bool"):
        tb.attention(q, k, v, layout, key_padding_mask=torch.zeros(1, 20, device=DEVICE))
    with pytest.raises(ValueError, match=r"\[batch, n_k\]"):
        tb.attention(q, k, v, layout, key_padding_mask=torch.zeros(1, 19, dtype=torch.bool, device=DEVICE))
    with pytest.raises(ValueError, match="finite"):
        tb.attention(q, k, v, layout, scale=float("nan"))
    with pytest.raises(TypeError, match="scale"):
        tb.attention(q, k, v, layout, scale="1")
    with pytest.raises(TypeError, match="allow_tf32"):
        tb.attention(q, k, v, layout, allow_tf32=1)
    with pytest.raises(ValueError, match="max_tile"):
        tb.attention(q, k, v, layout, max_tile=48)


def test_hand_made_layout_with_full_tail_block_is_rejected() -> None:
    """The kernels read full blocks without a bounds mask, so a layout marking the tail block of
    n=20 (block 16) as full must be refused, not computed with keys past n_k."""
    good = compile(AttentionGraph.from_mask(np.ones((20, 20), bool)), 16)
    assert (good.mask_idx >= 0).sum() == 3  # the three blocks touching a tail are partial
    bad = BlockLayout(
        n_q=20, n_k=20, block_q=16, block_k=16, heads=1, graph_heads=1, num_global=0,
        row_ptr=good.row_ptr, col_idx=good.col_idx, mask_idx=np.full_like(good.mask_idx, -1),
        masks=good.masks[:0], col_ptr=good.col_ptr, row_idx=good.row_idx, col_perm=good.col_perm,
    )
    _, q, k, v = _small()
    with pytest.raises(ValueError, match="tail key block"):
        tb.attention(q, k, v, bad)
