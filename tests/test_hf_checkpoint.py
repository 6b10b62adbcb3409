"""Pretrained Hugging Face encoders in sparsegraph's own Encoder (sparsegraph.hf.load_encoder),
and the bigbird_hf pattern against Hugging Face's own random-block choice. Tiny randomly
initialised checkpoints saved to temporary directories; nothing is downloaded."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may touch the network

from transformers import (BertConfig, BertModel, BigBirdConfig, BigBirdModel, RobertaConfig,  # noqa: E402
                          RobertaModel)
from transformers.models.big_bird.modeling_big_bird import BigBirdBlockSparseAttention  # noqa: E402

from sparsegraph import patterns  # noqa: E402
from sparsegraph.hf import load_encoder, read_checkpoint  # noqa: E402
from sparsegraph.patterns.bigbird_hf import hf_random_blocks  # noqa: E402

TOL = 1e-4


def _bigbird(attention_type: str, path: Path, layers: int = 2) -> BigBirdModel:
    torch.manual_seed(0)
    cfg = BigBirdConfig(vocab_size=80, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, block_size=16, num_random_blocks=2,
                        attention_type=attention_type, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BigBirdModel(cfg)
    model.save_pretrained(path)
    return model


def _ids(n: int, batch: int = 2, pad_from: int | None = None, pad_id: int = 0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 80, (batch, n), generator=g)
    mask = torch.ones_like(ids)
    if pad_from is not None:
        mask[1, pad_from:] = 0
        ids[1, pad_from:] = pad_id
    return ids, mask


def _compare(ours, theirs, mask) -> tuple[float, float]:
    keep = mask.bool()
    with torch.no_grad():
        return (float((ours.hidden - theirs.last_hidden_state)[keep].abs().max()),
                float((ours.pooled - theirs.pooler_output).abs().max()))


def test_bigbird_original_full_equals_hf(tmp_path: Path) -> None:
    hf = _bigbird("original_full", tmp_path).eval()
    enc = load_encoder(tmp_path).eval()
    assert enc.config.attention.pattern == "full" and enc.config.norm == "post"
    assert enc.config.activation == "gelu_tanh" and enc.config.pooling == "first"
    ids, mask = _ids(70, pad_from=60)
    with torch.no_grad():
        err_h, err_p = _compare(enc(ids, padding_mask=mask == 0), hf(input_ids=ids, attention_mask=mask), mask)
    print(f"PARITY bigbird original_full: hidden {err_h:.2e}, pooled {err_p:.2e}")
    assert err_h <= TOL and err_p <= TOL


def test_bigbird_block_sparse_train_mode_equals_hf(tmp_path: Path) -> None:
    """Hugging Face in train mode (dropout 0) draws its random blocks with np.random.seed(layer);
    bigbird_hf draws the same ones, so the outputs (and the gradients) agree."""
    hf = _bigbird("block_sparse", tmp_path).train()
    enc = load_encoder(tmp_path).train()
    assert enc.config.attention.pattern == "bigbird_hf:block=16,random=2,max_len=512"
    assert enc.config.attention.block_size == 16
    ids, mask = _ids(250, pad_from=230)  # Hugging Face pads 250 -> 256 (16 blocks > 2*2+5)
    out_hf = hf(input_ids=ids, attention_mask=mask)
    out = enc(ids, padding_mask=mask == 0)
    err_h, err_p = _compare(out, out_hf, mask)
    w = torch.linspace(-1, 1, 32)
    ((out_hf.last_hidden_state * w)[mask.bool()].sum()).backward()
    ((out.hidden * w)[mask.bool()].sum()).backward()
    g_hf = hf.encoder.layer[0].attention.self.query.weight.grad
    g = enc.layers[0].attn.qkv.weight.grad[:32]
    err_g = float((g - g_hf).abs().max())
    print(f"PARITY bigbird block_sparse (train, dropout 0): hidden {err_h:.2e}, pooled {err_p:.2e}, "
          f"query grad {err_g:.2e}")
    assert err_h <= TOL and err_p <= TOL and err_g <= TOL
    assert 0.1 < float(g_hf.abs().max()) < 100, float(g_hf.abs().max())
    # The eval-mode quirk: Hugging Face replaces the random blocks by block 0, so its eval output
    # differs from its train output; sparsegraph evaluates on the graph it trained on.
    hf.eval()
    enc.eval()
    with torch.no_grad():
        hf_eval = hf(input_ids=ids, attention_mask=mask).last_hidden_state
        ours_eval = enc(ids, padding_mask=mask == 0).hidden
    keep = mask.bool()
    assert float((hf_eval - out_hf.last_hidden_state.detach())[keep].abs().max()) > 1e-3
    assert float((ours_eval - out_hf.last_hidden_state.detach())[keep].abs().max()) <= TOL


def test_bigbird_eval_quirk_is_block_zero_counted_again(tmp_path: Path) -> None:
    """In eval mode Hugging Face's block-sparse attention equals a softmax over window + globals
    in which query blocks 1 .. nb-2 count the keys of block 0 (1 + random) times: the documented
    quirk, checked against a float64 reference on one layer's captured input."""
    hf = _bigbird("block_sparse", tmp_path, layers=1).eval()
    att = hf.encoder.layer[0].attention.self
    seen = {}
    att.register_forward_hook(lambda m, args, out: seen.update(h=args[0], out=out[0]))
    ids, mask = _ids(256, batch=1)
    with torch.no_grad():
        hf(input_ids=ids, attention_mask=mask)
    h = seen["h"][0].detach().double()
    n, B, r, H = 256, 16, 2, 2
    nb = n // B
    heads = []
    for lin in (att.query, att.key, att.value):
        heads.append((h @ lin.weight.double().T + lin.bias.double()).view(n, H, -1).transpose(0, 1))
    q, k, v = (t.detach() for t in heads)
    graph = patterns.build(f"bigbird_hf:block={B},random=0", n).to_dense(0)  # window + globals only
    bias = torch.zeros(n, n, dtype=torch.float64)
    bias[B:(nb - 1) * B, :B] = math.log(1 + r)
    scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]) + bias
    scores = scores.masked_fill(~torch.from_numpy(graph), float("-inf"))
    want = (scores.softmax(-1) @ v).transpose(0, 1).reshape(n, -1)
    assert float((want - seen["out"][0].double()).abs().max()) <= 1e-5


