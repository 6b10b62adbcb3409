"""sparsegraph.hf.apply: transformers models (tiny, randomly initialised, offline) on graphs.

Parity with transformers' own sdpa attention (hidden states and gradients, fp32, with padding),
locality of windows, a training step, greedy generation with a KV cache against recomputation
without one, transformers' sliding-window cache, grouped-query attention, and the errors.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may touch the network

from transformers import (BertConfig, BertForMaskedLM, BertModel, BigBirdConfig, BigBirdModel,  # noqa: E402
                          DebertaConfig, DebertaModel, LlamaConfig, LlamaForCausalLM, LongformerConfig,
                          LongformerModel, MistralConfig, MistralForCausalLM, ModernBertConfig, ModernBertModel)

import sparsegraph.hf as sghf  # noqa: E402
from sparsegraph import patterns  # noqa: E402

TOL = 1e-4


def _bert(**kw) -> BertModel:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=64, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=96, max_position_embeddings=96, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0, attn_implementation="sdpa", **kw)
    return BertModel(cfg).eval()


def _llama(cls=LlamaForCausalLM, config=LlamaConfig, **kw):
    torch.manual_seed(0)
    cfg = config(vocab_size=64, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=96, max_position_embeddings=256, attn_implementation="sdpa", **kw)
    return cls(cfg).eval()


def _inputs(batch: int = 2, n: int = 37, pad: str = "right", seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 64, (batch, n), generator=g)
    mask = torch.ones(batch, n, dtype=torch.long)
    if pad == "right":
        mask[1, n - 9:] = 0
    elif pad == "left":
        mask[1, :9] = 0
    return ids, mask


def _fwd_bwd(model, ids, mask, causal_lm: bool):
    model.zero_grad()
    out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    hidden = out.hidden_states[-1]
    w = torch.linspace(-1, 1, hidden.shape[-1])
    loss = ((hidden * w) * mask[..., None]).sum() / mask.sum()  # gradients of order 1
    loss.backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    return hidden.detach(), grads


def _max_err(a: dict, b: dict) -> float:
    """Max abs difference over all parameter gradients (asserted: the gradients are of order 1)."""
    assert a.keys() == b.keys()
    scale = max(float(a[k].abs().max()) for k in a)
    assert 0.1 < scale < 100, scale
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_bert_full_equals_sdpa_with_padding(backend: str) -> None:
    ref = _bert()
    ours = copy.deepcopy(ref)
    sghf.apply(ours, "full", block_size=16, backend=backend)
    ids, mask = _inputs(pad="right")
    h0, g0 = _fwd_bwd(ref, ids, mask, False)
    h1, g1 = _fwd_bwd(ours, ids, mask, False)
    keep = mask.bool()
    err_h = float((h0 - h1)[keep].abs().max())
    err_g = _max_err(g0, g1)
    print(f"PARITY bert full ({backend}): hidden {err_h:.2e}, grads {err_g:.2e}")
    assert err_h <= TOL and err_g <= TOL
    assert ours.sparsegraph.calls >= 2


@pytest.mark.parametrize("backend", ["torch", "auto"])
@pytest.mark.parametrize("pad", ["left", "right"])
def test_llama_causal_equals_sdpa_with_padding_and_gqa(backend: str, pad: str) -> None:
    ref = _llama()
    assert ref.config.num_key_value_heads < ref.config.num_attention_heads  # grouped-query attention
    ours = copy.deepcopy(ref)
    sghf.apply(ours, "causal", block_size=16, backend=backend)
    ids, mask = _inputs(pad=pad)
    h0, g0 = _fwd_bwd(ref, ids, mask, True)
    h1, g1 = _fwd_bwd(ours, ids, mask, True)
    keep = mask.bool()
    err_h = float((h0 - h1)[keep].abs().max())
    err_g = _max_err(g0, g1)
    print(f"PARITY llama causal ({backend}, {pad} padding): hidden {err_h:.2e}, grads {err_g:.2e}")
    assert err_h <= TOL and err_g <= TOL
    assert torch.isfinite(h1).all()  # padded queries with no key give zeros, never NaN


def test_mistral_layer_types_and_sliding_cache_equal_sdpa() -> None:
    """Mistral's sliding window (config.sliding_window) mapped from its layer types: the forward
    pass and greedy generation (transformers keeps only sliding_window - 1 keys in its cache) equal
    transformers' sdpa."""
    ref = _llama(MistralForCausalLM, MistralConfig, sliding_window=6)
    ours = copy.deepcopy(ref)
    sghf.apply(ours, "layer_types", block_size=16, backend="torch")
    assert ours.sparsegraph.specs == ["sliding_window:window=6,causal=true"] * 2
    ids, mask = _inputs(n=20, pad="left")
    with torch.no_grad():
        l0 = ref(input_ids=ids, attention_mask=mask).logits
        l1 = ours(input_ids=ids, attention_mask=mask).logits
    err = float((l0 - l1)[mask.bool()].abs().max())
    print(f"PARITY mistral sliding_window=6 (torch): logits {err:.2e}")
    assert err <= TOL
    g0 = ref.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False)
    g1 = ours.generate(ids, attention_mask=mask, max_new_tokens=8, do_sample=False)
    assert torch.equal(g0, g1)
    # a wider window than the cache keeps: named, never silently wrong
    sghf.apply(ours, "sliding_window:window=10,causal=true", block_size=16)
    with pytest.raises(ValueError, match=r"cache dropped keys the graph needs"):
        ours.generate(ids, attention_mask=mask, max_new_tokens=4, do_sample=False)


