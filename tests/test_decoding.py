"""Cached decoding: the cache keeps what the graph says, equals the full forward at every step, and
stays bounded for window patterns."""

from __future__ import annotations

import pytest
import torch

from sparsegraph.experiments.models.config import AttentionConfig
from sparsegraph.experiments.models.decoder import DecoderConfig, DecoderLM
from sparsegraph.experiments.models.decoding import cache_rules, derive_rule, generate, generate_uncached


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny(pattern, max_len=96, n_layers=2) -> DecoderLM:
    torch.manual_seed(0)
    cfg = DecoderConfig(vocab_size=19, d_model=32, n_layers=n_layers, n_heads=2, d_ff=48, max_len=max_len,
                        attention=AttentionConfig(pattern=pattern, block_size=16))
    return DecoderLM(cfg).eval()


CASES = [  # spec, the rule of each layer
    ("causal", ["full", "full"]),
    ("sliding_window:window=7,causal=true", ["window", "window"]),
    ("sink_window:window=6,sinks=3", ["window", "window"]),
    ("dilated_window:window=4,dilation=[1,3],causal=true", ["window", "window"]),
    ("window_schedule:window=4,last=12,layers=2,dilation=[1,2],dilate_from=1", ["window", "window"]),
    ("local_global:window=5,every=2", ["window", "full"]),
    ("sparse_transformer:stride=8", ["graph", "graph"]),
    ("sparse_transformer:stride=8,mode=fixed,c=2", ["graph", "graph"]),
    ("sliding_window:window=60,causal=true", ["graph", "graph"]),  # wider than half the probe
    ("sliding_window:window=100,causal=true", ["full", "full"]),  # as wide as the probe: full
]


@pytest.mark.parametrize("spec, modes", CASES)
def test_cached_greedy_decoding_equals_the_full_forward_at_every_step(spec: str, modes: list[str]) -> None:
    m = tiny(spec)
    prompt = torch.randint(0, 19, (2, 9), generator=torch.Generator().manual_seed(1))
    ids, logits, cache = generate(m, prompt, 70, greedy=True, return_logits=True, return_cache=True)
    ref_ids, ref_logits = generate_uncached(m, prompt, 70, greedy=True)
    assert [r.mode for r in cache.rules] == modes
    assert torch.equal(ids, ref_ids)
    assert torch.allclose(logits, ref_logits, atol=1e-5, rtol=1e-5)


def test_sampling_is_seeded_and_matches_the_uncached_sampler() -> None:
    m = tiny("sink_window:window=6,sinks=2")
    prompt = torch.randint(0, 19, (3, 4), generator=torch.Generator().manual_seed(2))
    a = generate(m, prompt, 40, temperature=0.9, top_k=5, seed=7)
    assert torch.equal(a, generate(m, prompt, 40, temperature=0.9, top_k=5, seed=7))
    assert not torch.equal(a, generate(m, prompt, 40, temperature=0.9, top_k=5, seed=8))
    ref, _ = generate_uncached(m, prompt, 40, temperature=0.9, top_k=5, seed=7)
    assert torch.equal(a, ref)
    top1 = generate(m, prompt, 10, temperature=1.0, top_k=1, seed=3)
    assert torch.equal(top1, generate(m, prompt, 10, greedy=True))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        generate(m, prompt, 3, temperature=0.0)


def test_the_window_cache_is_bounded_in_the_generated_length() -> None:
    spec = "sink_window:window=6,sinks=3"
    m = tiny(spec)
    prompt = torch.randint(0, 19, (1, 5), generator=torch.Generator().manual_seed(3))
    sizes = {}
    for new in (20, 80, 400):  # 400: far past max_len = 96, the rolling cache continues
        _, cache = generate(m, prompt, new, greedy=True, return_cache=True)
        sizes[new] = (cache.capacity, cache.nbytes)
    assert sizes[20] == sizes[80] == sizes[400]
    assert sizes[20][0] == [3 + 6, 3 + 6]  # sinks + window, per layer
    assert sizes[20][1] == 2 * 2 * (1 * 2 * 9 * 16) * 4  # layers x (k, v) x [B, H, slots, d] x fp32
    full = tiny("causal")
    _, c1 = generate(full, prompt, 20, greedy=True, return_cache=True)
    _, c2 = generate(full, prompt, 80, greedy=True, return_cache=True)
    assert c2.nbytes > c1.nbytes  # the full cache grows with the length


