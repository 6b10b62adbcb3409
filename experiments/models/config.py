"""Typed, frozen, validated configurations of the models.

:class:`AttentionConfig` says which attention graph every encoder layer uses and how it is run;
:class:`ModelConfig` is the encoder (and the heads built on it); :class:`Seq2SeqConfig` adds the
full-attention decoder. All are frozen dataclasses validated on construction: a bad value raises
``ValueError`` naming the field, the value and what was expected (a wrong *type* is a bad value
too, so a caller catches one exception type for every config mistake). ``from_dict`` rejects
unknown keys instead of ignoring them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Self

__all__ = ["AttentionConfig", "ModelConfig", "Seq2SeqConfig", "BACKENDS", "POSITIONS", "POOLINGS", "NORMS",
           "ACTIVATIONS", "POOLERS"]

#: ``kernels.attention`` backends a model may select (``auto`` lets the kernels choose).
BACKENDS = ("auto", "torch", "reference", "dense", "triton")
#: Position encodings: learned absolute, fixed sinusoidal (Vaswani et al. 2017), rotary
#: (relative; Su et al. 2021, RoFormer), or rotary over the rows and columns of an image grid
#: (axial 2-D rotary, as in vision transformers: Heo et al. 2024, "Rotary Position Embedding for
#: Vision Transformer").
POSITIONS = ("learned", "sinusoidal", "rotary", "rotary_2d")
#: How a sequence is reduced to one vector: a prepended CLS token, the mean of the real tokens, the
#: mean of the ETC global tokens, or the first input token (a tokenizer's own ``[CLS]``/``<s>``, as
#: in BERT, RoBERTa and BigBird checkpoints).
POOLINGS = ("cls", "mean", "global", "first")
#: Where the LayerNorms sit: before each sublayer plus a final one (pre-LN, Xiong et al. 2020), or
#: after each residual sum (post-LN, Vaswani et al. 2017; BERT, RoBERTa, BigBird).
NORMS = ("pre", "post")
#: The MLP's activation: exact GELU, or its tanh approximation (BigBird's ``gelu_new``).
ACTIVATIONS = ("gelu", "gelu_tanh")
#: What is applied to the pooled vector: nothing, or BERT's pooler ``tanh(W x + b)``.
POOLERS = ("none", "tanh")
#: Block sizes ``sparsegraph.layout.compile`` accepts.
_BLOCK_SIZES = (16, 32, 64, 128)


def _fail(where: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"{where} must be {expected}, got {value!r}")


def _int(where: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, value, f"an int >= {minimum}")
    if value < minimum:
        raise _fail(where, value, f">= {minimum}")
    return value


def _float(where: str, value: Any, lo: float, hi: float, *, hi_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(where, value, "a finite number")
    if not (lo <= value < hi if hi_open else lo <= value <= hi):
        raise _fail(where, value, f"in [{lo}, {hi}{')' if hi_open else ']'}")
    return float(value)


def _choice(where: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _fail(where, value, f"one of {list(choices)}")
    return value


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, value, "true or false")
    return value


def _from_dict(cls: type, data: Mapping[str, Any], nested: Mapping[str, type]) -> Any:
    if not isinstance(data, Mapping):
        raise ValueError(f"{cls.__name__} config must be a mapping, got {type(data).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(
            f"{cls.__name__} has no field(s) {unknown}; its fields are: {', '.join(names)}"
        )
    kwargs = dict(data)
    for key, sub in nested.items():
        if key in kwargs and isinstance(kwargs[key], Mapping):
            kwargs[key] = sub.from_dict(kwargs[key])
    return cls(**kwargs)


@dataclass(frozen=True)
class AttentionConfig:
    """Which attention graph each encoder layer uses, and how it is run.

    Attributes:
        pattern: a pattern spec string (``"bigbird:block=64,window=3,random=3,global=2"``) used by
            every layer, or a sequence of specs, one per layer. A pattern is per head when its
            builder uses ``heads`` (layer ``i``'s graph is
            ``patterns.get(spec).build(n, heads=n_heads, layer=i, seed=graph_seed)``).
        block_size: the block size of the compiled layouts (one of 16, 32, 64, 128). Inputs are
            padded inside the model to a multiple of it (the padding is masked).
        graph_seed: the seed of every random pattern (the graphs are a function of it, the
            length, the layer and the head count, nothing else).
        backend: the ``kernels.attention`` backend: ``auto``, ``torch``, ``reference``, ``dense``,
            ``triton``.
    """

    pattern: str | tuple[str, ...] = "full"
    block_size: int = 64
    graph_seed: int = 0
    backend: Literal["auto", "torch", "reference", "dense", "triton"] = "auto"

    def __post_init__(self) -> None:
        from sparsegraph import patterns  # experiments may import patterns; deferred so config stays cheap to import

        pat = self.pattern
        if isinstance(pat, (list, tuple)):
            if not pat:
                raise _fail("AttentionConfig.pattern", pat, "a spec string or a non-empty list of them")
            specs = tuple(pat)
        elif isinstance(pat, str):
            specs = (pat,)
        else:
            raise _fail("AttentionConfig.pattern", pat, "a spec string or a list of spec strings")
        for i, spec in enumerate(specs):
            where = "AttentionConfig.pattern" + (f"[{i}]" if isinstance(pat, (list, tuple)) else "")
            if not isinstance(spec, str):
                raise _fail(where, spec, "a pattern spec string")
            try:
                patterns.get(spec)
            except (ValueError, TypeError) as e:
                raise ValueError(f"{where}: invalid pattern spec {spec!r}: {e}") from None
        object.__setattr__(self, "pattern", specs if isinstance(pat, (list, tuple)) else pat)
        if self.block_size not in _BLOCK_SIZES or isinstance(self.block_size, bool):
            raise _fail("AttentionConfig.block_size", self.block_size, f"one of {list(_BLOCK_SIZES)}")
        _int("AttentionConfig.graph_seed", self.graph_seed, 0)
        _choice("AttentionConfig.backend", self.backend, BACKENDS)

    def layer_pattern(self, layer: int, n_layers: int) -> str:
        """The spec string of layer ``layer`` (of ``n_layers``)."""
        if isinstance(self.pattern, str):
            return self.pattern
        if len(self.pattern) != n_layers:
            raise ValueError(
                f"AttentionConfig.pattern lists {len(self.pattern)} specs, expected one per layer "
                f"(n_layers={n_layers})"
            )
        return self.pattern[layer]

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if isinstance(d["pattern"], tuple):
            d["pattern"] = list(d["pattern"])
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AttentionConfig":
        """Build from a mapping (e.g. a TOML table); an unknown key raises ``ValueError``."""
        return _from_dict(cls, data, {})


class _WithAttention:
    """``replace``, ``to_dict`` and ``from_dict`` of a frozen model config whose one nested table
    is ``attention`` (an :class:`AttentionConfig`): the encoder's and the decoder's."""

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        d["attention"] = self.attention.to_dict()  # type: ignore[attr-defined]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from a mapping (e.g. a TOML table); an unknown key raises ``ValueError``."""
        return _from_dict(cls, data, {"attention": AttentionConfig})