def test_modernbert_layer_types_equal_sdpa() -> None:
    torch.manual_seed(0)
    cfg = ModernBertConfig(vocab_size=64, hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                           intermediate_size=96, local_attention=8, global_attn_every_n_layers=3,
                           max_position_embeddings=96, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                           cls_token_id=1, sep_token_id=2, attn_implementation="sdpa")
    ref = ModernBertModel(cfg).eval()
    ours = copy.deepcopy(ref)
    sghf.apply(ours, "layer_types", block_size=16, backend="torch")
    # bidirectional window |i - j| <= config.sliding_window (= local_attention / 2)
    assert ours.sparsegraph.specs == ["full", "sliding_window:window=9", "sliding_window:window=9"]
    ids, mask = _inputs(pad="right")
    with torch.no_grad():
        h0 = ref(input_ids=ids, attention_mask=mask).last_hidden_state
        h1 = ours(input_ids=ids, attention_mask=mask).last_hidden_state
    err = float((h0 - h1)[mask.bool()].abs().max())
    print(f"PARITY modernbert layer_types (torch): hidden {err:.2e}")
    assert err <= TOL


def _reach(graph, query: int, layers: int) -> set[int]:
    """Positions whose input can reach ``query``'s output through ``layers`` attention layers."""
    adj = graph.adjacency(0).tocsr()
    seen = {query}
    frontier = {query}
    for _ in range(layers):
        nxt = set()
        for i in frontier:
            nxt.update(adj.indices[adj.indptr[i]: adj.indptr[i + 1]].tolist())
        frontier = nxt - seen
        seen |= nxt
    return seen


@pytest.mark.parametrize("kind", ["bert", "llama"])
def test_window_perturbation_outside_reach_changes_nothing(kind: str) -> None:
    n, q = 48, 30
    if kind == "bert":
        model, spec = _bert(), "sliding_window:window=5"
    else:
        model, spec = _llama(LlamaForCausalLM), "sliding_window:window=4,causal=true"
    sghf.apply(model, spec, block_size=16, backend="torch")
    reach = _reach(patterns.build(spec, n), q, model.config.num_hidden_layers)
    outside = [p for p in range(n) if p not in reach]
    inside = [p for p in sorted(reach) if p != q]
    assert outside and inside
    ids, mask = _inputs(batch=1, n=n, pad="none")

    def hidden(x):
        with torch.no_grad():
            return model(input_ids=x, attention_mask=mask, output_hidden_states=True).hidden_states[-1][0]

    base = hidden(ids)
    far = ids.clone()
    far[0, outside] = (far[0, outside] + 7) % 61 + 3
    assert float((hidden(far)[q] - base[q]).abs().max()) == 0.0
    near = ids.clone()
    assert q - 1 in inside
    near[0, q - 1] = (near[0, q - 1] + 7) % 61 + 3
    assert float((hidden(near)[q] - base[q]).abs().max()) > 1e-4  # the test can fail