def test_decoding_past_max_len_continues_the_window() -> None:
    """A window model decodes past its training length with the rolling cache; the reference is
    the same weights in a model whose max_len covers the whole sequence."""
    spec = "sink_window:window=6,sinks=2"
    short, long = tiny(spec, max_len=64), tiny(spec, max_len=256)
    long.load_state_dict(short.state_dict(), strict=False)
    prompt = torch.randint(0, 19, (1, 7), generator=torch.Generator().manual_seed(4))
    ids, logits = generate(short, prompt, 150, greedy=True, return_logits=True)
    ref_ids, ref_logits = generate_uncached(long, prompt, 150, greedy=True)
    assert torch.equal(ids, ref_ids)
    assert torch.allclose(logits, ref_logits, atol=1e-5)


def test_rules_are_read_off_the_graph() -> None:
    r = derive_rule("sink_window:window=10,sinks=4", heads=1, layer=0, seed=0, probe=128)
    assert (r.mode, r.sinks, r.span, r.bounded) == ("window", 4, 10, True)
    assert r.sink_cols.all() and r.offsets.all()
    r = derive_rule("dilated_window:window=3,dilation=[1,4],causal=true", heads=2, layer=0, seed=0, probe=128)
    assert r.mode == "window" and r.span == 9
    assert r.offsets[0].nonzero()[0].tolist() == [0, 1, 2] and r.offsets[1].nonzero()[0].tolist() == [0, 4, 8]
    # a window as wide as the probe is full causal attention there: keep everything; one wider
    # than half the probe is not seen to be stationary: the graph rule (keys dropped after use)
    assert derive_rule("sliding_window:window=128,causal=true", heads=1, layer=0, seed=0, probe=128).mode == "full"
    r = derive_rule("sliding_window:window=100,causal=true", heads=1, layer=0, seed=0, probe=128, horizon=400)
    assert r.mode == "graph" and r.capacity(400) == 100
    # fixed Sparse Transformer: a non-summary key is read only inside its block
    r = derive_rule("sparse_transformer:stride=8,mode=fixed,c=1", heads=1, layer=0, seed=0, probe=128, horizon=512)
    assert r.mode == "graph" and r.capacity(512) == 512 // 8 + 7
    assert [x.mode for x in cache_rules(tiny("local_global:window=5,every=2"))] == ["window", "full"]


@pytest.mark.parametrize("spec", ["sink_window:window=6,sinks=3", "sparse_transformer:stride=8,mode=fixed"])
def test_a_cache_that_keeps_every_key_gives_the_same_logits(spec: str) -> None:
    from sparsegraph.experiments.models.decoding import DecodingCache, _prefill, _step

    m = tiny(spec)
    prompt = torch.randint(0, 19, (1, 10), generator=torch.Generator().manual_seed(5))
    caches = [DecodingCache(m, 1, 60), DecodingCache(m, 1, 60, keep_all=True)]
    outs = [_prefill(m, prompt, c) for c in caches]
    assert torch.allclose(outs[0], outs[1], atol=1e-6)
    tok = outs[0].argmax(-1)
    for _ in range(40):
        a, b = (_step(m, tok, c) for c in caches)
        assert torch.allclose(a, b, atol=1e-5)
        tok = a.argmax(-1)
    assert caches[1].capacity == [60, 60] and caches[0].capacity[0] < 60