@dataclass(frozen=True)
class ModelConfig(_WithAttention):
    """The Transformer encoder and the heads on it.

    Attributes:
        vocab_size: number of token ids (inputs must lie in ``[0, vocab_size)``).
        d_model: width of the residual stream.
        n_layers: number of encoder layers.
        n_heads: attention heads (must divide ``d_model``).
        d_ff: width of the GELU MLP.
        dropout: dropout on the embeddings, the attention output and the MLP (in [0, 1)).
            There is no dropout on attention probabilities (the kernels do not materialise them).
        max_len: the longest input (tokens, without the CLS and global tokens) the model accepts;
            the size of the learned position table.
        position: ``learned`` absolute, ``sinusoidal`` absolute, ``rotary`` (relative, over the
            1-D sequence), or ``rotary_2d`` (relative over the image grid of ``grid_width``: half of
            each head's rotary pairs turn with the token's row, half with its column, so ``q . k``
            depends on the 2-D offset between two pixels; needs ``head_dim % 4 == 0``).
        grid_width: for ``position="rotary_2d"``, the width of the image whose pixels the input
            tokens are, row by row: input token ``p`` is pixel ``(p // grid_width, p %
            grid_width)``. ``0`` (the default) for every other position encoding.
        pooling: ``cls`` (a learned CLS token is prepended to every input and its output is the
            pooled vector), ``mean`` (mean over the real tokens), ``global`` (mean over the ETC
            global tokens' outputs; needs a pattern with global tokens), ``first`` (the first input
            token's output; nothing is prepended: the tokenizer's own ``[CLS]``/``<s>``).
        pad_id: the token id that marks padding when no explicit padding mask is given
            (``None``: inputs carry no padding).
        gradient_checkpointing: recompute each layer in the backward pass (saves memory).
        init_std: standard deviation of the normal weight initialisation (BERT uses 0.02).
        layer_norm_eps: LayerNorm epsilon.
        attention: the :class:`AttentionConfig`.

    Derived, not set: :attr:`global_tokens` ``g``, the number of ETC global tokens (BigBird-ETC),
    comes from the pattern (:meth:`sparsegraph.patterns.Pattern.global_tokens`); the model
    prepends ``g`` learned embeddings. Every layer's pattern must give the same ``g``.

    Options for pretrained BERT / RoBERTa / BigBird weights (``sparsegraph.hf.load_encoder``); the
    defaults leave the model exactly as without them:

    Attributes:
        norm: ``pre`` (LayerNorm before each sublayer, plus a final LayerNorm) or ``post``
            (``x = LN(x + sublayer(x))``, no final LayerNorm).
        embedding_norm: a LayerNorm on the summed embeddings (before the dropout).
        activation: ``gelu`` (exact) or ``gelu_tanh`` (the tanh approximation).
        pooler: ``none`` or ``tanh``: the pooled vector goes through ``tanh(W x + b)``.
        type_vocab_size: token-type (segment) embeddings; 0 for none. ``Encoder.forward`` takes
            ``token_type_ids`` (default all 0).
    """

    vocab_size: int
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 1024
    dropout: float = 0.1
    max_len: int = 4096
    position: Literal["learned", "sinusoidal", "rotary", "rotary_2d"] = "learned"
    pooling: Literal["cls", "mean", "global", "first"] = "cls"
    pad_id: int | None = 0
    gradient_checkpointing: bool = False
    init_std: float = 0.02
    layer_norm_eps: float = 1e-5
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    norm: Literal["pre", "post"] = "pre"
    embedding_norm: bool = False
    activation: Literal["gelu", "gelu_tanh"] = "gelu"
    pooler: Literal["none", "tanh"] = "none"
    type_vocab_size: int = 0
    grid_width: int = 0

    def __post_init__(self) -> None:
        _int("ModelConfig.vocab_size", self.vocab_size, 1)
        _int("ModelConfig.d_model", self.d_model, 1)
        _int("ModelConfig.n_layers", self.n_layers, 1)
        _int("ModelConfig.n_heads", self.n_heads, 1)
        if self.d_model % self.n_heads:
            raise ValueError(
                f"ModelConfig.n_heads must divide d_model={self.d_model}, got {self.n_heads}"
            )
        if self.position == "rotary" and (self.d_model // self.n_heads) % 2:
            raise ValueError(
                f"ModelConfig.position='rotary' needs an even head dimension, got "
                f"d_model/n_heads = {self.d_model}/{self.n_heads} = {self.d_model // self.n_heads}"
            )
        _int("ModelConfig.d_ff", self.d_ff, 1)
        _float("ModelConfig.dropout", self.dropout, 0.0, 1.0, hi_open=True)
        _int("ModelConfig.max_len", self.max_len, 1)
        _choice("ModelConfig.position", self.position, POSITIONS)
        _int("ModelConfig.grid_width", self.grid_width, 0)
        if self.position == "rotary_2d":
            if self.grid_width < 1:
                raise _fail("ModelConfig.grid_width", self.grid_width,
                            "the image width (>= 1) with position='rotary_2d'")
            if self.head_dim % 4:
                raise ValueError(
                    f"ModelConfig.position='rotary_2d' needs a head dimension divisible by 4 (half "
                    f"of its rotary pairs for rows, half for columns), got d_model/n_heads = "
                    f"{self.d_model}/{self.n_heads} = {self.head_dim}")
        elif self.grid_width:
            raise _fail("ModelConfig.grid_width", self.grid_width,
                        f"0: only position='rotary_2d' reads it (position={self.position!r})")
        _choice("ModelConfig.pooling", self.pooling, POOLINGS)
        if self.pad_id is not None:
            _int("ModelConfig.pad_id", self.pad_id, 0)
            if self.pad_id >= self.vocab_size:
                raise _fail("ModelConfig.pad_id", self.pad_id, f"None or in [0, vocab_size={self.vocab_size})")
        _bool("ModelConfig.gradient_checkpointing", self.gradient_checkpointing)
        _float("ModelConfig.init_std", self.init_std, 0.0, math.inf, hi_open=True)
        if self.init_std <= 0:
            raise _fail("ModelConfig.init_std", self.init_std, "> 0")
        _float("ModelConfig.layer_norm_eps", self.layer_norm_eps, 0.0, 1.0, hi_open=True)
        if self.layer_norm_eps <= 0:
            raise _fail("ModelConfig.layer_norm_eps", self.layer_norm_eps, "> 0")
        _choice("ModelConfig.norm", self.norm, NORMS)
        _bool("ModelConfig.embedding_norm", self.embedding_norm)
        _choice("ModelConfig.activation", self.activation, ACTIVATIONS)
        _choice("ModelConfig.pooler", self.pooler, POOLERS)
        _int("ModelConfig.type_vocab_size", self.type_vocab_size, 0)
        if isinstance(self.attention, Mapping):
            object.__setattr__(self, "attention", AttentionConfig.from_dict(self.attention))
        if not isinstance(self.attention, AttentionConfig):
            raise _fail("ModelConfig.attention", self.attention, "an AttentionConfig")
        if not isinstance(self.attention.pattern, str) and len(self.attention.pattern) != self.n_layers:
            raise ValueError(
                f"ModelConfig.attention.pattern lists {len(self.attention.pattern)} specs, expected "
                f"one per layer (n_layers={self.n_layers})"
            )
        object.__setattr__(self, "_global_tokens", self._derive_global_tokens())
        if self.pooling == "global" and self.global_tokens == 0:
            raise ValueError(
                f"ModelConfig.pooling='global' pools the ETC global tokens, but the pattern "
                f"{self.attention.pattern!r} has none; use a pattern with global tokens (e.g. "
                "'bigbird:mode=etc' or 'global_etc:g=2|...') or another pooling"
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def cls_token(self) -> bool:
        """True when a learned CLS token is prepended (``pooling == "cls"``)."""
        return self.pooling == "cls"

    def layer_pattern(self, layer: int) -> str:
        """The pattern spec of encoder layer ``layer``."""
        return self.attention.layer_pattern(layer, self.n_layers)

    @property
    def global_tokens(self) -> int:
        """``g``: the ETC global tokens of the model's pattern (the same in every layer)."""
        return self._global_tokens  # type: ignore[attr-defined]

    def _derive_global_tokens(self) -> int:
        from sparsegraph import patterns

        n = self.padded_length(self.max_len)
        counts = {}
        for layer in range(self.n_layers):
            spec = self.layer_pattern(layer)
            pat = patterns.get(spec)
            counts[spec] = pat.global_tokens(n, heads=self.n_heads, layer=layer,
                                             seed=self.attention.graph_seed)
        if len(set(counts.values())) > 1:
            raise ValueError(
                "ModelConfig.attention.pattern: every layer's pattern must have the same number of "
                f"ETC global tokens (the model has one set of global embeddings), got {counts}"
            )
        return next(iter(counts.values()))

    def padded_length(self, length: int) -> int:
        """``n``: the regular length attention runs on for inputs of ``length`` tokens: CLS (when
        pooling is ``cls``) + ``length``, rounded up to the layout block. The one place this is
        computed: the model, the compare runner and its graph measurements all call it."""
        b = self.attention.block_size
        return -(-(length + int(self.cls_token)) // b) * b



@dataclass(frozen=True)
class Seq2SeqConfig:
    """A sparse encoder and a full-attention causal decoder with cross attention.

    Attributes:
        encoder: the encoder's :class:`ModelConfig` (its width, heads, MLP width, dropout and
            LayerNorm epsilon are also the decoder's).
        decoder_layers: number of decoder layers.
        tgt_vocab_size: the decoder's vocabulary; ``None`` shares the encoder's vocabulary and
            ties the decoder's input embedding, output projection and the encoder's embedding.
        max_tgt_len: the longest target sequence (the decoder's learned position table).
    """

    encoder: ModelConfig
    decoder_layers: int = 2
    tgt_vocab_size: int | None = None
    max_tgt_len: int = 512

    def __post_init__(self) -> None:
        if isinstance(self.encoder, Mapping):
            object.__setattr__(self, "encoder", ModelConfig.from_dict(self.encoder))
        if not isinstance(self.encoder, ModelConfig):
            raise _fail("Seq2SeqConfig.encoder", self.encoder, "a ModelConfig")
        _int("Seq2SeqConfig.decoder_layers", self.decoder_layers, 1)
        if self.tgt_vocab_size is not None:
            _int("Seq2SeqConfig.tgt_vocab_size", self.tgt_vocab_size, 1)
        _int("Seq2SeqConfig.max_tgt_len", self.max_tgt_len, 1)

    @property
    def shared_vocab(self) -> bool:
        return self.tgt_vocab_size is None

    @property
    def target_vocab(self) -> int:
        return self.encoder.vocab_size if self.tgt_vocab_size is None else self.tgt_vocab_size

    def to_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.to_dict(), "decoder_layers": self.decoder_layers,
            "tgt_vocab_size": self.tgt_vocab_size, "max_tgt_len": self.max_tgt_len,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Seq2SeqConfig":
        """Build from a mapping (e.g. a TOML table); an unknown key raises ``ValueError``."""
        return _from_dict(cls, data, {"encoder": ModelConfig})
