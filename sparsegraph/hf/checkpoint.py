"""Pretrained BERT / RoBERTa / XLM-R / BigBird checkpoints as sparsegraph's own encoder.

``load_encoder(DIR)`` reads a local checkpoint directory (``config.json`` plus
``model.safetensors``, sharded safetensors with their ``model.safetensors.index.json``, or a
``pytorch_model.bin`` read with ``torch.load(..., weights_only=True)``: a checkpoint never runs
pickled code) and returns a :class:`~sparsegraph.experiments.models.Encoder` with the same
weights, on any attention graph. Reading needs torch and safetensors, not transformers.

The encoder options this uses (``ModelConfig``): ``norm="post"``, ``embedding_norm=True``,
``activation`` (``gelu`` or ``gelu_tanh`` for ``gelu_new``), ``pooling="first"``,
``pooler="tanh"`` when the checkpoint has BERT's pooler, ``type_vocab_size``, learned positions.

Weights, per layer ``i`` (Hugging Face names under ``[bert.|roberta.]encoder.layer.i.``):
``attention.self.{query,key,value}`` -> ``layers.i.attn.qkv`` (concatenated in that order),
``attention.output.dense`` -> ``layers.i.attn.out``, ``attention.output.LayerNorm`` ->
``layers.i.ln1``, ``intermediate.dense`` -> ``layers.i.mlp.0``, ``output.dense`` ->
``layers.i.mlp.3``, ``output.LayerNorm`` -> ``layers.i.ln2``; the embeddings' word, token-type
and LayerNorm weights -> ``token``, ``token_type``, ``emb_norm``; ``pooler[.dense]`` ->
``pooler``. Positions: RoBERTa and XLM-R number tokens from ``pad_token_id + 1`` (their first two
rows are never used by right-padded inputs), so their table is cut to rows ``pad_token_id + 1 ..``;
a longer ``max_len`` repeats the table (Longformer's extension, Beltagy et al. 2020, §5) through
``experiments.train.checkpoint.load_model_weights(..., tile=...)``.

Graph: ``full`` (BERT, RoBERTa, BigBird ``original_full``) or, for BigBird ``block_sparse``,
``bigbird_hf:block=B,random=R,max_len=M`` (its exact train-mode graph, see
``patterns/bigbird_hf.py``); any other pattern can be given instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

__all__ = ["HFCheckpoint", "MODEL_TYPES", "read_checkpoint", "load_encoder", "is_checkpoint_dir"]

#: ``config.json`` model types this module converts.
MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "big_bird")

_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
_BLOCKS = (16, 32, 64, 128)
_REQUIRED = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "max_position_embeddings")


@dataclass
class HFCheckpoint:
    """A converted checkpoint.

    Attributes:
        path: the directory.
        model_type: ``config.json``'s ``model_type``.
        hf_config: ``config.json`` as a dict.
        model_fields: ``ModelConfig`` fields (a dict for ``ModelConfig.from_dict``; ``attention`` is
            a dict too).
        state: the encoder's weights under the :class:`Encoder` names (no prefix).
        position_offset: Hugging Face position rows dropped from the front (2 for RoBERTa).
        ignored: checkpoint tensors not used (heads such as ``cls.predictions.*``).
    """

    path: Path
    model_type: str
    hf_config: dict[str, Any]
    model_fields: dict[str, Any]
    state: dict[str, torch.Tensor]
    position_offset: int = 0
    ignored: list[str] = field(default_factory=list)


def is_checkpoint_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a directory with a ``config.json`` (a Hugging Face checkpoint)."""
    p = Path(path)
    return p.is_dir() and (p / "config.json").is_file()


def _read_weights(d: Path) -> dict[str, torch.Tensor]:
    single = d / "model.safetensors"
    index = d / "model.safetensors.index.json"
    binary = d / "pytorch_model.bin"
    if single.is_file() or index.is_file():
        from safetensors.torch import load_file

        if single.is_file():
            return load_file(str(single))
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, torch.Tensor] = {}
        for f in files:
            out.update(load_file(str(d / f)))
        return out
    if binary.is_file():
        try:
            state = torch.load(binary, map_location="cpu", weights_only=True)
        except Exception as e:
            raise ValueError(f"{binary} cannot be read with torch.load(weights_only=True): {e}") from e
        if not isinstance(state, Mapping):
            raise ValueError(f"{binary} holds a {type(state).__name__}, expected a state dict")
        return dict(state)
    raise FileNotFoundError(
        f"{d} has no model.safetensors, model.safetensors.index.json or pytorch_model.bin next to its config.json"
    )


