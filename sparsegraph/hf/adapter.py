"""Hugging Face ``transformers`` models attending over sparsegraph graphs: :func:`apply`.

``apply(model, pattern)`` registers one attention function and one mask function under the name
``"sparsegraph"`` (``transformers.AttentionInterface`` / ``AttentionMaskInterface``; both are
needed: without the mask function transformers passes no mask at all and padding would be
dropped), points every attention layer of ``model`` at its graph and switches the model to that
implementation (``model.set_attn_implementation("sparsegraph")``).

Semantics of one attention call (``query`` ``[batch, heads, Q, d]``, ``key``/``value``
``[batch, kv_heads, K, d]``):

* Positions are cache indices, as in transformers' own masks. The ``Q`` queries are positions
  ``q_offset .. q_offset + Q - 1`` of a sequence of ``T = q_offset + Q`` tokens (``q_offset`` is
  the number of cached tokens, 0 without a cache); key ``j`` is position ``kv_offset + j``.
* Query ``i`` attends exactly the keys that row ``q_offset + i`` of layer ``l``'s graph
  ``patterns.get(spec_l).build(T, heads=heads, layer=l, seed=seed)`` lists, minus padded keys
  (``attention_mask == 0``). A padded query attends its graph's non-padded keys; a query left
  with no key (e.g. a left-padding position whose keys are all padding) outputs zeros, never NaN.
* A causal model (``module.is_causal`` and not ``config.is_causal = False``) needs a causal graph:
  an edge ``(i, j)`` with ``j > i`` raises ``ValueError`` naming it.
* A cache that dropped keys (transformers' sliding-window cache layers keep the last
  ``sliding_window - 1`` keys) is fine as long as the graph needs none of the dropped keys; else a
  ``ValueError`` says which. A static cache's slots past the current length are padding.
* Packed sequences (``position_ids`` restarting inside a row, no ``attention_mask``) raise
  ``ValueError`` on models that pass ``position_ids`` to attention (Llama-like); they are not
  separated.
* Grouped-query attention: the key/value heads are repeated to the query heads.
* Dropout on attention probabilities is not available (the kernels never materialise them): a
  call with ``dropout > 0`` (a model in training mode with attention dropout) raises
  ``ValueError``; set the config's attention dropout to 0.

Layouts are cached on the :class:`SparseGraphAdapter` (owned by the model, ``model.sparsegraph``),
keyed by the graph's identity (spec, heads, seed, layer when the pattern depends on it) and the
call geometry (``T``, ``q_offset``, ``Q``, ``kv_offset``, ``K``), in a bounded LRU.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from sparsegraph import kernels, patterns
from sparsegraph.graph import AttentionGraph
from sparsegraph.layout import BLOCK_SIZES, BlockLayout, compile as compile_layout

__all__ = [
    "ATTN_NAME", "GraphMask", "SparseGraphAdapter", "apply", "remove", "register", "resolve_patterns",
    "sparsegraph_attention", "sparsegraph_mask",
]

#: The name under which the attention and mask functions are registered.
ATTN_NAME = "sparsegraph"

#: HF layer types (``config.layer_types``) this module maps to patterns.
LAYER_TYPES = ("full_attention", "sliding_attention")

_BACKENDS = ("auto", "torch", "reference", "dense", "triton")


# ---------------------------------------------------------------------- the mask
@dataclass(frozen=True)
class GraphMask:
    """What the ``"sparsegraph"`` mask function hands every attention call of one forward pass.

    Attributes:
        key_padding_mask: bool ``[batch, kv_length]``, True = padding key; ``None`` when no key is
            padding.
        q_offset: position of the first query (cached tokens before it).
        kv_offset: position of the first key (0 unless the cache dropped old keys).
        q_length, kv_length: the query and key lengths the mask was made for.
        batch_size: the batch it was made for.
        has_attention_mask: whether the model was given a 2D ``attention_mask`` at all.

    ``ndim`` and ``shape`` (``[batch, 1, q_length, kv_length]``) describe it as transformers
    describes a prepared 4D mask (``generate()`` with a static cache prepares the mask before the
    forward pass and checks ``ndim``); it holds no ``[q_length, kv_length]`` tensor.
    """

    key_padding_mask: torch.Tensor | None
    q_offset: int
    kv_offset: int
    q_length: int
    kv_length: int
    batch_size: int = 1
    has_attention_mask: bool = False

    ndim = 4

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.batch_size, 1, self.q_length, self.kv_length)


def sparsegraph_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    q_offset: int | torch.Tensor = 0,
    kv_offset: int | torch.Tensor = 0,
    mask_function: Any = None,
    attention_mask: torch.Tensor | None = None,
    **kwargs: Any,
) -> GraphMask:
    """transformers' mask hook (``AttentionMaskInterface``): the key padding and offsets only.

    The graph replaces ``mask_function`` (causal, sliding window, ...); the 2D ``attention_mask``
    (``[batch, >= kv_offset + kv_length]`` or shorter, 1/True = token) becomes the key padding of
    keys ``kv_offset .. kv_offset + kv_length - 1`` (missing entries are padding, as in
    transformers' ``prepare_padding_mask``).
    """
    q_offset, kv_offset = int(q_offset), int(kv_offset)
    if isinstance(attention_mask, GraphMask):  # prepared earlier for this very step (static caches)
        if (attention_mask.q_length, attention_mask.kv_length, attention_mask.q_offset) != (q_length, kv_length, q_offset):
            raise ValueError(
                f"a prepared sparsegraph mask for {attention_mask.q_length} queries x {attention_mask.kv_length} keys "
                f"at offset {attention_mask.q_offset} was given for {q_length} x {kv_length} at offset {q_offset}"
            )
        return attention_mask
    kpm = None
    if attention_mask is not None:
        if not isinstance(attention_mask, torch.Tensor) or attention_mask.dim() != 2:
            raise TypeError(
                "the sparsegraph attention needs a 2D attention_mask [batch, keys] (1 = token, 0 = "
                f"padding); got {type(attention_mask).__name__} of shape "
                f"{list(getattr(attention_mask, 'shape', []))}"
            )
        keep = attention_mask.to(torch.bool)
        need = kv_offset + kv_length
        if keep.shape[1] < need:
            keep = torch.nn.functional.pad(keep, (0, need - keep.shape[1]), value=False)
        keep = keep[:, kv_offset:need]
        if not bool(keep.all()):
            kpm = ~keep
    return GraphMask(kpm, q_offset, kv_offset, int(q_length), int(kv_length), int(batch_size),
                     attention_mask is not None)


# ---------------------------------------------------------------------- registration
def register(name: str = ATTN_NAME) -> None:
    """Register the attention and the mask function under ``name`` (idempotent)."""
    from transformers import AttentionInterface, AttentionMaskInterface

    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    AttentionInterface.register(name, sparsegraph_attention)
    AttentionMaskInterface.register(name, sparsegraph_mask)


# ---------------------------------------------------------------------- the adapter
def _uses(pattern: "patterns.Pattern | patterns.UnionPattern", context: str) -> bool:
    parts = pattern.parts if isinstance(pattern, patterns.UnionPattern) else (pattern,)
    return any(context in p.info.context for p in parts)


def _first_edge(m: sp.csr_matrix) -> tuple[int, int]:
    coo = m.tocoo()
    k = int(np.lexsort((coo.col, coo.row))[0])
    return int(coo.row[k]), int(coo.col[k])


@dataclass(frozen=True)
class _Layer:
    spec: str
    pattern: Any
    causal: bool
    layer: int


class SparseGraphAdapter:
    """The sparsegraph state of one Hugging Face model (``model.sparsegraph``).

    Args:
        specs: one pattern spec per attention layer.
        causal: per layer, whether the layer is causal (its graph must be).
        block_size: the block size of the compiled layouts (16, 32, 64 or 128).
        seed: the graph seed (random patterns).
        backend: the ``kernels.attention`` backend.
        max_layouts: how many compiled layouts the LRU keeps (decoding adds one per new length).
        module_names: the attention modules' names, for messages.
    """

    def __init__(self, specs: Sequence[str], causal: Sequence[bool], *, block_size: int = 64, seed: int = 0,
                 backend: str = "auto", max_layouts: int = 4096, module_names: Sequence[str] = ()) -> None:
        self.layers = [_Layer(s, patterns.get(s), bool(c), i) for i, (s, c) in enumerate(zip(specs, causal))]
        self.block_size = block_size
        self.seed = seed
        self.backend = backend
        self.max_layouts = max_layouts
        self.module_names = tuple(module_names)
        self._layouts: OrderedDict[tuple, BlockLayout] = OrderedDict()
        self._device: OrderedDict[tuple, kernels.DeviceLayout] = OrderedDict()
        self.calls = 0  # attention calls served (the model's forward hook checks it moves)
        self.builds = 0  # layouts compiled (tests check caching with it)
        self.previous_implementation: str | None = None
        self._hooks: list[Any] = []

    @property
    def specs(self) -> list[str]:
        """The pattern spec of every attention layer."""
        return [l.spec for l in self.layers]

    def graph(self, layer: int, n: int, heads: int) -> AttentionGraph:
        """Layer ``layer``'s graph on ``n`` positions for ``heads`` query heads (checked)."""
        lay = self._layer(layer)
        try:
            g = lay.pattern.build(n, heads=heads, layer=layer, seed=self.seed)
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"pattern {lay.spec!r} (layer {layer}) cannot be built for n={n} positions: {e}. "
                "sparsegraph never falls back to dense attention; use a pattern valid at this length"
            ) from e
        if g.num_global:
            raise ValueError(
                f"pattern {lay.spec!r} adds {g.num_global} ETC global tokens; a Hugging Face model has "
                "no extra tokens: use an ITC pattern (globals among the sequence's own tokens)"
            )
        if (g.n_q, g.n_k) != (n, n):
            raise ValueError(f"pattern {lay.spec!r} built a {g.n_q}x{g.n_k} graph for n={n}; expected {n}x{n}")
        if lay.causal:
            for h, m in enumerate(g.adjacencies()):
                upper = sp.triu(m, k=1)
                if upper.nnz:
                    i, j = _first_edge(upper)
                    raise ValueError(
                        f"layer {layer} ({self._name(layer)}) is causal but pattern {lay.spec!r} has the "
                        f"edge ({i}, {j}) with key {j} > query {i} at n={n}"
                        + ("" if g.shared else f" (head {h})")
                        + "; use a causal pattern (e.g. 'causal', 'sliding_window:window=W,causal=true')"
                    )
        return g

    def layout(self, layer: int, *, heads: int, q_offset: int, q_length: int, kv_offset: int,
               kv_length: int) -> BlockLayout:
        """The compiled layout of one call (see the module docstring), cached."""
        lay = self._layer(layer)
        total = q_offset + q_length
        ident = (lay.spec, heads, self.seed if lay.pattern.uses_seed else None,
                 layer if _uses(lay.pattern, "layer") else None, lay.causal)
        key = (ident, total, q_offset, q_length, kv_offset, kv_length)
        hit = self._layouts.get(key)
        if hit is not None:
            self._layouts.move_to_end(key)
            return hit
        if kv_offset > q_offset:
            raise ValueError(f"kv_offset={kv_offset} is past the first query position {q_offset}")
        bq = self.block_size if q_length >= self.block_size else min(b for b in BLOCK_SIZES if b >= min(q_length, 128))
        square = q_offset == 0 and kv_offset == 0 and q_length == kv_length == total
        if square and lay.spec == "full":
            from sparsegraph.experiments.models.attention import dense_layout

            out = dense_layout(total, self.block_size)
        else:
            g = self.graph(layer, total, heads)
            if not square:
                g = self._window(g, layer, q_offset, q_length, kv_offset, kv_length, total)
            out = compile_layout(g, (bq, self.block_size))
        self.builds += 1
        self._layouts[key] = out
        while len(self._layouts) > self.max_layouts:
            self._layouts.popitem(last=False)
        return out

    def device_layout(self, layer: int, device: torch.device, **geometry: int) -> kernels.DeviceLayout:
        """:meth:`layout` as device tensors (converted once per layout and device)."""
        bl = self.layout(layer, **geometry)
        key = (bl.hash, torch.device(device))
        hit = self._device.get(key)
        if hit is None:
            hit = self._device[key] = kernels.prepare(bl, device)
            while len(self._device) > self.max_layouts:
                self._device.popitem(last=False)
        else:
            self._device.move_to_end(key)
        return hit

    def clear(self) -> None:
        """Drop every cached layout."""
        self._layouts.clear()
        self._device.clear()

    # ------------------------------------------------------------------ helpers
    def _layer(self, layer: int) -> _Layer:
        if not 0 <= layer < len(self.layers):
            raise ValueError(f"layer must lie in [0, {len(self.layers)}), got {layer}")
        return self.layers[layer]

    def _name(self, layer: int) -> str:
        return self.module_names[layer] if layer < len(self.module_names) else f"layer {layer}"

    def _window(self, g: AttentionGraph, layer: int, q0: int, q: int, k0: int, k: int, total: int) -> AttentionGraph:
        """Rows ``q0 .. q0+q-1`` and columns ``k0 .. k0+k-1`` of ``g`` (columns past ``total``: none)."""
        mats = []
        for h, m in enumerate(g.adjacencies()):
            rows = m[q0: q0 + q]
            if k0 and rows[:, :k0].nnz:
                i, j = _first_edge(rows[:, :k0])
                raise ValueError(
                    f"layer {layer} ({self._name(layer)}): the cache holds keys from position {k0} on, "
                    f"but pattern {self.layers[layer].spec!r} has the edge ({q0 + i}, {j}) at n={total}; "
                    "the cache dropped keys the graph needs (transformers' sliding-window cache keeps only "
                    "config.sliding_window - 1 keys): use a pattern within that window or a config "
                    "without sliding_window"
                )
            sub = rows[:, k0: min(total, k0 + k)]
            if sub.shape[1] < k:
                sub = sp.hstack([sub, sp.csr_matrix((q, k - sub.shape[1]), dtype=bool)], format="csr")
            mats.append(sp.csr_matrix(sub, dtype=bool))
        return AttentionGraph(mats, heads=g.heads, provenance=g.provenance)

    def __repr__(self) -> str:
        specs = sorted(set(self.specs))
        return (f"SparseGraphAdapter(layers={len(self.layers)}, patterns={specs}, block_size={self.block_size}, "
                f"seed={self.seed}, backend={self.backend!r}, cached_layouts={len(self._layouts)})")


