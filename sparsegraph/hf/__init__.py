"""Hugging Face interop (the optional ``sparsegraph[hf]`` extra; docs/huggingface.md).

* :func:`apply` — a ``transformers`` model (BERT, RoBERTa, ModernBERT, Llama, Mistral, Qwen2,
  Gemma, ...) attends over sparsegraph graphs through ``kernels.attention``: registered with
  transformers' ``AttentionInterface`` and ``AttentionMaskInterface`` under ``"sparsegraph"``;
  padding, causality checks, grouped-query attention and ``generate()`` with a KV cache.
  :func:`remove` undoes it.
* :func:`load_encoder` — a pretrained BigBird / BERT / RoBERTa checkpoint directory
  (``config.json`` + safetensors or a ``.bin``) as sparsegraph's own
  :class:`~sparsegraph.experiments.models.Encoder`, optionally with its position table extended
  (Longformer's recipe) and on any graph; :func:`read_checkpoint` gives the pieces
  (``ModelConfig`` fields and converted weights) that ``sparsegraph train --init-from DIR`` uses.
* :func:`load_tokenizer` — a local Hugging Face tokenizer in the shape sparsegraph's text data
  expects (``data.tokenizer = "hf:DIR"``).

Names load on first use: ``import sparsegraph.hf`` imports neither torch nor transformers, and
``import sparsegraph`` does not import this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "ATTN_NAME",
    "GraphMask",
    "SparseGraphAdapter",
    "apply",
    "remove",
    "register",
    "resolve_patterns",
    "HFCheckpoint",
    "read_checkpoint",
    "load_encoder",
    "load_tokenizer",
]

_WHERE = {
    "ATTN_NAME": "sparsegraph.hf.adapter",
    "GraphMask": "sparsegraph.hf.adapter",
    "SparseGraphAdapter": "sparsegraph.hf.adapter",
    "apply": "sparsegraph.hf.adapter",
    "remove": "sparsegraph.hf.adapter",
    "register": "sparsegraph.hf.adapter",
    "resolve_patterns": "sparsegraph.hf.adapter",
    "HFCheckpoint": "sparsegraph.hf.checkpoint",
    "read_checkpoint": "sparsegraph.hf.checkpoint",
    "load_encoder": "sparsegraph.hf.checkpoint",
    "load_tokenizer": "sparsegraph.hf.tokenizer",
}

if TYPE_CHECKING:
    from sparsegraph.hf.adapter import (ATTN_NAME, GraphMask, SparseGraphAdapter, apply, register, remove,
                                        resolve_patterns)
    from sparsegraph.hf.checkpoint import HFCheckpoint, load_encoder, read_checkpoint
    from sparsegraph.hf.tokenizer import load_tokenizer


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sparsegraph.hf' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
