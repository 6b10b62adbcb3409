"""The sparse encoder and its heads: learning, graphs in the model's state, padding, ETC, errors."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsegraph import patterns
from sparsegraph.experiments.models import (
    AttentionConfig,
    DualEncoderClassifier,
    Encoder,
    MaskedLM,
    ModelConfig,
    RotaryEmbedding,
    SequenceClassifier,
)
from sparsegraph.experiments.models.attention import GRID_ROTARY_BASE

BIGBIRD = "bigbird:block=16,window=3,random=1,global=1"
WINDOW = "sliding_window:window=5"
ETC = "global_etc:g=2|sliding_window:window=3"
ITC_CLS = "sliding_window:window=5|global_itc:indices=[0]"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny(pattern: str | list[str] = "full", backend: str = "reference", seed: int = 0, **kw) -> ModelConfig:
    """A model small enough for the reference backend (head_dim 16, block 16)."""
    base = dict(vocab_size=24, d_model=32, n_heads=2, n_layers=2, d_ff=64, dropout=0.0, max_len=128)
    base.update(kw)
    attn = AttentionConfig(pattern=pattern, block_size=16, backend=backend, graph_seed=seed)
    return ModelConfig(attention=attn, **base)


def ids(batch: int, length: int, seed: int = 0, vocab: int = 24) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, vocab, (batch, length), generator=g)  # 0 is the pad id


# ---------------------------------------------------------------------- learning
@pytest.mark.parametrize("backend", ["torch", "reference", "dense", "auto"])
def test_tiny_model_overfits_tiny_batch(backend):
    torch.manual_seed(0)
    model = SequenceClassifier(tiny(BIGBIRD, backend, pooling="mean"), num_classes=3)
    x = ids(6, 40, seed=1)
    x[3, 33:] = 0  # some padding
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(100):
        loss = F.cross_entropy(model(x), y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert F.cross_entropy(logits, y).item() < 0.05 < first
    assert (logits.argmax(-1) == y).all()


def test_triton_backend_model_matches_reference():
    # The Triton interpreter takes seconds per step, too slow to overfit in a test; one forward and
    # backward at a very tiny size must equal the reference backend's, so training is the same.
    torch.manual_seed(0)
    ref = SequenceClassifier(tiny(BIGBIRD, "reference", n_layers=1, pooling="mean"), num_classes=2)
    tri = SequenceClassifier(tiny(BIGBIRD, "triton", n_layers=1, pooling="mean"), num_classes=2)
    tri.load_state_dict(ref.state_dict())
    x = ids(2, 28, seed=3)
    x[1, 20:] = 0  # padding
    y = torch.tensor([0, 1])
    outs = []
    for m in (ref, tri):
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        outs.append((loss.detach(), {k: p.grad.clone() for k, p in m.named_parameters()}))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-5)
    for k in outs[0][1]:
        torch.testing.assert_close(outs[0][1][k], outs[1][1][k], rtol=1e-4, atol=1e-5, msg=k)


@pytest.mark.parametrize("pattern,g", [(BIGBIRD, 0), (ETC, 2)])
def test_gradient_checkpointing_gives_same_gradients(pattern, g):
    # Dropout on: checkpointing must replay the same dropout masks in the recomputation.
    grads = []
    for ckpt in (False, True):
        torch.manual_seed(0)
        cfg = tiny(pattern, dropout=0.2, gradient_checkpointing=ckpt,
                   pooling="global" if g else "mean")
        model = SequenceClassifier(cfg, num_classes=2)
        model.train()
        x = ids(3, 37, seed=2)
        x[2, 30:] = 0
        torch.manual_seed(1)
        loss = F.cross_entropy(model(x), torch.tensor([0, 1, 1]))
        loss.backward()
        grads.append({k: p.grad.clone() for k, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for k in grads[0]:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=0, atol=1e-6, msg=k)


# ---------------------------------------------------------------------- graphs in the state
def _layer_graph(model: Encoder, length: int, layer: int):
    return model.graphs(length)[layer].to_graph()


@given(seed=st.integers(0, 2**20), length=st.integers(17, 70))
@settings(max_examples=8)
def test_model_runs_exactly_the_patterns_graphs(seed, length):
    specs = [BIGBIRD, ITC_CLS]
    model = Encoder(tiny(specs, seed=seed))
    n = model.padded_length(length)
    for i, spec in enumerate(specs):
        expected = patterns.build(spec, n, heads=2, layer=i, seed=seed)
        assert _layer_graph(model, length, i) == expected


def test_equal_layer_graphs_share_one_device_layout():
    # A deterministic pattern builds the same graph in every layer: one copy of its layout (and of
    # anything a backend caches on it), not one per layer.
    model = Encoder(tiny(ITC_CLS, n_layers=3))
    n = model.padded_length(30)
    dev = torch.device("cpu")
    shared = {id(layer.attn.cache.device_layout(n, dev)) for layer in model.layers}
    assert len(shared) == 1
    mixed = Encoder(tiny([ITC_CLS, WINDOW, ITC_CLS], n_layers=3))
    ids_ = [id(layer.attn.cache.device_layout(n, dev)) for layer in mixed.layers]
    assert ids_[0] == ids_[2] != ids_[1]


def test_train_and_eval_use_the_same_graph():
    torch.manual_seed(0)
    model = SequenceClassifier(tiny(BIGBIRD, pooling="mean"), num_classes=2)
    x = ids(2, 45, seed=4)
    model.train()
    out_train = model(x)
    hashes_train = model.encoder.layout_hashes()
    graphs_train = [_layer_graph(model.encoder, 45, i) for i in range(2)]
    model.eval()
    out_eval = model(x)
    assert model.encoder.layout_hashes() == hashes_train
    assert [_layer_graph(model.encoder, 45, i) for i in range(2)] == graphs_train
    # dropout=0: the modes differ in nothing, in particular not in the random blocks
    torch.testing.assert_close(out_train, out_eval, rtol=0, atol=0)


def _roundtrip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_save_and_load_keep_the_graph():
    torch.manual_seed(0)
    cfg = tiny(BIGBIRD, seed=7, pooling="mean")
    model = SequenceClassifier(cfg, num_classes=2).eval()
    x1, x2 = ids(2, 30, seed=5), ids(2, 60, seed=6)
    y1, y2 = model(x1), model(x2)
    state = _roundtrip(model.state_dict())
    assert state["encoder.layers.1.attn._extra_state"]["layouts"]  # hashes travel with weights

    torch.manual_seed(1)
    fresh = SequenceClassifier(cfg, num_classes=2).eval()
    fresh.load_state_dict(state)
    assert fresh.encoder.layout_hashes() == model.encoder.layout_hashes()  # rebuilt on load
    torch.testing.assert_close(fresh(x1), y1, rtol=0, atol=0)
    torch.testing.assert_close(fresh(x2), y2, rtol=0, atol=0)

    other_seed = SequenceClassifier(tiny(BIGBIRD, seed=8, pooling="mean"), num_classes=2)
    with pytest.raises(ValueError, match="graph_seed"):
        other_seed.load_state_dict(state)
    other_pattern = SequenceClassifier(tiny(WINDOW, seed=7, pooling="mean"), num_classes=2)
    with pytest.raises(ValueError, match="pattern"):
        other_pattern.load_state_dict(state)

    # a graph that no longer matches the recorded hash (e.g. the pattern's definition changed)
    tampered = dict(state)
    extra = dict(tampered["encoder.layers.0.attn._extra_state"])
    extra["layouts"] = {k: "0" * 64 for k in extra["layouts"]}
    tampered["encoder.layers.0.attn._extra_state"] = extra
    with pytest.raises(ValueError, match="different graph"):
        SequenceClassifier(cfg, num_classes=2).load_state_dict(tampered)


def test_pattern_that_cannot_be_built_raises_instead_of_falling_back():
    # 4 global blocks do not fit in 2 blocks: HF BigBird would switch to full attention here.
    model = Encoder(tiny("bigbird:block=16,window=3,random=1,global=4"))
    with pytest.raises(ValueError, match="cannot be built .* does not fall back"):
        model(ids(1, 20))
    # the pattern's block (64) does not divide the padded length (32)
    model = Encoder(tiny("bigbird:block=64,window=3,random=1,global=1"))
    with pytest.raises(ValueError, match="cannot be built"):
        model(ids(1, 20))


def test_global_token_count_is_derived_from_the_pattern():
    assert tiny(ETC).global_tokens == 2 and tiny(WINDOW).global_tokens == 0
    assert tiny("bigbird:block=16,window=3,random=1,global=1,mode=etc").global_tokens == 16
    assert Encoder(tiny(ETC)).globals.shape == (2, 32)
    with pytest.raises(ValueError, match="same number of ETC global tokens"):
        tiny([ETC, WINDOW])
    with pytest.raises(ValueError, match="pooling='global'"):
        tiny(WINDOW, pooling="global")


def test_an_undeclared_pattern_is_counted_on_a_built_graph():
    from sparsegraph import patterns
    from sparsegraph.graph import AttentionGraph

    @patterns.register("test_two_globals_undeclared")
    def two(n: int) -> AttentionGraph:
        return patterns.build("global_etc:g=2|sliding_window:window=3", n)

    try:
        cfg = tiny("test_two_globals_undeclared", pooling="global")
        assert cfg.global_tokens == 2
        out = Encoder(cfg).eval()(ids(2, 20))
        assert out.global_hidden.shape == (2, 2, 32)
    finally:
        patterns.unregister("test_two_globals_undeclared")


# ---------------------------------------------------------------------- padding
@given(
    length=st.integers(1, 60),
    extra=st.integers(1, 40),
    position=st.sampled_from(["learned", "sinusoidal", "rotary"]),
    etc=st.booleans(),
    seed=st.integers(0, 1000),
)
@settings(max_examples=12)
def test_appended_padding_changes_no_real_output(length, extra, position, etc, seed):
    # The window (+ global) graphs restricted to the first positions do not depend on n, so any
    # amount of padding must leave every real token's output and the pooled vector unchanged.
    torch.manual_seed(seed)
    cfg = tiny(ETC if etc else ITC_CLS, position=position,
               pooling="global" if etc else "cls")
    model = Encoder(cfg).eval()
    x = ids(1, length, seed=seed)
    padded = torch.cat([x, torch.zeros(1, extra, dtype=x.dtype)], dim=1)
    a, b = model(x), model(padded)
    torch.testing.assert_close(b.hidden[:, :length], a.hidden, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b.pooled, a.pooled, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b.global_hidden, a.global_hidden, rtol=1e-5, atol=1e-5)


@given(length=st.integers(1, 47), partner=st.integers(0, 47), seed=st.integers(0, 1000),
       pooling=st.sampled_from(["cls", "mean"]))
@settings(max_examples=10)
def test_padding_within_a_batch_is_honoured(length, partner, seed, pooling):
    # Any pattern, random ones included: an example padded inside a batch (by the pad id, or by
    # an explicit mask whatever the padded tokens are) equals the example alone, when the batch
    # keeps its block-padded length (the graph is built for that length).
    torch.manual_seed(seed)
    model = Encoder(tiny(BIGBIRD, pooling=pooling, seed=seed)).eval()
    n = model.padded_length(length)
    width = max(length, min(partner, n - 1))  # n - 1 tokens + CLS fill the blocks
    assert model.padded_length(width) == n
    x = ids(1, length, seed=seed)
    other = ids(1, width, seed=seed + 1)
    batch = torch.cat([torch.cat([x, torch.zeros(1, width - length, dtype=x.dtype)], 1), other])
    alone, together = model(x), model(batch)
    torch.testing.assert_close(together.hidden[:1, :length], alone.hidden, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(together.pooled[:1], alone.pooled, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(together.hidden[1:], model(other).hidden, rtol=1e-5, atol=1e-5)
    junk = batch.clone()
    junk[0, length:] = 5
    mask = torch.zeros_like(batch, dtype=torch.bool)
    mask[0, length:] = True
    torch.testing.assert_close(model(junk, mask).pooled, together.pooled, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------- ETC
@given(pos=st.integers(20, 39), token=st.integers(1, 23), seed=st.integers(0, 1000))
@settings(max_examples=8)
def test_etc_global_tokens_see_far_tokens(pos, token, seed):
    torch.manual_seed(seed)
    x = ids(2, 40, seed=seed)
    y = x.clone()
    y[:, pos] = token if x[0, pos] != token else token % 23 + 1  # change a token far from 0

    one = Encoder(tiny(ETC, n_layers=1, pooling="global")).eval()
    a, b = one(x), one(y)
    assert a.hidden.shape == (2, 40, 32) and a.global_hidden.shape == (2, 2, 32)
    assert a.states.shape == (2, 2 + one.padded_length(40), 32)
    assert a.token_offset == 2  # no CLS with global pooling
    assert not torch.allclose(a.global_hidden, b.global_hidden)  # globals attend every token
    # token 0 (window radius 1) only sees tokens 0..1 and the globals, which after one layer
    # still only hold their learned embeddings
    torch.testing.assert_close(a.hidden[:, 0], b.hidden[:, 0], rtol=0, atol=0)

    two = Encoder(tiny(ETC, n_layers=2, pooling="global")).eval()
    assert not torch.allclose(two(x).hidden[:, 0], two(y).hidden[:, 0])  # through the globals

    window_only = Encoder(tiny("sliding_window:window=3", n_layers=2, pooling="mean")).eval()
    torch.testing.assert_close(window_only(x).hidden[:, 0], window_only(y).hidden[:, 0], rtol=0, atol=0)


def test_etc_with_bigbird_etc_mode():
    spec = "bigbird:block=16,window=3,random=1,global=1,mode=etc"
    model = Encoder(tiny(spec, pooling="global")).eval()
    out = model(ids(3, 50))
    assert out.global_hidden.shape == (3, 16, 32)
    assert out.pooled.shape == (3, 32)
    assert torch.isfinite(out.states).all()


# ---------------------------------------------------------------------- heads and inputs
def test_mlm_head_ties_the_embeddings():
    model = MaskedLM(tiny(ITC_CLS))
    assert model.output_embedding is model.encoder.token.weight
    x = ids(2, 33)
    logits = model(x)
    assert logits.shape == (2, 33, 24)
    # the output projection's gradient reaches the (shared) embedding matrix, even for token ids
    # absent from the input
    F.cross_entropy(logits.reshape(-1, 24), torch.full((66,), 0)).backward()
    assert model.encoder.token.weight.grad[0].abs().sum() > 0
    assert 0 not in x


def test_dual_encoder_shares_the_encoder_and_batches_the_pair():
    torch.manual_seed(0)
    model = DualEncoderClassifier(tiny(ITC_CLS, pooling="cls"), num_classes=2).eval()
    a, b = ids(3, 25, seed=1), ids(3, 25, seed=2)
    b[:, 20:] = 0
    u, v = model.encode_pair(a, b)
    torch.testing.assert_close(u, model.encoder(a).pooled, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(v, model.encoder(b).pooled, rtol=1e-5, atol=1e-6)
    feats = torch.cat([u, v, u * v, u - v], dim=-1)
    torch.testing.assert_close(model(a, b), model.head(feats))
    assert model(a, ids(3, 11, seed=3)).shape == (3, 2)  # different lengths: two encoder calls


@given(x=st.lists(st.floats(-3, 3), min_size=16, max_size=16), p=st.integers(0, 500),
       s=st.integers(0, 500), shift=st.integers(-200, 200))
@settings(max_examples=20)
def test_rotary_scores_depend_on_relative_position_only(x, p, s, shift):
    # RoFormer's property: <R(p) q, R(s) k> = <R(p + t) q, R(s + t) k>.
    rot = RotaryEmbedding(16)
    q = torch.tensor(x, dtype=torch.float64)
    k = q.flip(0)

    def score(pq: int, pk: int) -> torch.Tensor:
        cq, sq = rot.angles(torch.tensor([pq]), torch.float64)
        ck, sk = rot.angles(torch.tensor([pk]), torch.float64)
        return (rot.rotate(q[None], cq, sq) * rot.rotate(k[None], ck, sk)).sum()

    t = max(shift, -min(p, s))
    torch.testing.assert_close(score(p, s), score(p + t, s + t), rtol=1e-7, atol=1e-7)


@given(x=st.lists(st.floats(-3, 3), min_size=16, max_size=16),
       p=st.tuples(st.integers(0, 60), st.integers(0, 60)),
       s=st.tuples(st.integers(0, 60), st.integers(0, 60)),
       shift=st.tuples(st.integers(-30, 30), st.integers(-30, 30)))
@settings(max_examples=20)
def test_grid_rotary_scores_depend_on_the_2d_offset_only(x, p, s, shift):
    # Axial 2-D rotary: <R(r, c) q, R(r', c') k> depends on (r - r', c - c') only, so a shift of
    # both pixels by the same (dr, dc) leaves the score; and moving one pixel a row down is not
    # the same as moving it one column on (the 1-D sequence would confuse them at width 1).
    rot = RotaryEmbedding(16, GRID_ROTARY_BASE)
    q = torch.tensor(x, dtype=torch.float64)
    k = q.flip(0)

    def score(a: tuple[int, int], b: tuple[int, int]) -> torch.Tensor:
        ca, sa = rot.grid_angles(torch.tensor([a[0]]), torch.tensor([a[1]]), torch.float64)
        cb, sb = rot.grid_angles(torch.tensor([b[0]]), torch.tensor([b[1]]), torch.float64)
        return (rot.rotate(q[None], ca, sa) * rot.rotate(k[None], cb, sb)).sum()

    dr = max(shift[0], -min(p[0], s[0]))
    dc = max(shift[1], -min(p[1], s[1]))
    moved = score((p[0] + dr, p[1] + dc), (s[0] + dr, s[1] + dc))
    torch.testing.assert_close(score(p, s), moved, rtol=1e-7, atol=1e-7)
    # the row pairs turn with the row only, the column pairs with the column only
    c, sn = rot.grid_angles(torch.tensor([3]), torch.tensor([5]), torch.float64)
    c_row, _ = rot.grid_angles(torch.tensor([3]), torch.tensor([0]), torch.float64)
    torch.testing.assert_close(c[0, :4], c_row[0, :4])
    assert torch.all(c_row[0, 4:] == 1.0) and not torch.allclose(c[0, 4:], c_row[0, 4:])


@pytest.mark.parametrize("position", ["rotary", "rotary_2d"])
def test_grid_rotary_encoder_sees_the_image_not_the_sequence(position):
    # Two real pixels (ids 5 and 9), every other position masked as padding, full attention: the
    # outputs depend on the pixels' relative position only. Moved together by (3, 2) in the
    # 8-wide image they must stay the same for both encodings; moved from (0, 0), (0, 1) to
    # (0, 7), (1, 0) (still neighbours in the sequence, no longer in the image) they stay the
    # same for 1-D rotary and must change for 2-D rotary, which sees the image.
    torch.manual_seed(0)
    w = 8
    cfg = tiny(position=position, grid_width=w if position == "rotary_2d" else 0, pooling="mean",
               max_len=64)
    model = Encoder(cfg).eval()

    def outputs(first: tuple[int, int], second: tuple[int, int]) -> torch.Tensor:
        x = torch.full((1, w * w), 3, dtype=torch.long)
        pad = torch.ones(1, w * w, dtype=torch.bool)
        spots = [r * w + c for r, c in (first, second)]
        x[0, spots] = torch.tensor([5, 9])
        pad[0, spots] = False
        return model(x, pad).hidden[0, spots]

    here = outputs((0, 0), (0, 1))
    torch.testing.assert_close(outputs((3, 2), (3, 3)), here, rtol=1e-5, atol=1e-5)
    wrapped = outputs((0, w - 1), (1, 0))
    if position == "rotary":
        torch.testing.assert_close(wrapped, here, rtol=1e-5, atol=1e-5)
    else:
        assert (wrapped - here).abs().max() > 1e-3


def test_bad_inputs_raise_clear_errors():
    model = Encoder(tiny(ITC_CLS, max_len=50))
    with pytest.raises(ValueError, match="vocab_size"):
        model(torch.tensor([[1, 24]]))
    with pytest.raises(ValueError, match="max_len"):
        model(ids(1, 51))
    with pytest.raises(ValueError, match="all padding"):
        model(torch.tensor([[3, 4], [0, 0]]))
    with pytest.raises(TypeError, match="padding_mask"):
        model(ids(1, 5), torch.zeros(1, 5))
    with pytest.raises(ValueError, match="padding_mask"):
        model(ids(1, 5), torch.zeros(1, 6, dtype=torch.bool))
    with pytest.raises(TypeError, match="input_ids"):
        model(torch.rand(1, 5))
    with pytest.raises(ValueError, match="num_classes"):
        SequenceClassifier(tiny(), num_classes=0)


@pytest.mark.parametrize("position", ["learned", "rotary"])
def test_bf16_autocast_runs_and_tracks_float32(position):
    # The trainer's mixed precision: bf16 autocast on CPU. q, k, v must reach the kernel in one
    # dtype (rotary angles are cast to q's), and the result must stay near the float32 one.
    torch.manual_seed(0)
    model = SequenceClassifier(tiny(ETC, "torch", position=position,
                                    pooling="global"), num_classes=2).eval()
    x = ids(2, 40, seed=9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(x)
    assert low.dtype == torch.bfloat16
    low.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    torch.testing.assert_close(low.float(), model(x), rtol=0.05, atol=0.05)


# ---------------------------------------------------------------------- skipping shared padding
@given(real=st.integers(1, 60), extra=st.integers(17, 70), seed=st.integers(0, 1000),
       case=st.sampled_from([(BIGBIRD, "cls"), ("erdos_renyi:degree=6", "mean"), (ETC, "global"),
                             ("full", "cls")]))
@settings(max_examples=12)
def test_skipping_shared_padding_changes_nothing(real, extra, seed, case):
    # A batch whose examples all end early runs on the leading corner of the graph built for the
    # full width: outputs and gradients equal the full computation (random graphs included).
    pattern, pooling = case
    torch.manual_seed(seed)
    model = SequenceClassifier(tiny(pattern, backend="torch", pooling=pooling, seed=seed), 3)
    width = real + extra
    x = ids(3, width, seed=seed)
    x[:, real:] = 0
    x[1, max(1, real // 2):] = 0
    assert model.encoder.padded_length(real) < model.encoder.padded_length(width)

    def run(skip: bool):
        model.zero_grad()
        out = model.encoder(x, skip_padding=skip)
        logits = model.head(out.pooled)
        logits.square().sum().backward()
        return out, logits, {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}

    full, full_logits, full_grads = run(False)
    cut, cut_logits, cut_grads = run(True)
    assert cut.states.shape[1] < full.states.shape[1]  # it did skip
    torch.testing.assert_close(cut_logits, full_logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(cut.hidden, full.hidden[:, :cut.hidden.shape[1]], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cut.global_hidden, full.global_hidden, rtol=1e-5, atol=1e-5)
    assert cut_grads.keys() == full_grads.keys()
    for k in full_grads:
        torch.testing.assert_close(cut_grads[k], full_grads[k], rtol=1e-4, atol=1e-6, msg=k)
    torch.testing.assert_close(model(x), full_logits.detach(), rtol=1e-5, atol=1e-6)  # the classifier skips


def test_layout_corner_is_the_long_graph_cut_not_a_short_graph():
    cfg = tiny("erdos_renyi:degree=6", seed=1)
    cache = Encoder(cfg).layers[0].attn.cache
    long, short = cache.layout(96), cache.layout(32)
    corner = cache.corner(96, 32)
    assert (corner.to_dense() == long.to_dense()[:, :32, :32]).all()
    assert (corner.to_dense() != short.to_dense()).any()  # a random graph drawn at 32 differs
    assert cache.corner(96, 96) is long
    with pytest.raises(ValueError, match="t=97"):
        cache.corner(96, 97)