def test_training_step_runs_and_layouts_are_cached() -> None:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=64, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
                     max_position_embeddings=96, attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.1)
    model = BertForMaskedLM(cfg).train()
    ad = sghf.apply(model, "bigbird_hf:block=4,random=1|sliding_window:window=9", block_size=16, backend="torch")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ids, mask = _inputs(n=48, pad="right")
    labels = ids.masked_fill(mask == 0, -100)
    before = [p.detach().clone() for p in model.parameters()]
    losses = []
    for _ in range(3):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
        if len(losses) == 1:
            builds = ad.builds
    assert all(np.isfinite(losses))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert ad.builds == builds == 2  # one per layer (random per layer), never again per call
    model(input_ids=ids[:, :40], attention_mask=mask[:, :40])
    assert ad.builds == 4  # a new length is a new layout


def test_dropout_is_refused_in_training_mode() -> None:
    model = _bert()
    model.config.attention_probs_dropout_prob = 0.1
    for m in model.modules():
        if hasattr(m, "dropout") and isinstance(m.dropout, torch.nn.Dropout):
            m.dropout.p = 0.1
    sghf.apply(model, "full", block_size=16)
    ids, mask = _inputs()
    model(input_ids=ids, attention_mask=mask)  # eval: no dropout, fine
    model.train()
    with pytest.raises(ValueError, match=r"attention dropout=0.1"):
        model(input_ids=ids, attention_mask=mask)


def _greedy_recompute(model, ids: torch.Tensor, mask: torch.Tensor, steps: int) -> torch.Tensor:
    out, m = ids, mask
    for _ in range(steps):
        with torch.no_grad():
            logits = model(input_ids=out, attention_mask=m, use_cache=False).logits[:, -1]
        nxt = logits.argmax(-1, keepdim=True)
        out = torch.cat([out, nxt], dim=1)
        m = torch.cat([m, torch.ones_like(nxt)], dim=1)
    return out


def test_generate_with_cache_equals_recomputation_under_a_window() -> None:
    model = _llama()
    ad = sghf.apply(model, "sliding_window:window=5,causal=true", block_size=16, backend="torch")
    ids, mask = _inputs(n=12, pad="left")
    steps = 10
    cached = model.generate(ids, attention_mask=mask, max_new_tokens=steps, do_sample=False, min_new_tokens=steps)
    assert cached.shape[1] == 12 + steps
    again = _greedy_recompute(model, ids, mask, steps)
    assert torch.equal(cached, again)
    # each decode step's layout lists exactly its graph row: query p attends p-4 .. p
    lay = ad.layout(0, heads=4, q_offset=15, q_length=1, kv_offset=0, kv_length=16)
    assert lay.to_dense()[0, 0].nonzero()[0].tolist() == [11, 12, 13, 14, 15]


def test_generate_with_a_static_cache() -> None:
    """generate() prepares the mask before the forward pass for a static cache; its slots past the
    current length are padding. Same tokens as the dynamic cache and as transformers' sdpa."""
    ref = _llama()
    model = copy.deepcopy(ref)
    sghf.apply(model, "causal", block_size=16, backend="torch")
    ids, mask = _inputs(n=12, pad="left")
    kw = dict(attention_mask=mask, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    static = model.generate(ids, cache_implementation="static", **kw)
    assert torch.equal(static, ref.generate(ids, cache_implementation="static", **kw))
    assert torch.equal(static, model.generate(ids, **kw))
    sghf.apply(model, "sliding_window:window=4,causal=true", block_size=16, backend="torch")
    assert torch.equal(model.generate(ids, cache_implementation="static", **kw), model.generate(ids, **kw))


def test_decode_steps_attend_their_graph_rows() -> None:
    """Each decode step's query (position p = past length) attends row p of the graph."""
    model = _llama()
    spec = "sparse_transformer:stride=4"
    ad = sghf.apply(model, spec, block_size=16, backend="torch")
    ids, mask = _inputs(batch=1, n=8, pad="none")
    model.generate(ids, attention_mask=mask, max_new_tokens=3, do_sample=False, min_new_tokens=3)
    g = patterns.build(spec, 10)
    lay = ad.layout(1, heads=4, q_offset=9, q_length=1, kv_offset=0, kv_length=10)
    assert np.array_equal(lay.to_dense()[0, 0], g.to_dense(0)[9])


@pytest.mark.parametrize("cls,config", [
    (BigBirdModel, BigBirdConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=64)),
    (LongformerModel, LongformerConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=64, attention_window=8)),
    (DebertaModel, DebertaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=64)),
])
def test_models_without_the_interface_are_refused_by_name(cls, config) -> None:
    model = cls(config)
    with pytest.raises(TypeError, match=rf"{cls.__name__} cannot run sparsegraph attention: .*AttentionInterface"):
        sghf.apply(model, "full")
    assert not hasattr(model, "sparsegraph")