@pytest.mark.parametrize("n,block,r,heads,layer", [
    (256, 16, 2, 2, 0), (256, 16, 2, 3, 5), (160, 16, 1, 2, 1), (128, 16, 1, 2, 0),  # plans of 2 regions
    (512, 32, 3, 4, 2), (4096, 64, 3, 2, 1), (3072, 64, 3, 1, 0),  # ... and the legacy table
])
def test_bigbird_hf_random_blocks_equal_hugging_faces(n: int, block: int, r: int, heads: int, layer: int) -> None:
    cfg = BigBirdConfig(hidden_size=32 * heads, num_attention_heads=heads, block_size=block, num_random_blocks=r,
                        max_position_embeddings=4096)
    m = BigBirdBlockSparseAttention(cfg, seed=layer).train()
    np.random.seed(layer)
    nb = n // block
    if n in (1024, 3072, 4096):
        want = [m._bigbird_block_rand_mask(4096, 4096, block, block, r, last_idx=1024)[: nb - 2] for _ in range(heads)]
    else:
        plan, plan_r = m._get_rand_attn_plan(n, block, r)
        want = m._bigbird_block_rand_mask_with_head(from_seq_length=n, to_seq_length=n, from_block_size=block,
                                                    to_block_size=block, num_heads=heads, plan_from_length=plan,
                                                    plan_num_rand_blocks=plan_r)
    got = hf_random_blocks(n, block, r, heads, layer, seed=0, max_len=4096)
    assert np.array_equal(got, np.stack(want))
    g = patterns.build(f"bigbird_hf:block={block},random={r}", n, heads=heads, layer=layer)
    dense = g.to_dense()[:, ::block, ::block]  # block level
    for h in range(heads):
        for i in range(1, nb - 1):
            expect = {0, nb - 1, i - 1, i, i + 1} | set(got[h, i - 1].tolist())
            assert set(np.flatnonzero(dense[h, i]).tolist()) == expect
        assert dense[h, 0].all() and dense[h, -1].all()


def test_bigbird_hf_pattern_refuses_what_no_graph_expresses() -> None:
    with pytest.raises(ValueError, match=r"counts twice in the softmax"):
        patterns.build("bigbird_hf:block=64,random=3", 1024, heads=2, layer=0)
    g = patterns.build("bigbird_hf:block=64,random=3,strict=false", 1024, heads=2, layer=0)
    assert g.heads == 2
    with pytest.raises(ValueError, match=r"needs more than 2 \* random \+ 5 = 9 blocks, got n/block = 8"):
        patterns.build("bigbird_hf:block=16,random=2", 128)
    with pytest.raises(ValueError, match=r"multiple of block"):
        patterns.build("bigbird_hf:block=16,random=2", 250)
    other = patterns.build("bigbird_hf:block=16,random=2", 256, heads=2, seed=7)
    assert other != patterns.build("bigbird_hf:block=16,random=2", 256, heads=2, seed=0)


def test_bert_with_token_types_equals_hf(tmp_path: Path) -> None:
    torch.manual_seed(0)
    hf = BertModel(BertConfig(vocab_size=80, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=64, max_position_embeddings=64)).eval()
    hf.save_pretrained(tmp_path)
    enc = load_encoder(tmp_path, block_size=16).eval()
    assert enc.config.type_vocab_size == 2 and enc.config.activation == "gelu"
    ids, mask = _ids(50, pad_from=41)
    types = torch.zeros_like(ids)
    types[:, 20:] = 1
    with torch.no_grad():
        err_h, err_p = _compare(enc(ids, padding_mask=mask == 0, token_type_ids=types),
                                hf(input_ids=ids, attention_mask=mask, token_type_ids=types), mask)
    print(f"PARITY bert (token types): hidden {err_h:.2e}, pooled {err_p:.2e}")
    assert err_h <= TOL and err_p <= TOL


