"""Models whose self-attention is a pluggable sparse attention graph.

* :class:`Encoder` — pre-LN Transformer encoder; every layer attends over its pattern's graph via
  ``kernels.attention`` (layouts compiled once per length and kept in the model's state).
  BigBird-ITC and BigBird-ETC (``ModelConfig.global_tokens``), learned / sinusoidal / rotary
  positions, CLS / mean / global pooling, per-layer gradient checkpointing.
* Heads: :class:`SequenceClassifier`, :class:`DualEncoderClassifier` (LRA Retrieval),
  :class:`MaskedLM` (tied embeddings).
* :class:`Seq2Seq` — sparse encoder, full-attention causal decoder with cross attention, greedy
  decoding.
* :class:`DecoderLM` — decoder-only LM over any causal pattern (:class:`DecoderConfig`); cached
  decoding in :mod:`experiments.models.decoding`.
* Configs: :class:`ModelConfig`, :class:`AttentionConfig`, :class:`Seq2SeqConfig`.

See ``docs/models.md``.
"""

from sparsegraph.experiments.models.attention import LayoutCache, LayoutStore, RotaryEmbedding, SparseSelfAttention, dense_layout
from sparsegraph.experiments.models.config import AttentionConfig, ModelConfig, Seq2SeqConfig
from sparsegraph.experiments.models.encoder import Encoder, EncoderLayer, EncoderOutput
from sparsegraph.experiments.models.heads import DualEncoderClassifier, MaskedLM, SequenceClassifier
from sparsegraph.experiments.models.seq2seq import DecoderLayer, Seq2Seq
from sparsegraph.experiments.models.decoder import DecoderConfig, DecoderLM

__all__ = [
    "AttentionConfig",
    "ModelConfig",
    "Seq2SeqConfig",
    "Encoder",
    "EncoderLayer",
    "EncoderOutput",
    "SequenceClassifier",
    "DualEncoderClassifier",
    "MaskedLM",
    "Seq2Seq",
    "DecoderLayer",
    "DecoderConfig",
    "DecoderLM",
    "LayoutCache",
    "LayoutStore",
    "SparseSelfAttention",
    "RotaryEmbedding",
    "dense_layout",
]