def test_packed_sequences_are_refused() -> None:
    model = _llama()
    sghf.apply(model, "causal", block_size=16)
    ids = torch.randint(3, 64, (1, 20))
    packed = torch.cat([torch.arange(12), torch.arange(8)])[None]
    with pytest.raises(ValueError, match=r"packed sequences"):
        model(input_ids=ids, position_ids=packed)
    model(input_ids=ids, position_ids=torch.arange(20)[None])  # one sequence: fine


def test_non_causal_pattern_on_a_causal_model_names_an_edge() -> None:
    with pytest.raises(ValueError, match=r"is causal but pattern 'sliding_window:window=8' has the edge \(0, 1\)"):
        sghf.apply(_llama(), "sliding_window:window=8", block_size=16)


def test_bad_arguments_name_the_parameter() -> None:
    model = _bert()
    with pytest.raises(ValueError, match=r"block_size must be one of \[16, 32, 64, 128\], got 48"):
        sghf.apply(model, "full", block_size=48)
    with pytest.raises(ValueError, match=r"seed must be an int >= 0, got -1"):
        sghf.apply(model, "full", seed=-1)
    with pytest.raises(ValueError, match=r"backend must be one of .*got 'fast'"):
        sghf.apply(model, "full", backend="fast")
    with pytest.raises(ValueError, match=r"pattern lists 3 entries, expected one per attention layer \(2\)"):
        sghf.apply(model, ["full"] * 3)
    with pytest.raises(ValueError, match=r"invalid pattern spec 'no_such_pattern'"):
        sghf.apply(model, "no_such_pattern")
    with pytest.raises(TypeError, match=r"pattern must be a spec string or a list of them, got int"):
        sghf.apply(model, 3)
    with pytest.raises(ValueError, match=r"'sliding_attention' but config.sliding_window is None"):
        sghf.apply(model, ["full_attention", "sliding_attention"])
    with pytest.raises(TypeError, match=r"model must be a transformers PreTrainedModel, got Linear"):
        sghf.apply(torch.nn.Linear(2, 2), "full")
    sghf.apply(model, "global_etc:g=2", block_size=16)
    ids, mask = _inputs()
    with pytest.raises(ValueError, match=r"adds 2 ETC global tokens; a Hugging Face model has no extra tokens"):
        model(input_ids=ids, attention_mask=mask)


def test_per_layer_patterns_and_remove() -> None:
    ref = _bert()
    model = copy.deepcopy(ref)
    ad = sghf.apply(model, ["full", "sliding_window:window=3"], block_size=16, backend="torch")
    assert ad.specs == ["full", "sliding_window:window=3"]
    ids, mask = _inputs(pad="none")
    with torch.no_grad():
        sparse = model(input_ids=ids, attention_mask=mask).last_hidden_state
        dense = ref(input_ids=ids, attention_mask=mask).last_hidden_state
    assert float((sparse - dense).abs().max()) > 1e-3  # the window layer changed something
    # switching the implementation behind apply's back is an error, not a silent dense forward
    model.set_attn_implementation("sdpa")
    with pytest.raises(RuntimeError, match=r"attn_implementation is now 'sdpa'"):
        model(input_ids=ids, attention_mask=mask)
    model.set_attn_implementation(sghf.ATTN_NAME)
    sghf.remove(model)
    assert model.config._attn_implementation == "sdpa" and not hasattr(model, "sparsegraph")
    with torch.no_grad():
        back = model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(back, dense)


def test_import_sparsegraph_imports_neither_torch_nor_transformers() -> None:
    import subprocess
    import sys

    code = ("import sys, sparsegraph, sparsegraph.hf; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
