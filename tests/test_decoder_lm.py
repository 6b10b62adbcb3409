"""DecoderLM: causal sparse self-attention on every backend, the look-ahead check, phases (pattern
parameters), state and layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsegraph import patterns
from sparsegraph.experiments.models.config import AttentionConfig
from sparsegraph.experiments.models.decoder import DecoderConfig, DecoderLM, causal_layout, override_spec
from sparsegraph.layout import compile as compile_layout


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny(pattern="causal", backend="auto", **kw) -> DecoderLM:
    torch.manual_seed(0)
    cfg = DecoderConfig(vocab_size=23, d_model=32, n_layers=2, n_heads=2, d_ff=48, max_len=96,
                        attention=AttentionConfig(pattern=pattern, block_size=16, backend=backend), **kw)
    return DecoderLM(cfg).eval()


SPECS = [
    "causal",
    "sliding_window:window=7,causal=true",
    "sink_window:window=6,sinks=2",
    "window_schedule:window=4,last=12,layers=2,dilation=[1,3],dilate_from=1",
    "local_global:window=5,every=2",
    "sparse_transformer:stride=8",
    "sparse_transformer:stride=8,mode=fixed,c=2",
]


@pytest.mark.parametrize("spec", SPECS)
def test_logits_depend_only_on_the_past(spec: str) -> None:
    m = tiny(spec)
    x = torch.randint(0, 23, (2, 50), generator=torch.Generator().manual_seed(1))
    out = m(x)
    assert out.shape == (2, 50, 23)
    y = x.clone()
    y[:, 30:] = (y[:, 30:] + 1) % 23  # change the future from position 30 on
    assert torch.equal(m(y)[:, :30], out[:, :30])
    assert not torch.allclose(m(y)[:, 30:], out[:, 30:])
    assert torch.allclose(m(x[:, :17]), out[:, :17], atol=1e-5)  # a shorter input: same prefix


@pytest.mark.parametrize("backend", ["torch", "dense", "reference"])
@pytest.mark.parametrize("spec", ["causal", "sink_window:window=6,sinks=2",
                                  "window_schedule:window=4,last=12,layers=2,dilation=[1,3],dilate_from=1"])
def test_backends_agree(spec: str, backend: str) -> None:
    x = torch.randint(0, 23, (2, 40), generator=torch.Generator().manual_seed(2))
    ref = tiny(spec, "reference")(x)
    assert torch.allclose(tiny(spec, backend)(x), ref, atol=1e-5)
    if spec == "causal":  # auto runs SDPA(is_causal=True), no layout
        m = tiny(spec, "auto")
        assert m.layers[0].attn.uses_sdpa
        assert torch.allclose(m(x), ref, atol=1e-5)
        assert m.layout_hashes() == [{}, {}]


def test_triton_backend_forward_and_backward_match_reference() -> None:
    import triton  # noqa: F401  (a dependency of the package: its absence is an error, not a skip)
    x = torch.randint(0, 23, (1, 32), generator=torch.Generator().manual_seed(3))
    spec = "sink_window:window=6,sinks=2"
    a, b = tiny(spec, "triton"), tiny(spec, "reference")
    la, lb = a(x), b(x)
    assert torch.allclose(la, lb, atol=1e-4)
    la.square().mean().backward()
    lb.square().mean().backward()
    ga, gb = a.layers[0].attn.qkv.weight.grad, b.layers[0].attn.qkv.weight.grad
    assert torch.allclose(ga, gb, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("n, block", [(64, 16), (100, 16), (128, 32), (33, 32), (16, 16)])
def test_causal_layout_equals_the_compiled_graph(n: int, block: int) -> None:
    assert causal_layout(n, block).hash == compile_layout(patterns.build("causal", n), block).hash


def test_a_pattern_that_looks_ahead_is_refused_naming_the_edge() -> None:
    with pytest.raises(ValueError, match=r"layer 0: pattern 'sliding_window:window=5' is not causal: head 0 has the edge 0 -> 1"):
        tiny("sliding_window:window=5")

    @patterns.register("test_peek_head1")
    def peek(n: int, *, heads: int = 1) -> np.ndarray:
        m = np.tril(np.ones((heads, n, n), bool))
        if heads > 1 and n > 7:
            m[1, 5, 7] = True
        return m

    try:
        with pytest.raises(ValueError, match=r"layer 1: pattern 'test_peek_head1' is not causal: head 1 has the edge 5 -> 7"):
            tiny(["causal", "test_peek_head1"])
        # caught at the first use of a length too, when construction cannot build the pattern
        m = tiny("sink_window:window=6,sinks=2")
        m.layers[1].attn.set_spec("test_peek_head1")
        with pytest.raises(ValueError, match="head 1 has the edge 5 -> 7"):
            m(torch.zeros(1, 20, dtype=torch.long))
    finally:
        patterns.unregister("test_peek_head1")


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="n_heads must divide"):
        DecoderConfig(vocab_size=10, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="even head width"):
        DecoderConfig(vocab_size=10, d_model=30, n_heads=2)
    with pytest.raises(ValueError, match="one per layer"):
        DecoderConfig(vocab_size=10, n_layers=3, attention=AttentionConfig(pattern=["causal", "causal"]))
    with pytest.raises(ValueError, match="has no field"):
        DecoderConfig.from_dict({"vocab_size": 10, "widht": 3})
    cfg = DecoderConfig.from_dict({"vocab_size": 10, "attention": {"pattern": "sink_window:window=4"}})
    assert DecoderConfig.from_dict(cfg.to_dict()) == cfg
    m = tiny()
    with pytest.raises(ValueError, match="exceeds DecoderConfig.max_len=96"):
        m(torch.zeros(1, 97, dtype=torch.long))
    with pytest.raises(ValueError, match="vocab_size=23"):
        m(torch.full((1, 4), 23))


def test_untied_head_and_gradient_checkpointing() -> None:
    x = torch.randint(0, 23, (2, 40), generator=torch.Generator().manual_seed(4))
    m = tiny("sink_window:window=6,sinks=2", tie_embeddings=False, dropout=0.1).train()
    assert m.lm_head is not None and m.output_weight() is not m.token.weight
    torch.manual_seed(5)
    m(x).logsumexp(-1).mean().backward()
    g1 = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    m.set_gradient_checkpointing(True)
    torch.manual_seed(5)
    m(x).logsumexp(-1).mean().backward()
    for n, p in m.named_parameters():
        assert torch.allclose(p.grad, g1[n], atol=1e-6), n


def test_pattern_params_switch_every_layer_and_travel_with_the_state() -> None:
    assert override_spec("sink_window:window=32,sinks=4", {"window": 64}) == ("sink_window:window=64,sinks=4", {"window"})
    assert override_spec("causal|sink_window:window=3", {"window": 9})[0] == "causal|sink_window:window=9"
    m = tiny("window_schedule:window=4,last=8,layers=2")
    x = torch.randint(0, 23, (1, 40), generator=torch.Generator().manual_seed(6))
    before = m(x)
    m.set_pattern_params(window=8, last=16)
    assert m.layer_specs() == ["window_schedule:window=8,last=16,layers=2"] * 2
    assert m.pattern_params == {"window": 8, "last": 16}
    after = m(x)
    assert not torch.allclose(before, after)
    with pytest.raises(ValueError, match=r"no layer's pattern has the parameter\(s\) \['stride'\]"):
        m.set_pattern_params(stride=2)
    state = m.state_dict()
    fresh = tiny("window_schedule:window=4,last=8,layers=2")
    with pytest.raises(ValueError, match="attention pattern"):
        fresh.load_state_dict(state)  # a model in another phase refuses the checkpoint
    fresh.set_pattern_params(window=8, last=16)
    fresh.load_state_dict(state)
    assert torch.equal(fresh(x), after)
    m.set_pattern_params()
    assert torch.equal(m(x), before)
