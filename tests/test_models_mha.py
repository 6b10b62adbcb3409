"""SparseGraphAttention: nn.MultiheadAttention's calling convention over a pattern's graph."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsegraph.experiments.models import SparseGraphAttention

E, H = 64, 4


def _pair(batch_first: bool, backend: str = "torch") -> tuple[nn.MultiheadAttention, SparseGraphAttention]:
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(E, H, batch_first=batch_first)
    with torch.no_grad():
        mha.in_proj_bias.normal_()
        mha.out_proj.bias.normal_()
    sga = SparseGraphAttention(E, H, "full", batch_first=batch_first, block_size=16, backend=backend)
    sga.load_state_dict(mha.state_dict())
    return mha, sga


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("mask_kind", ["bool", "float", "none"])
def test_full_pattern_equals_multihead_attention(batch_first: bool, mask_kind: str) -> None:
    mha, sga = _pair(batch_first)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 37, E, generator=g)
    if not batch_first:
        x = x.transpose(0, 1).contiguous()
    pad = torch.zeros(2, 37, dtype=torch.bool)
    pad[1, 30:] = True
    kpm = {"bool": pad, "float": torch.zeros(2, 37).masked_fill(pad, float("-inf")), "none": None}[mask_kind]
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    want, w = mha(x1, x1, x1, key_padding_mask=kpm, need_weights=False)
    got, none = sga(x2, x2, x2, key_padding_mask=kpm)
    assert w is None and none is None
    keep = ~pad if batch_first else (~pad).T
    if mask_kind == "none":
        keep = torch.ones_like(keep)
    err = float((want - got)[keep].detach().abs().max())
    (want[keep].sum() / keep.sum()).backward()  # gradients of order 1
    (got[keep].sum() / keep.sum()).backward()
    assert 0.1 < float(mha.in_proj_weight.grad.abs().max()) < 100
    err_gx = float((x1.grad - x2.grad).abs().max())
    err_gw = float((mha.in_proj_weight.grad - sga.in_proj_weight.grad).abs().max())
    print(f"PARITY SparseGraphAttention vs nn.MultiheadAttention (batch_first={batch_first}, {mask_kind} mask): "
          f"out {err:.2e}, grad x {err_gx:.2e}, grad in_proj {err_gw:.2e}")
    assert err <= 1e-5 and err_gx <= 1e-4 and err_gw <= 1e-4


def test_separate_query_key_value_and_unbatched_inputs() -> None:
    mha, sga = _pair(True)
    q, k, v = (torch.randn(1, 20, E) for _ in range(3))
    assert torch.allclose(mha(q, k, v)[0], sga(q, k, v)[0], atol=1e-5)
    u = torch.randn(20, E)
    assert torch.allclose(mha(u, u, u)[0], sga(u, u, u)[0], atol=1e-5)
    assert sga(u, u, u)[0].shape == (20, E)


def _encoder_layer(pattern: str) -> nn.TransformerEncoderLayer:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(E, H, 2 * E, dropout=0.0, batch_first=True)
    layer.self_attn = SparseGraphAttention(E, H, pattern, batch_first=True, block_size=16)
    return layer


def test_inside_transformer_encoder_layer_eval_mode_is_really_sparse() -> None:
    """In eval mode without gradients nn.TransformerEncoderLayer would take its fused dense fast
    path (it reads self_attn.in_proj_weight and never calls self_attn); with SparseGraphAttention
    it cannot, so a token outside a query's window leaves that query's output unchanged."""
    layer = _encoder_layer("sliding_window:window=5").eval()
    x = torch.randn(2, 40, E)
    pad = torch.zeros(2, 40, dtype=torch.bool)
    pad[1, 35:] = True
    with torch.no_grad():
        y = layer(x, src_key_padding_mask=pad)
        far = x.clone()
        far[:, 0] += 5.0
        y_far = layer(far, src_key_padding_mask=pad)
        assert float((y_far[:, 20] - y[:, 20]).abs().max()) == 0.0  # key 0 is outside query 20's window
        assert float((y_far[:, 1] - y[:, 1]).abs().max()) > 1e-3  # ... and inside query 1's
        layer.train()  # the non-fast path, for comparison: the same numbers
        y_train = layer(x, src_key_padding_mask=pad)
    assert float((y_train - y)[~pad].abs().max()) <= 1e-6
    # a plain nn.MultiheadAttention layer is dense: the same perturbation reaches query 20
    dense = nn.TransformerEncoderLayer(E, H, 2 * E, dropout=0.0, batch_first=True).eval()
    with torch.no_grad():
        assert float((dense(far)[:, 20] - dense(x)[:, 20]).abs().max()) > 1e-3


def test_transformer_encoder_does_not_use_nested_tensors() -> None:
    enc = nn.TransformerEncoder(_encoder_layer("sliding_window:window=5"), 2, enable_nested_tensor=False).eval()
    with pytest.warns(UserWarning, match="_qkv_same_embed_dim was not True"):
        nested = nn.TransformerEncoder(_encoder_layer("sliding_window:window=5"), 2, enable_nested_tensor=True)
    assert not nested.use_nested_tensor
    pad = torch.zeros(2, 24, dtype=torch.bool)
    pad[0, 20:] = True
    with torch.no_grad():
        out = enc(torch.randn(2, 24, E), src_key_padding_mask=pad)
    assert out.shape == (2, 24, E) and torch.isfinite(out).all()


def test_causal_check_and_refused_options() -> None:
    x = torch.randn(1, 20, E)
    causal = SparseGraphAttention(E, H, "sliding_window:window=4,causal=true", batch_first=True, block_size=16)
    assert causal(x, x, x, is_causal=True)[0].shape == x.shape
    window = SparseGraphAttention(E, H, "sliding_window:window=4", batch_first=True, block_size=16)
    with pytest.raises(ValueError, match=r"is_causal=True but pattern 'sliding_window:window=4' has the edge \(0, 1\)"):
        window(x, x, x, is_causal=True)
    with pytest.raises(ValueError, match=r"need_weights must be False"):
        window(x, x, x, need_weights=True)
    with pytest.raises(ValueError, match=r"attn_mask must be None"):
        window(x, x, x, attn_mask=torch.zeros(20, 20))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \[batch, L\] = \[1, 20\]"):
        window(x, x, x, key_padding_mask=torch.zeros(1, 19, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"only hold 0 \(attend\) and -inf"):
        window(x, x, x, key_padding_mask=torch.full((1, 20), 0.5))
    with pytest.raises(ValueError, match=r"one shape"):
        window(x, x[:, :10], x[:, :10])
    with pytest.raises(ValueError, match=r"dropout must be 0, got 0.1"):
        SparseGraphAttention(E, H, "full", dropout=0.1)
    with pytest.raises(ValueError, match=r"embed_dim / num_heads = 8 must lie in \[16, 128\]"):
        SparseGraphAttention(E, 8, "full")
    with pytest.raises(ValueError, match=r"num_heads must divide embed_dim=64, got 3"):
        SparseGraphAttention(E, 3, "full")
    with pytest.raises(ValueError, match=r"pattern 'nope' is not a valid spec"):
        SparseGraphAttention(E, H, "nope")
    with pytest.raises(ValueError, match=r"backend must be one of .* got 'gpu'"):
        SparseGraphAttention(E, H, "full", backend="gpu")