def _normalise(key: str) -> str:
    """Old TensorFlow-converted names: LayerNorm.gamma/beta -> weight/bias."""
    if key.endswith("LayerNorm.gamma"):
        return key[: -len("gamma")] + "weight"
    if key.endswith("LayerNorm.beta"):
        return key[: -len("beta")] + "bias"
    return key


def _get(cfg: Mapping[str, Any], key: str, default: Any = None) -> Any:
    return cfg.get(key, default)


def read_checkpoint(path: str | os.PathLike[str], *, pattern: str | None = None,
                    block_size: int | None = None) -> HFCheckpoint:
    """Read and convert a checkpoint directory (see the module docstring).

    Args:
        path: a directory with ``config.json`` and the weights.
        pattern: the graph of every layer; default ``full``, or ``bigbird_hf:...`` for a BigBird
            ``block_sparse`` checkpoint.
        block_size: the layouts' block size; default 64, or BigBird's ``block_size`` when that is
            16, 32, 64 or 128 (so padding and blocks fall where Hugging Face puts them).

    Raises:
        FileNotFoundError: no directory, ``config.json`` or weights.
        ValueError: an unsupported model type or option (named), or missing / misshapen weights.
    """
    d = Path(path)
    if not d.is_dir():
        raise FileNotFoundError(f"checkpoint directory {str(d)!r} does not exist")
    if not (d / "config.json").is_file():
        raise FileNotFoundError(f"{str(d)!r} has no config.json (expected a Hugging Face checkpoint directory)")
    cfg = json.loads((d / "config.json").read_text())
    mt = cfg.get("model_type")
    if mt not in MODEL_TYPES:
        raise ValueError(f"config.json model_type is {mt!r}; sparsegraph.hf converts {list(MODEL_TYPES)}")
    missing = [k for k in _REQUIRED if not isinstance(cfg.get(k), int) or isinstance(cfg.get(k), bool)]
    if missing:
        raise ValueError(f"{d / 'config.json'} lacks the int field(s) {missing}")
    if _get(cfg, "position_embedding_type", "absolute") != "absolute":
        raise ValueError(
            f"position_embedding_type={cfg['position_embedding_type']!r} is not supported (absolute positions only)"
        )
    if _get(cfg, "is_decoder", False) or _get(cfg, "add_cross_attention", False):
        raise ValueError("decoder checkpoints (is_decoder / add_cross_attention) are not supported; encoders only")
    if mt == "big_bird" and _get(cfg, "rescale_embeddings", False):
        raise ValueError("BigBird rescale_embeddings=true is not supported")
    act = _ACTIVATIONS.get(_get(cfg, "hidden_act", "gelu"))
    if act is None:
        raise ValueError(f"hidden_act={cfg.get('hidden_act')!r} is not supported; expected one of {sorted(_ACTIVATIONS)}")
    if _get(cfg, "embedding_size") not in (None, cfg["hidden_size"]):
        raise ValueError("checkpoints with embedding_size != hidden_size (ELECTRA, ALBERT) are not supported")
    raw = {_normalise(k): v for k, v in _read_weights(d).items()}
    suffix = "embeddings.word_embeddings.weight"
    prefixes = sorted((k[: -len(suffix)] for k in raw if k.endswith(suffix)), key=len)
    if not prefixes:
        raise ValueError(f"{d}: no '{suffix}' among the weights; is this a {mt} encoder checkpoint?")
    pre = prefixes[0]
    used: set[str] = set()

    def take(name: str) -> torch.Tensor:
        key = pre + name
        if key not in raw:
            raise ValueError(f"{d}: weight {key!r} is missing from the checkpoint")
        used.add(key)
        return raw[key].detach().to(torch.float32).clone()

    n_layers = int(cfg["num_hidden_layers"])
    hidden = int(cfg["hidden_size"])
    offset = int(_get(cfg, "pad_token_id", 1)) + 1 if mt in ("roberta", "xlm-roberta") else 0
    state: dict[str, torch.Tensor] = {
        "token.weight": take("embeddings.word_embeddings.weight"),
        "position.weight": take("embeddings.position_embeddings.weight")[offset:],
        "emb_norm.weight": take("embeddings.LayerNorm.weight"),
        "emb_norm.bias": take("embeddings.LayerNorm.bias"),
    }
    types = int(_get(cfg, "type_vocab_size", 0) or 0)
    if types:
        state["token_type.weight"] = take("embeddings.token_type_embeddings.weight")
    bias = bool(_get(cfg, "use_bias", True)) if mt == "big_bird" else True
    for i in range(n_layers):
        p = f"encoder.layer.{i}."
        q, k, v = (take(f"{p}attention.self.{x}.weight") for x in ("query", "key", "value"))
        state[f"layers.{i}.attn.qkv.weight"] = torch.cat([q, k, v])
        if bias:
            state[f"layers.{i}.attn.qkv.bias"] = torch.cat(
                [take(f"{p}attention.self.{x}.bias") for x in ("query", "key", "value")])
        else:
            state[f"layers.{i}.attn.qkv.bias"] = torch.zeros(3 * hidden)
        for ours, theirs in (("attn.out", "attention.output.dense"), ("ln1", "attention.output.LayerNorm"),
                             ("mlp.0", "intermediate.dense"), ("mlp.3", "output.dense"),
                             ("ln2", "output.LayerNorm")):
            state[f"layers.{i}.{ours}.weight"] = take(f"{p}{theirs}.weight")
            state[f"layers.{i}.{ours}.bias"] = take(f"{p}{theirs}.bias")
    pooler = None
    for name in ("pooler.dense", "pooler"):  # BERT/RoBERTa: pooler.dense; BigBird: pooler
        if pre + name + ".weight" in raw:
            pooler = name
            break
    if pooler:
        state["pooler.weight"] = take(pooler + ".weight")
        state["pooler.bias"] = take(pooler + ".bias")
    sparse = mt == "big_bird" and _get(cfg, "attention_type", "block_sparse") == "block_sparse"
    if block_size is None:
        hf_block = int(_get(cfg, "block_size", 64)) if mt == "big_bird" else 64
        block_size = hf_block if hf_block in _BLOCKS else 64
    if pattern is None:
        if sparse:
            pattern = (f"bigbird_hf:block={int(cfg.get('block_size', 64))},random={int(cfg.get('num_random_blocks', 3))},"
                       f"max_len={int(cfg['max_position_embeddings'])}")
        else:
            pattern = "full"
    pad = _get(cfg, "pad_token_id", None)
    fields = {
        "vocab_size": int(cfg["vocab_size"]),
        "d_model": hidden,
        "n_layers": n_layers,
        "n_heads": int(cfg["num_attention_heads"]),
        "d_ff": int(cfg["intermediate_size"]),
        "dropout": float(_get(cfg, "hidden_dropout_prob", 0.1)),
        "max_len": int(cfg["max_position_embeddings"]) - offset,
        "position": "learned",
        "pooling": "first",
        "pad_id": None if pad is None else int(pad),
        "init_std": float(_get(cfg, "initializer_range", 0.02)),
        "layer_norm_eps": float(_get(cfg, "layer_norm_eps", 1e-12)),
        "norm": "post",
        "embedding_norm": True,
        "activation": act,
        "pooler": "tanh" if pooler else "none",
        "type_vocab_size": types,
        "attention": {"pattern": pattern, "block_size": int(block_size)},
    }
    ignored = sorted(set(raw) - used)
    return HFCheckpoint(d, mt, cfg, fields, state, offset, ignored)


