"""A decoder-only language model whose causal self-attention is any causal sparsegraph pattern.

Layer ``i`` (pre-LN, as the encoder; Xiong et al. 2020)::

    x = x + Dropout(CausalSelfAttention_i(LN(x)))     # graph: pattern(layer i), rotary q and k
    x = x + Dropout(W_2 GELU(W_1 LN(x)))

then a final LayerNorm and the output projection (tied to the token embedding by default; Press &
Wolf 2017). Positions are rotary (Su et al. 2021), so nothing in the model depends on a maximum
length except the graphs.

The attention graph of layer ``i`` for length ``n`` (the input padded to a multiple of the block
size at the end) is ``patterns.get(spec_i).build(n, heads=n_heads, layer=i, seed=graph_seed)``,
compiled once per length into the layer's :class:`~experiments.models.attention.LayoutCache`
(device tensors shared between layers in the model's ``LayoutStore``), and run by
``kernels.attention`` on the configured backend, exactly as in the encoder. Every graph must be
*causal* (no edge ``i -> j`` with ``j > i``): a graph that looks ahead raises ``ValueError`` naming
the layer, head and edge. Padding at the end therefore needs no mask: a real query never reaches a
later (padded) key.

``pattern = "causal"`` (full causal attention) builds no token graph: with ``backend = "auto"`` it
runs ``torch.nn.functional.scaled_dot_product_attention(is_causal=True)`` (the dense baseline,
memory-linear on CPU); with an explicit backend it runs ``kernels.attention`` on a causal block
layout built block by block (:func:`causal_layout`, equal to compiling the ``causal`` graph).

Staged training changes pattern parameters between phases (:meth:`DecoderLM.set_pattern_params`,
e.g. the window); the layer's ``state_dict`` records the spec in use, and loading a checkpoint into
a model in another phase is an error (the trainer applies the checkpoint's phase first).

Decoding with a key/value cache: :mod:`experiments.models.decoding`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from sparsegraph import kernels, patterns
from sparsegraph.experiments.models.attention import LayoutCache, LayoutStore, RotaryEmbedding
from sparsegraph.experiments.models.config import AttentionConfig, _WithAttention
from sparsegraph.experiments.models.encoder import init_weights
from sparsegraph.graph import AttentionGraph, Provenance
from sparsegraph.layout import BlockLayout

__all__ = [
    "DecoderConfig",
    "DecoderLM",
    "DecoderLayer",
    "CausalSelfAttention",
    "CausalLayoutCache",
    "causal_layout",
    "override_spec",
]


def _fail(where: str, value: Any, expected: str) -> ValueError:
    return ValueError(f"{where} must be {expected}, got {value!r}")


def _int(where: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(where, value, f"an int >= {minimum}")
    return value


def _float(where: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not lo <= value < hi:
        raise _fail(where, value, f"a number in [{lo}, {hi})")
    return float(value)


@dataclass(frozen=True)
class DecoderConfig(_WithAttention):
    """The decoder-only language model (frozen, validated; ``from_dict`` rejects unknown keys).

    Attributes:
        vocab_size: token ids ``0 .. vocab_size - 1`` (256 for the byte-level LM).
        d_model, n_layers, n_heads, d_ff: width, depth, heads (must divide ``d_model``; the head
            width must be even for rotary positions), MLP width.
        dropout: on the embeddings, attention output and MLP (no dropout on attention weights).
        max_len: the longest input ``forward`` accepts (the training context; graphs are built
            for lengths up to it). Decoding may go further with a window pattern's rolling cache.
        tie_embeddings: output projection = token embedding (transposed).
        rotary_base: the rotary ``base`` (10000).
        gradient_checkpointing: recompute each layer in the backward pass.
        init_std, layer_norm_eps: initialisation (normal, BERT-style) and LayerNorm epsilon.
        attention: the :class:`AttentionConfig`: one causal pattern spec for every layer or one per
            layer, block size, graph seed, ``kernels.attention`` backend.
    """

    vocab_size: int
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 1024
    dropout: float = 0.0
    max_len: int = 4096
    tie_embeddings: bool = True
    rotary_base: float = 10000.0
    gradient_checkpointing: bool = False
    init_std: float = 0.02
    layer_norm_eps: float = 1e-5
    attention: AttentionConfig = field(default_factory=lambda: AttentionConfig(pattern="causal"))

    def __post_init__(self) -> None:
        _int("DecoderConfig.vocab_size", self.vocab_size, 1)
        _int("DecoderConfig.d_model", self.d_model, 1)
        _int("DecoderConfig.n_layers", self.n_layers, 1)
        _int("DecoderConfig.n_heads", self.n_heads, 1)
        if self.d_model % self.n_heads:
            raise ValueError(f"DecoderConfig.n_heads must divide d_model={self.d_model}, got {self.n_heads}")
        if (self.d_model // self.n_heads) % 2:
            raise ValueError(
                f"DecoderConfig: rotary positions need an even head width, got d_model/n_heads = "
                f"{self.d_model}/{self.n_heads} = {self.d_model // self.n_heads}")
        _int("DecoderConfig.d_ff", self.d_ff, 1)
        _float("DecoderConfig.dropout", self.dropout, 0.0, 1.0)
        _int("DecoderConfig.max_len", self.max_len, 1)
        for name in ("tie_embeddings", "gradient_checkpointing"):
            if not isinstance(getattr(self, name), bool):
                raise _fail(f"DecoderConfig.{name}", getattr(self, name), "true or false")
        _float("DecoderConfig.rotary_base", self.rotary_base, 1.0, math.inf)
        if _float("DecoderConfig.init_std", self.init_std, 0.0, math.inf) <= 0:
            raise _fail("DecoderConfig.init_std", self.init_std, "> 0")
        if _float("DecoderConfig.layer_norm_eps", self.layer_norm_eps, 0.0, 1.0) <= 0:
            raise _fail("DecoderConfig.layer_norm_eps", self.layer_norm_eps, "> 0")
        if isinstance(self.attention, Mapping):
            object.__setattr__(self, "attention", AttentionConfig.from_dict(self.attention))
        if not isinstance(self.attention, AttentionConfig):
            raise _fail("DecoderConfig.attention", self.attention, "an AttentionConfig")
        if not isinstance(self.attention.pattern, str) and len(self.attention.pattern) != self.n_layers:
            raise ValueError(
                f"DecoderConfig.attention.pattern lists {len(self.attention.pattern)} specs, expected "
                f"one per layer (n_layers={self.n_layers})")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def layer_pattern(self, layer: int) -> str:
        """The pattern spec of layer ``layer``."""
        return self.attention.layer_pattern(layer, self.n_layers)



# ---------------------------------------------------------------------- layouts
def causal_layout(n: int, block_size: int) -> BlockLayout:
    """The layout of full causal attention on ``n`` positions, built block by block.

    Equal (same hash) to ``compile(patterns.build("causal", n), block_size)`` without the
    ``n (n + 1) / 2``-edge token graph (a gigabyte at n = 16K): key blocks ``c < r`` of query block
    ``r`` are full (partial when a tail block is involved), the diagonal block is lower-triangular.
    """
    b = int(block_size)
    nb = -(-n // b)
    r, c = np.tril_indices(nb)  # row-major, columns ascending
    valid_len = np.full(nb, b, dtype=np.int64)
    valid_len[-1] = n - (nb - 1) * b
    tail = valid_len[-1] != b
    partial = (r == c) | (tail & ((r == nb - 1) | (c == nb - 1)))
    mask_idx = np.full(r.size, -1, np.int64)
    mask_idx[partial] = np.arange(int(partial.sum()))
    words = -(-b // 32)
    masks = np.zeros((int(partial.sum()), b, words), np.int32)
    ii, jj = np.ogrid[:b, :b]
    for p, (rr, cc) in enumerate(zip(r[partial].tolist(), c[partial].tolist())):
        valid = (ii < valid_len[rr]) & (jj < valid_len[cc])
        if rr == cc:
            valid = valid & (jj <= ii)
        bits = np.packbits(valid, axis=1, bitorder="little")
        pad = np.zeros((b, words * 4), np.uint8)
        pad[:, : bits.shape[1]] = bits
        masks[p] = pad.view("<i4")
    row_ptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=nb))]).astype(np.int64)
    order = np.lexsort((r, c))  # by column, then row
    col_ptr = np.concatenate([[0], np.cumsum(np.bincount(c, minlength=nb))]).astype(np.int64)
    return BlockLayout(
        n_q=n, n_k=n, block_q=b, block_k=b, heads=1, graph_heads=1, num_global=0,
        row_ptr=row_ptr, col_idx=c.astype(np.int64), mask_idx=mask_idx, masks=masks, col_ptr=col_ptr,
        row_idx=r[order].astype(np.int64), col_perm=order.astype(np.int64),
        provenance=Provenance(name="causal", params={}, spec="causal"),
    )


class CausalLayoutCache(LayoutCache):
    """A :class:`LayoutCache` that refuses graphs with an edge to a later key and builds the
    ``causal`` layout without a token graph."""

    def _build(self, n: int) -> BlockLayout:
        if self.pattern.spec == "causal":
            return causal_layout(n, self.block_size)
        return super()._build(n)

    def check_graph(self, graph: AttentionGraph) -> None:
        from sparsegraph.analysis.causal import first_future_edge

        hit = first_future_edge(graph)
        if hit is not None:
            h, i, j = hit
            raise ValueError(
                f"layer {self.layer}: pattern {self.spec!r} is not causal: head {h} has the edge "
                f"{i} -> {j} (query {i} attends the later key {j}); a decoder needs j <= i for every "
                "edge (e.g. sliding_window:causal=true, sink_window, window_schedule, causal)")


def override_spec(spec: str, params: Mapping[str, Any]) -> tuple[str, set[str]]:
    """``spec`` with the parameters ``params`` set in every part that has them; returns the new
    canonical spec and the names used. ``window=64`` turns ``sink_window:window=32,sinks=4`` into
    ``sink_window:window=64,sinks=4``."""
    parts = patterns.parse_spec(spec)
    used: set[str] = set()
    out = []
    for name, given in parts:
        keys = {p.spec_key for p in patterns.info(name).params}
        new = dict(given)
        for k, v in params.items():
            if k in keys:
                new[k] = v
                used.add(k)
        out.append(patterns.Pattern(name, new).spec)
    return "|".join(out), used


# ---------------------------------------------------------------------- modules
class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention over one layer's graph (see the module docstring).

    ``forward(x, n, rotary, return_kv=False)``: ``x`` ``[batch, n, d_model]`` (already padded to
    ``n``); returns the output, and with ``return_kv`` also the rotated keys and the values
    ``[batch, heads, n, head_dim]`` (what a decoding cache starts from).
    """

    def __init__(self, config: DecoderConfig, layer: int, store: LayoutStore) -> None:
        super().__init__()
        c = config
        self.layer = layer
        self.n_heads = c.n_heads
        self.head_dim = c.head_dim
        self.backend = c.attention.backend
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.out = nn.Linear(c.d_model, c.d_model)
        self._cache_args = dict(layer=layer, heads=c.n_heads, seed=c.attention.graph_seed,
                                block_size=c.attention.block_size, store=store)
        self._caches: dict[str, CausalLayoutCache] = {}
        self.base_spec = patterns.get(c.layer_pattern(layer)).spec
        self.set_spec(self.base_spec)

    def set_spec(self, spec: str) -> None:
        """Attend over ``spec``'s graphs from now on (layouts of each spec are kept)."""
        spec = patterns.get(spec).spec
        if spec not in self._caches:
            self._caches[spec] = CausalLayoutCache(spec, **self._cache_args)
        self.cache = self._caches[spec]

    @property
    def spec(self) -> str:
        return self.cache.pattern.spec

    @property
    def uses_sdpa(self) -> bool:
        """Full causal attention with ``backend = "auto"``: SDPA ``is_causal``, no layout."""
        return self.spec == "causal" and self.backend == "auto"

    def project(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``q, k, v`` ``[batch, heads, t, head_dim]`` of ``x`` ``[batch, t, d_model]``, q and k
        rotated by ``rotary`` (the ``(cos, sin)`` of the ``t`` positions)."""
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        cos, sin = (a.to(q.dtype) for a in rotary)
        return RotaryEmbedding.rotate(q, cos, sin), RotaryEmbedding.rotate(k, cos, sin), v

    def merge(self, out: torch.Tensor) -> torch.Tensor:
        b, h, t, d = out.shape
        return self.out(out.transpose(1, 2).reshape(b, t, h * d))

    def forward(self, x: torch.Tensor, n: int, rotary: tuple[torch.Tensor, torch.Tensor],
                return_kv: bool = False) -> Any:
        q, k, v = self.project(x, rotary)
        if self.uses_sdpa:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            layout = self.cache.device_layout(n, x.device)
            out = kernels.attention(q, k, v, layout, backend=self.backend)
        out = self.merge(out)
        return (out, (k, v)) if return_kv else out

    def get_extra_state(self) -> dict[str, Any]:
        return self.cache.state()

    def set_extra_state(self, state: Any) -> None:
        self.cache.load_state(state)


class DecoderLayer(nn.Module):
    """One pre-LN decoder layer: causal sparse self-attention then a GELU MLP."""

    def __init__(self, config: DecoderConfig, layer: int, store: LayoutStore) -> None:
        super().__init__()
        c = config
        self.ln1 = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.attn = CausalSelfAttention(c, layer, store)
        self.ln2 = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.mlp = nn.Sequential(nn.Linear(c.d_model, c.d_ff), nn.GELU(), nn.Dropout(c.dropout),
                                 nn.Linear(c.d_ff, c.d_model))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor, n: int, rotary: tuple[torch.Tensor, torch.Tensor],
                return_kv: bool = False) -> Any:
        a = self.attn(self.ln1(x), n, rotary, return_kv)
        a, kv = a if return_kv else (a, None)
        x = x + self.drop(a)
        x = x + self.drop(self.mlp(self.ln2(x)))
        return (x, kv) if return_kv else x


class DecoderLM(nn.Module):
    """Decoder-only LM: ``forward(input_ids [batch, L]) -> logits [batch, L, vocab]``; position
    ``t``'s logits predict token ``t + 1`` and depend on tokens ``<= t`` only."""

    def __init__(self, config: DecoderConfig) -> None:
        super().__init__()
        if not isinstance(config, DecoderConfig):
            raise TypeError(f"config must be a DecoderConfig, got {type(config).__name__}")
        c = config
        self.config = c
        self.gradient_checkpointing = c.gradient_checkpointing
        self.token = nn.Embedding(c.vocab_size, c.d_model)
        self.rotary = RotaryEmbedding(c.head_dim, base=c.rotary_base)
        self.drop = nn.Dropout(c.dropout)
        self.store = LayoutStore()
        self.layers = nn.ModuleList(DecoderLayer(c, i, self.store) for i in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.lm_head = None if c.tie_embeddings else nn.Linear(c.d_model, c.vocab_size, bias=False)
        init_weights(self, c.init_std)
        self._pattern_params: dict[str, Any] = {}
        self._check_causal_early()

    def _check_causal_early(self) -> None:
        """Refuse a look-ahead pattern at construction when it builds at a short length."""
        b = self.config.attention.block_size
        n = min(-(-self.config.max_len // b) * b, 4 * b)
        for layer in self.layers:
            cache = layer.attn.cache
            if cache.pattern.spec == "causal":
                continue
            try:
                graph = cache.pattern.build(n, heads=cache.heads, layer=cache.layer, seed=cache.seed)
            except (ValueError, TypeError):
                continue  # not buildable at this length: checked when a length is first used
            cache.check_graph(graph)

    # ------------------------------------------------------------------ phases
    @property
    def pattern_params(self) -> dict[str, Any]:
        """The pattern parameters set by :meth:`set_pattern_params` (empty: the config's)."""
        return dict(self._pattern_params)

    def set_pattern_params(self, **params: Any) -> None:
        """Set pattern parameters (e.g. ``window=64``) in every layer whose spec has them; no
        arguments restores the config's specs. A name that no layer's pattern has is an error."""
        used: set[str] = set()
        specs = []
        for layer in self.layers:
            spec, u = override_spec(layer.attn.base_spec, params)
            specs.append(spec)
            used |= u
        unknown = sorted(set(params) - used)
        if unknown:
            raise ValueError(f"no layer's pattern has the parameter(s) {unknown} (patterns: "
                             f"{sorted({l.attn.base_spec for l in self.layers})})")
        for layer, spec in zip(self.layers, specs):
            layer.attn.set_spec(spec)
        self._pattern_params = dict(params)
        self._check_causal_early()

    def layer_specs(self) -> list[str]:
        """The spec each layer attends over now."""
        return [layer.attn.spec for layer in self.layers]

    # ------------------------------------------------------------------ helpers
    def set_gradient_checkpointing(self, enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
        self.gradient_checkpointing = enabled

    def padded_length(self, length: int) -> int:
        b = self.config.attention.block_size
        return -(-length // b) * b

    def graphs(self, length: int) -> list[BlockLayout]:
        """Per layer, the ``BlockLayout`` used for inputs of ``length`` tokens (built if needed)."""
        n = self.padded_length(length)
        return [layer.attn.cache.layout(n) for layer in self.layers]

    def layout_hashes(self) -> list[dict[int, str]]:
        return [layer.attn.cache.hashes() for layer in self.layers]

    def output_weight(self) -> torch.Tensor:
        return self.token.weight if self.lm_head is None else self.lm_head.weight

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Logits of final hidden states (after ``ln_f``)."""
        return F.linear(h, self.output_weight())

    def check_inputs(self, input_ids: torch.Tensor) -> None:
        c = self.config
        if not isinstance(input_ids, torch.Tensor):
            raise TypeError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
        if input_ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
        if input_ids.dim() != 2 or 0 in input_ids.shape:
            raise ValueError(f"input_ids must have shape [batch >= 1, length >= 1], got {tuple(input_ids.shape)}")
        if input_ids.shape[1] > c.max_len:
            raise ValueError(f"input length {input_ids.shape[1]} exceeds DecoderConfig.max_len={c.max_len}")
        lo, hi = int(input_ids.min()), int(input_ids.max())
        if lo < 0 or hi >= c.vocab_size:
            raise ValueError(f"input_ids must lie in [0, vocab_size={c.vocab_size}), got values in [{lo}, {hi}]")

    # ------------------------------------------------------------------ forward
    def forward(self, input_ids: torch.Tensor, return_kv: bool = False) -> Any:
        """Logits ``[batch, L, vocab]``; with ``return_kv`` also each layer's ``(k, v)``
        ``[batch, heads, L, head_dim]`` (rotated keys), for a decoding cache."""
        self.check_inputs(input_ids)
        bsz, length = input_ids.shape
        n = self.padded_length(length)
        x = self.token(input_ids.long())
        x = F.pad(x, (0, 0, 0, n - length))  # block padding at the end: never read by a real query
        x = self.drop(x)
        rot = self.rotary.angles(torch.arange(n, device=x.device), x.dtype)
        ckpt = self.gradient_checkpointing and self.training and torch.is_grad_enabled() and not return_kv
        kvs = []
        for layer in self.layers:
            if ckpt:
                x = checkpoint(layer, x, n, rot, use_reentrant=False)
            elif return_kv:
                x, (k, v) = layer(x, n, rot, True)
                kvs.append((k[:, :, :length], v[:, :, :length]))
            else:
                x = layer(x, n, rot)
        logits = self.logits(self.ln_f(x[:, :length]))
        return (logits, kvs) if return_kv else logits
