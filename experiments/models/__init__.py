"""Models whose self-attention is a pluggable sparse attention graph.

* :class:`Encoder` — pre-LN Transformer encoder; every layer attends over its pattern's graph via
  ``sparsegraph.kernels.attention`` (layouts compiled once per length and kept in the model's
  state). BigBird-ITC and BigBird-ETC (global tokens derived from the pattern:
  ``ModelConfig.global_tokens``), learned / sinusoidal / rotary positions, CLS / mean / global
  pooling, per-layer gradient checkpointing.
* Heads: :class:`SequenceClassifier`, :class:`DualEncoderClassifier` (LRA Retrieval),
  :class:`MaskedLM` (tied embeddings).
* :class:`SparseGraphAttention` — ``nn.MultiheadAttention``'s calling convention over a pattern's
  graph (a drop-in ``self_attn`` for ``nn.TransformerEncoderLayer``, never bypassed by its fast path).
* :class:`Seq2Seq` — sparse encoder, full-attention causal decoder with cross attention, greedy
  decoding.
* :class:`DecoderLM` — decoder-only LM over any causal pattern (:class:`DecoderConfig`); cached
  decoding in :mod:`sparsegraph.experiments.models.decoding`.
* Configs: :class:`ModelConfig`, :class:`AttentionConfig`, :class:`Seq2SeqConfig`
  (:mod:`.config` is torch-free).

The names load on first use (PEP 562), so ``sparsegraph.experiments.models.config`` imports
without torch. See ``docs/models.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparsegraph._lazy import lazy_exports

_WHERE = {
    "AttentionConfig": ".config", "ModelConfig": ".config", "Seq2SeqConfig": ".config",
    "Encoder": ".encoder", "EncoderLayer": ".encoder", "EncoderOutput": ".encoder",
    "SequenceClassifier": ".heads", "DualEncoderClassifier": ".heads", "MaskedLM": ".heads",
    "Seq2Seq": ".seq2seq", "DecoderLayer": ".seq2seq",
    "LayoutCache": ".attention", "LayoutStore": ".attention", "SparseSelfAttention": ".attention",
    "RotaryEmbedding": ".attention", "dense_layout": ".attention",
    "SparseGraphAttention": ".mha",
    "DecoderConfig": ".decoder", "DecoderLM": ".decoder",
}

__all__ = list(_WHERE)

if TYPE_CHECKING:
    from sparsegraph.experiments.models.attention import (LayoutCache, LayoutStore, RotaryEmbedding,
                                                          SparseSelfAttention, dense_layout)
    from sparsegraph.experiments.models.config import AttentionConfig, ModelConfig, Seq2SeqConfig
    from sparsegraph.experiments.models.decoder import DecoderConfig, DecoderLM
    from sparsegraph.experiments.models.encoder import Encoder, EncoderLayer, EncoderOutput
    from sparsegraph.experiments.models.heads import DualEncoderClassifier, MaskedLM, SequenceClassifier
    from sparsegraph.experiments.models.mha import SparseGraphAttention
    from sparsegraph.experiments.models.seq2seq import DecoderLayer, Seq2Seq


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