# ---------------------------------------------------------------------- the attention function
def sparsegraph_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: GraphMask | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention hook (``AttentionInterface``) for a module prepared by :func:`apply`.

    ``query`` ``[batch, heads, Q, d]``, ``key``/``value`` ``[batch, kv_heads, K, d]``; returns
    ``(output [batch, Q, heads, d], None)`` (no attention weights: they are never materialised).
    """
    state = getattr(module, "_sparsegraph_layer", None)
    if state is None:
        raise ValueError(
            f"{type(module).__name__} runs with attn_implementation={ATTN_NAME!r} but was not prepared "
            "by sparsegraph.hf.apply(model, pattern) (which gives every layer its graph); call apply"
        )
    adapter, layer = state
    if dropout and float(dropout) > 0.0:
        raise ValueError(
            f"attention dropout={dropout} in {adapter._name(layer)}: the sparsegraph kernels do not "
            "materialise attention probabilities, so they cannot drop them. Set the model config's "
            "attention dropout (attention_dropout / attention_probs_dropout_prob) to 0, or call model.eval()"
        )
    for name in ("softcap", "s_aux", "sinks"):
        if kwargs.get(name) is not None:
            raise ValueError(
                f"{adapter._name(layer)} passes {name}={kwargs[name]!r}; the sparsegraph kernels compute "
                "plain softmax(q.k * scale) attention and cannot apply it"
            )
    if any(kwargs.get(k) is not None for k in ("cu_seq_lens_q", "cu_seq_lens_k")):
        raise ValueError("packed sequences (cu_seq_lens_*) are not supported by the sparsegraph attention")
    if attention_mask is not None and not isinstance(attention_mask, GraphMask):
        raise TypeError(
            f"the sparsegraph attention got a {type(attention_mask).__name__} mask; it needs the mask "
            f"made by its own mask function (a 2D attention_mask given to the model), not a prepared "
            "4D mask"
        )
    b, heads, q_len, d = query.shape
    k_len = key.shape[2]
    if key.shape[1] != heads:
        kvh = key.shape[1]
        if heads % kvh:
            raise ValueError(f"query heads {heads} are not a multiple of key/value heads {kvh}")
        g = heads // kvh
        key = key[:, :, None].expand(b, kvh, g, k_len, d).reshape(b, heads, k_len, d)
        value = value[:, :, None].expand(b, kvh, g, k_len, value.shape[-1]).reshape(b, heads, k_len, value.shape[-1])
    if attention_mask is None:
        q_offset, kv_offset, kpm = k_len - q_len, 0, None
    else:
        m = attention_mask
        if (m.q_length, m.kv_length) != (q_len, k_len):
            raise ValueError(
                f"{adapter._name(layer)}: the mask was made for {m.q_length} queries x {m.kv_length} keys "
                f"but the layer has {q_len} x {k_len}"
            )
        q_offset, kv_offset, kpm = m.q_offset, m.kv_offset, m.key_padding_mask
    if q_offset < 0:
        raise ValueError(f"{adapter._name(layer)}: {q_len} queries but only {k_len} keys without a mask")
    pos = kwargs.get("position_ids")
    if (isinstance(pos, torch.Tensor) and pos.dim() == 2 and pos.shape[-1] == q_len > 1 and q_offset == 0
            and not (attention_mask is not None and attention_mask.has_attention_mask)
            and bool((pos.diff(dim=-1) != 1).any())):
        raise ValueError(
            f"{adapter._name(layer)}: position_ids restart inside a row and no attention_mask was given, which "
            "transformers reads as packed sequences; the sparsegraph attention does not separate packed "
            "sequences: pass one sequence per row with an attention_mask"
        )
    layout = adapter.device_layout(layer, query.device, heads=heads, q_offset=q_offset, q_length=q_len,
                                   kv_offset=kv_offset, kv_length=k_len)
    if kpm is not None and kpm.device != query.device:
        kpm = kpm.to(query.device)
    out = kernels.attention(query, key, value, layout, scale=scaling, key_padding_mask=kpm, backend=adapter.backend)
    adapter.calls += 1
    return out.transpose(1, 2), None


# ---------------------------------------------------------------------- apply
def _calls_interface(cls: type, memo: dict[type, bool]) -> bool:
    if cls not in memo:
        try:
            src = inspect.getsource(cls.forward)
        except (OSError, TypeError, AttributeError):
            src = ""
        memo[cls] = "ALL_ATTENTION_FUNCTIONS" in src
    return memo[cls]


def _attention_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    memo: dict[type, bool] = {}
    return [(n, m) for n, m in model.named_modules() if _calls_interface(type(m), memo)]


def _unsupported(model: nn.Module, why: str) -> TypeError:
    names = sorted({type(m).__name__ for m in model.modules() if "Attention" in type(m).__name__})
    return TypeError(
        f"{type(model).__name__} cannot run sparsegraph attention: {why}. Its attention classes "
        f"({', '.join(names) or 'none found'}) would ignore attn_implementation={ATTN_NAME!r} and run "
        "their own (dense or block-sparse) attention. Models that call the interface: BERT, RoBERTa, "
        "XLM-R, ELECTRA, DistilBERT, ModernBERT, Llama, Mistral, Qwen2, Gemma, ...; for BigBird, "
        "RoBERTa or BERT checkpoints in sparsegraph's own encoder see sparsegraph.hf.load_encoder"
    )


def resolve_patterns(pattern: str | Sequence[str], config: Any, causal: Sequence[bool]) -> list[str]:
    """One spec per attention layer from ``pattern``.

    ``pattern``: a spec string (every layer), a list of one spec per layer, or HF layer types:
    ``"layer_types"`` (the config's ``layer_types``), or a list whose entries may be
    ``"full_attention"`` (``causal`` / ``full``) or ``"sliding_attention"`` (transformers'
    ``sliding_window`` ``W``: ``sliding_window:window=W,causal=true``, keys ``i-W < j <= i``, on
    a causal layer; ``sliding_window:window=2W+1``, keys ``|i-j| <= W``, on a bidirectional one).
    """
    n_layers = len(causal)
    if isinstance(pattern, str):
        if pattern == "layer_types":
            types = getattr(config, "layer_types", None)
            if types is None:
                w = getattr(config, "sliding_window", None)
                types = ["sliding_attention" if w is not None else "full_attention"] * n_layers
            entries = list(types)
            where = "config.layer_types"
        else:
            entries = [pattern] * n_layers
            where = "pattern"
    elif isinstance(pattern, (list, tuple)):
        entries = list(pattern)
        where = "pattern"
    else:
        raise TypeError(f"pattern must be a spec string or a list of them, got {type(pattern).__name__}")
    if len(entries) != n_layers:
        raise ValueError(f"{where} lists {len(entries)} entries, expected one per attention layer ({n_layers})")
    specs = []
    for i, (e, c) in enumerate(zip(entries, causal)):
        if not isinstance(e, str):
            raise TypeError(f"{where}[{i}] must be a spec string, got {type(e).__name__} {e!r}")
        if e == "full_attention":
            e = "causal" if c else "full"
        elif e == "sliding_attention":
            w = getattr(config, "sliding_window", None)
            if not isinstance(w, int) or isinstance(w, bool) or w < 1:
                raise ValueError(
                    f"{where}[{i}] is 'sliding_attention' but config.sliding_window is {w!r}; expected an int >= 1"
                )
            e = f"sliding_window:window={w},causal=true" if c else f"sliding_window:window={2 * w + 1}"
        elif e.endswith("_attention") and ":" not in e and e not in {p.name for p in patterns.available()}:
            raise ValueError(f"{where}[{i}] is the layer type {e!r}; supported layer types: {list(LAYER_TYPES)}")
        try:
            patterns.get(e)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{where}[{i}]: invalid pattern spec {e!r}: {err}") from None
        specs.append(e)
    return specs


def apply(
    model: nn.Module,
    pattern: str | Sequence[str],
    *,
    block_size: int = 64,
    seed: int = 0,
    backend: str = "auto",
    max_layouts: int = 4096,
) -> SparseGraphAdapter:
    """Make a transformers model attend over sparsegraph graphs through ``kernels.attention``.

    Args:
        model: a ``transformers.PreTrainedModel`` whose attention layers call the
            ``AttentionInterface`` (BERT, RoBERTa, ModernBERT, Llama, Mistral, Qwen2, Gemma, ...).
        pattern: a spec string for every layer, a list with one spec per attention layer, or HF
            layer types (``"layer_types"``, or a list of ``"full_attention"`` /
            ``"sliding_attention"`` entries); see :func:`resolve_patterns`.
        block_size: layout block size (16, 32, 64, 128).
        seed: the graph seed of random patterns (layer ``i`` gets ``build(..., layer=i, seed=seed)``).
        backend: the ``kernels.attention`` backend (``auto`` picks per call).
        max_layouts: compiled layouts kept (LRU).

    Returns:
        The model's :class:`SparseGraphAdapter` (also ``model.sparsegraph``).

    Raises:
        TypeError: ``model`` is not a transformers model, or its attention does not call the
            interface (BigBird, Longformer, LED, DeBERTa: the class and the reason are named).
        ValueError: a bad pattern, block size, seed or backend; a causal model with a non-causal
            pattern (the offending edge is named); cross-attention layers.
    """
    try:
        from transformers import PreTrainedModel
    except ImportError as e:  # pragma: no cover - the hf extra is missing
        raise ImportError("sparsegraph.hf needs transformers: pip install 'sparsegraph[hf]'") from e
    if not isinstance(model, PreTrainedModel):
        raise TypeError(f"model must be a transformers PreTrainedModel, got {type(model).__name__}")
    if block_size not in BLOCK_SIZES or isinstance(block_size, bool):
        raise ValueError(f"block_size must be one of {list(BLOCK_SIZES)}, got {block_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {list(_BACKENDS)}, got {backend!r}")
    if isinstance(max_layouts, bool) or not isinstance(max_layouts, int) or max_layouts < 1:
        raise ValueError(f"max_layouts must be an int >= 1, got {max_layouts!r}")
    cls = type(model)
    if not getattr(cls, "_supports_attention_backend", False):
        raise _unsupported(model, "its class does not declare _supports_attention_backend (it does not use "
                                  "transformers' AttentionInterface)")
    can_set = getattr(cls, "_can_set_attn_implementation", None)
    if callable(can_set) and not can_set():
        raise _unsupported(model, "transformers cannot set its attention implementation")
    mods = _attention_modules(model)
    if not mods:
        raise _unsupported(model, "none of its modules calls transformers' AttentionInterface")
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    for name, m in mods:
        if "Cross" in type(m).__name__ or getattr(m, "is_cross_attention", False):
            raise ValueError(
                f"{type(model).__name__} has a cross-attention layer ({name}: {type(m).__name__}); "
                "sparsegraph.hf.apply handles self-attention only"
            )
    bidirectional = getattr(config, "is_causal", True) is False
    causal = [bool(getattr(m, "is_causal", False)) and not bidirectional for _, m in mods]
    specs = resolve_patterns(pattern, config, causal)
    adapter = SparseGraphAdapter(specs, causal, block_size=block_size, seed=seed, backend=backend,
                                 max_layouts=max_layouts, module_names=[n for n, _ in mods])
    # Check causality now at a small length (patterns that cannot be built there are checked on use).
    heads = getattr(config, "num_attention_heads", 1) or 1
    for i, lay in enumerate(adapter.layers):
        if lay.causal:
            try:
                lay.pattern.build(4 * block_size, heads=heads, layer=i, seed=seed)
            except (ValueError, TypeError):
                continue
            adapter.graph(i, 4 * block_size, heads)
    old = getattr(model, "sparsegraph", None)
    if isinstance(old, SparseGraphAdapter):
        remove(model)
    register(ATTN_NAME)
    adapter.previous_implementation = getattr(config, "_attn_implementation", None)
    for i, (_, m) in enumerate(mods):
        m._sparsegraph_layer = (adapter, i)
    model.sparsegraph = adapter
    model.set_attn_implementation(ATTN_NAME)
    if model.config._attn_implementation != ATTN_NAME:
        remove(model)
        raise _unsupported(model, "set_attn_implementation did not take effect")
    adapter._hooks = [model.register_forward_pre_hook(_before), model.register_forward_hook(_after)]
    return adapter


def _before(model: nn.Module, args: Any) -> None:
    adapter = model.sparsegraph
    impl = model.config._attn_implementation
    if impl != ATTN_NAME:
        raise RuntimeError(
            f"{type(model).__name__} was prepared by sparsegraph.hf.apply but its attn_implementation is now "
            f"{impl!r}; call sparsegraph.hf.remove(model) to go back to dense attention deliberately"
        )
    model._sparsegraph_calls_before = adapter.calls


def _after(model: nn.Module, args: Any, output: Any) -> None:
    if model.sparsegraph.calls == getattr(model, "_sparsegraph_calls_before", -1):
        raise RuntimeError(
            f"a forward pass of {type(model).__name__} ran without calling the sparsegraph attention: its "
            "layers did not use the AttentionInterface; refusing to return dense-attention results"
        )


def remove(model: nn.Module, attn_implementation: str | None = None) -> None:
    """Undo :func:`apply`: drop the graphs and hooks and switch ``model`` back to
    ``attn_implementation`` (default: the implementation it had before ``apply``, else ``sdpa``)."""
    adapter = getattr(model, "sparsegraph", None)
    if not isinstance(adapter, SparseGraphAdapter):
        raise ValueError(f"{type(model).__name__} was not prepared by sparsegraph.hf.apply")
    for h in adapter._hooks:
        h.remove()
    for m in model.modules():
        if hasattr(m, "_sparsegraph_layer"):
            del m._sparsegraph_layer
    del model.sparsegraph
    if hasattr(model, "_sparsegraph_calls_before"):
        del model._sparsegraph_calls_before
    target = attn_implementation or adapter.previous_implementation or "sdpa"
    if target == ATTN_NAME:
        target = "sdpa"
    model.set_attn_implementation(target)