def test_roberta_bin_checkpoint_and_longformer_extension(tmp_path: Path) -> None:
    """A .bin checkpoint (read with weights_only=True); RoBERTa's positions start at pad_id + 1;
    a 4x longer max_len repeats the table (Longformer) and leaves short inputs unchanged."""
    torch.manual_seed(0)
    cfg = RobertaConfig(vocab_size=80, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=66, pad_token_id=1)
    hf = RobertaModel(cfg).eval()
    prefixed = {"roberta." + k: v for k, v in hf.state_dict().items()}  # as RobertaForMaskedLM saves it
    torch.save(prefixed, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps(cfg.to_dict()))
    ck = read_checkpoint(tmp_path)
    assert ck.position_offset == 2 and ck.model_fields["max_len"] == 64 and ck.model_fields["pad_id"] == 1
    ids, mask = _ids(64, pad_from=50, pad_id=1)
    with torch.no_grad():
        want = hf(input_ids=ids, attention_mask=mask)
        short = load_encoder(tmp_path, block_size=16).eval()
        err_h, err_p = _compare(short(ids, padding_mask=mask == 0), want, mask)
        long = load_encoder(tmp_path, block_size=16, max_len=256,
                            attention={"pattern": "sliding_window:window=17|global_itc:indices=[0]"}).eval()
        table = long.position.weight
        assert torch.equal(table[64:128], table[:64]) and torch.equal(table[192:], table[:64])
        full_long = load_encoder(tmp_path, block_size=16, max_len=256).eval()
        err_long, _ = _compare(full_long(ids, padding_mask=mask == 0), want, mask)
        out = long(torch.randint(5, 80, (1, 250)))
    print(f"PARITY roberta (.bin): hidden {err_h:.2e}, pooled {err_p:.2e}; extended to 256 positions: hidden "
          f"{err_long:.2e}")
    assert err_h <= TOL and err_p <= TOL and err_long <= TOL
    assert out.hidden.shape == (1, 250, 32) and torch.isfinite(out.hidden).all()


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


_SIZES = {"vocab_size": 4, "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 1,
          "intermediate_size": 8, "max_position_embeddings": 8}


def test_a_bin_with_pickled_code_is_refused(tmp_path: Path) -> None:
    torch.save({"embeddings.word_embeddings.weight": torch.zeros(2, 2), "x": _Evil()}, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", **_SIZES}))
    with pytest.raises(ValueError, match=r"cannot be read with torch.load\(weights_only=True\)"):
        read_checkpoint(tmp_path)


def test_checkpoint_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"does not exist"):
        read_checkpoint(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"has no config.json"):
        read_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match=r"model_type is 'gpt2'; sparsegraph.hf converts"):
        read_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    with pytest.raises(ValueError, match=r"lacks the int field\(s\) \['vocab_size', 'num_hidden_layers'"):
        read_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", **_SIZES, "hidden_act": "relu"}))
    with pytest.raises(ValueError, match=r"hidden_act='relu' is not supported"):
        read_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", **_SIZES}))
    with pytest.raises(FileNotFoundError, match=r"no model.safetensors"):
        read_checkpoint(tmp_path)
    torch.save({"bert.embeddings.word_embeddings.weight": torch.zeros(4, 8)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"weight 'bert.embeddings.position_embeddings.weight' is missing"):
        read_checkpoint(tmp_path)
    with pytest.raises(ValueError, match=r"unknown ModelConfig field\(s\) \['colour'\]"):
        _bigbird("original_full", tmp_path / "bb", layers=1)
        load_encoder(tmp_path / "bb", colour=1)


def test_train_command_pieces(tmp_path: Path) -> None:
    """`--init-from DIR` and `data.tokenizer = "hf:DIR"` (the full run is in test_docs_huggingface)."""
    from sparsegraph.experiments.commands.train import fit_positions, hf_init_state
    from sparsegraph.experiments.text.mlm import load_tokenizer

    with pytest.raises(FileNotFoundError, match=r"a directory without config.json"):
        hf_init_state(str(tmp_path))
    with pytest.raises(ValueError, match=r"needs the directory of a saved Hugging Face tokenizer"):
        load_tokenizer("hf:")
    with pytest.raises(FileNotFoundError, match=r"tokenizer directory .* does not exist"):
        load_tokenizer(f"hf:{tmp_path / 'nope'}")
    _bigbird("original_full", tmp_path / "bb", layers=1)
    state = hf_init_state(str(tmp_path / "bb"))
    assert state["source"] == "huggingface" and state["config"]["model"]["pooling"] == "first"
    assert state["model"]["encoder.position.weight"].shape == (512, 32)
    from sparsegraph.experiments.models import ModelConfig, SequenceClassifier

    fields = {**state["config"]["model"], "max_len": 100}
    model = SequenceClassifier(ModelConfig.from_dict(fields), 2)
    cut = fit_positions(state, model, ("encoder.position.weight",))
    assert torch.equal(cut["model"]["encoder.position.weight"], state["model"]["encoder.position.weight"][:100])
