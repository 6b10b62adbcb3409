"""Model configs: validation names the bad field; dict round trips; the dense layout shortcut."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparsegraph import patterns
from sparsegraph.experiments.models import AttentionConfig, ModelConfig, Seq2SeqConfig, dense_layout
from sparsegraph.layout import BLOCK_SIZES, compile as compile_layout

# (field, bad value) pairs: each must raise ValueError naming "ModelConfig.<field>".
BAD_MODEL = [
    ("vocab_size", 0), ("vocab_size", 2.5), ("vocab_size", True), ("d_model", -4),
    ("n_layers", 0), ("n_heads", 0), ("n_heads", 3), ("d_ff", 0), ("dropout", 1.0),
    ("dropout", -0.1), ("dropout", float("nan")), ("dropout", "0.1"), ("max_len", 0),
    ("position", "relative"), ("pooling", "max"), ("pad_id", -1),
    ("pad_id", 50), ("gradient_checkpointing", 1), ("init_std", 0.0), ("layer_norm_eps", 0),
    ("attention", "full"),
]
BAD_ATTENTION = [
    ("pattern", ""), ("pattern", "no_such_pattern"), ("pattern", 7), ("pattern", []),
    ("pattern", ["full", 3]), ("pattern", "sliding_window"), ("block_size", 48),
    ("block_size", 0), ("block_size", True), ("graph_seed", -1), ("graph_seed", 1.5),
    ("backend", "cuda"),
]


@pytest.mark.parametrize("field,value", BAD_MODEL)
def test_bad_model_field_names_field(field, value):
    kwargs = {"vocab_size": 50, "d_model": 32, "n_heads": 2}
    kwargs[field] = value
    with pytest.raises(ValueError, match=rf"ModelConfig\.{field}"):
        ModelConfig(**kwargs)


@pytest.mark.parametrize("field,value", BAD_ATTENTION)
def test_bad_attention_field_names_field(field, value):
    with pytest.raises(ValueError, match=rf"AttentionConfig\.{field}"):
        AttentionConfig(**{field: value})


def test_cross_field_rules():
    with pytest.raises(ValueError, match="pooling='global'"):
        ModelConfig(vocab_size=10, pooling="global")
    with pytest.raises(ValueError, match="one per layer"):
        ModelConfig(vocab_size=10, n_layers=3, attention=AttentionConfig(pattern=["full", "full"]))
    with pytest.raises(ValueError, match="rotary"):
        ModelConfig(vocab_size=10, d_model=24, n_heads=8, position="rotary")
    with pytest.raises(ValueError, match=r"ModelConfig\.grid_width must be the image width"):
        ModelConfig(vocab_size=10, position="rotary_2d")
    with pytest.raises(ValueError, match="divisible by 4"):
        ModelConfig(vocab_size=10, d_model=36, n_heads=6, position="rotary_2d", grid_width=32)
    with pytest.raises(ValueError, match=r"grid_width must be 0: only position='rotary_2d'"):
        ModelConfig(vocab_size=10, position="rotary", grid_width=32)
    with pytest.raises(ValueError, match=r"Seq2SeqConfig\.decoder_layers"):
        Seq2SeqConfig(encoder=ModelConfig(vocab_size=10), decoder_layers=0)
    with pytest.raises(ValueError, match=r"Seq2SeqConfig\.encoder"):
        Seq2SeqConfig(encoder=3)


def test_unknown_key_is_an_error():
    with pytest.raises(ValueError, match="no field"):
        ModelConfig.from_dict({"vocab_size": 10, "d_modle": 32})
    with pytest.raises(ValueError, match="no field"):
        ModelConfig.from_dict({"vocab_size": 10, "attention": {"patern": "full"}})
    with pytest.raises(ValueError, match="no field"):
        Seq2SeqConfig.from_dict({"encoder": {"vocab_size": 10}, "layers": 2})


@given(
    d_heads=st.sampled_from([(32, 2), (64, 4), (48, 3)]),
    layers=st.integers(1, 3),
    per_layer=st.booleans(),
    pooling=st.sampled_from(["cls", "mean", "global"]),
    position=st.sampled_from(["learned", "sinusoidal", "rotary", "rotary_2d"]),
    seed=st.integers(0, 2**31),
    block=st.sampled_from(BLOCK_SIZES),
)
def test_dict_round_trip(d_heads, layers, per_layer, pooling, position, seed, block):
    d, h = d_heads
    spec = "global_etc:g=2|sliding_window:window=3" if pooling == "global" else "full"
    pattern = [spec] * layers if per_layer else spec
    cfg = ModelConfig(
        vocab_size=30, d_model=d, n_heads=h, n_layers=layers, pooling=pooling, position=position,
        grid_width=28 if position == "rotary_2d" else 0,
        attention=AttentionConfig(pattern=pattern, graph_seed=seed, block_size=block),
    )
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    s2s = Seq2SeqConfig(encoder=cfg, decoder_layers=layers)
    assert Seq2SeqConfig.from_dict(s2s.to_dict()) == s2s
    assert all(cfg.layer_pattern(i) == spec for i in range(layers))
    assert cfg.global_tokens == (2 if pooling == "global" else 0)


def test_configs_are_frozen():
    cfg = ModelConfig(vocab_size=10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.d_model = 8  # type: ignore[misc]


@given(n=st.integers(1, 400), block=st.sampled_from(BLOCK_SIZES))
def test_dense_layout_equals_compiled_full_graph(n, block):
    # The shortcut must be the very layout the compiler makes (same hash, same graph).
    fast = dense_layout(n, block)
    slow = compile_layout(patterns.build("full", n), block)
    assert fast.hash == slow.hash
    assert fast.to_graph() == slow.to_graph()