def load_encoder(path: str | os.PathLike[str], *, max_len: int | None = None, pattern: str | None = None,
                 block_size: int | None = None, **overrides: Any) -> Any:
    """A sparsegraph :class:`~sparsegraph.experiments.models.Encoder` with a checkpoint's weights.

    Args:
        path: the checkpoint directory (see :func:`read_checkpoint`).
        max_len: the longest input; longer than the checkpoint's position table repeats the
            table's rows (Longformer's extension), shorter cuts it. Default: the checkpoint's.
        pattern, block_size: the attention graph and layout block size (see
            :func:`read_checkpoint`).
        overrides: other ``ModelConfig`` fields (``dropout``, ``attention`` as a dict, ...).

    Returns:
        The encoder in train mode (call ``.eval()`` for inference).
    """
    from sparsegraph.experiments.models import Encoder, ModelConfig
    from sparsegraph.experiments.train.checkpoint import load_model_weights

    ck = read_checkpoint(path, pattern=pattern, block_size=block_size)
    fields = dict(ck.model_fields)
    if max_len is not None:
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
            raise ValueError(f"max_len must be an int >= 1, got {max_len!r}")
        fields["max_len"] = max_len
    att = overrides.pop("attention", None)
    if att is not None:
        fields["attention"] = {**fields["attention"], **(att.to_dict() if hasattr(att, "to_dict") else dict(att))}
    unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(ModelConfig)})
    if unknown:
        raise ValueError(f"load_encoder got unknown ModelConfig field(s) {unknown}")
    fields.update(overrides)
    config = ModelConfig.from_dict(fields)
    encoder = Encoder(config)
    state = dict(ck.state)
    pos = state["position.weight"]
    if pos.shape[0] > config.max_len:
        state["position.weight"] = pos[: config.max_len]
    load_model_weights(encoder, {"model": state}, tile=["position.weight"])
    return encoder
