"""``SparseGraphAttention``: ``nn.MultiheadAttention``'s calling convention over a pattern's graph.

A drop-in for ``torch.nn.MultiheadAttention`` in self-attention (query, key and value of one
length), e.g. as ``nn.TransformerEncoderLayer.self_attn``. Its parameters have the names and
shapes of ``nn.MultiheadAttention``'s (``in_proj_weight``, ``in_proj_bias``, ``out_proj``), so
``load_state_dict(mha.state_dict())`` copies a trained module's weights; with the ``full``
pattern the outputs are the same.

Differences from ``nn.MultiheadAttention``: no attention weights (``need_weights`` must be
False: they are never materialised), no ``attn_mask`` (the graph is the mask; ``is_causal=True``
checks that the graph is causal), no dropout on attention probabilities, no ``kdim``/``vdim``,
no ``add_bias_kv``/``add_zero_attn``.

PyTorch's fused fast paths (``torch._transformer_encoder_layer_fwd`` in
``TransformerEncoderLayer``, nested tensors in ``TransformerEncoder``, both taken in eval mode
without gradients) read ``self_attn.in_proj_weight`` and compute *dense* attention themselves,
never calling ``self_attn``. They are only taken when ``self_attn._qkv_same_embed_dim`` is True;
this module sets it to False, so inside those layers it is always called and always sparse.
"""

from __future__ import annotations

import math
from typing import Any

import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from sparsegraph import kernels
from sparsegraph.experiments.models.attention import LayoutCache

__all__ = ["SparseGraphAttention"]

_BACKENDS = ("auto", "torch", "reference", "dense", "triton")


class SparseGraphAttention(nn.Module):
    """Multi-head self-attention over a pattern's graph, called like ``nn.MultiheadAttention``.

    Args:
        embed_dim: model width ``E``.
        num_heads: heads (``E / num_heads`` must lie in [16, 128], the kernels' head sizes).
        pattern: a pattern spec; the graph of a length-``L`` input is
            ``patterns.get(pattern).build(L, heads=num_heads, layer=layer, seed=seed)``.
        dropout: must be 0 (the kernels do not materialise the probabilities to drop).
        bias: biases on the input and output projections.
        batch_first: inputs and output are ``[batch, L, E]`` (else ``[L, batch, E]``).
        block_size: layout block size (16, 32, 64, 128).
        seed, layer: passed to the pattern (random patterns).
        backend: the ``kernels.attention`` backend.
        device, dtype: of the parameters.
    """

    #: False on purpose: keeps PyTorch's fused dense fast paths from bypassing this module (see the
    #: module docstring). The query, key and value projections do share one ``in_proj_weight``.
    _qkv_same_embed_dim = False

    def __init__(self, embed_dim: int, num_heads: int, pattern: str = "full", *, dropout: float = 0.0,
                 bias: bool = True, batch_first: bool = False, block_size: int = 64, seed: int = 0, layer: int = 0,
                 backend: str = "auto", device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        for name, value in (("embed_dim", embed_dim), ("num_heads", num_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if embed_dim % num_heads:
            raise ValueError(f"num_heads must divide embed_dim={embed_dim}, got {num_heads}")
        head_dim = embed_dim // num_heads
        if not 16 <= head_dim <= 128:
            raise ValueError(
                f"embed_dim / num_heads = {head_dim} must lie in [16, 128] (the kernels' head sizes); got "
                f"embed_dim={embed_dim}, num_heads={num_heads}"
            )
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or dropout != 0:
            raise ValueError(
                f"dropout must be 0, got {dropout!r}: the sparse kernels never materialise attention "
                "probabilities, so they cannot drop them"
            )
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {list(_BACKENDS)}, got {backend!r}")
        if not isinstance(pattern, str):
            raise TypeError(f"pattern must be a spec string, got {type(pattern).__name__}")
        if block_size not in (16, 32, 64, 128) or isinstance(block_size, bool):
            raise ValueError(f"block_size must be one of [16, 32, 64, 128], got {block_size!r}")
        for name, value in (("seed", seed), ("layer", layer)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        factory = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.batch_first = bool(batch_first)
        self.dropout = 0.0
        self.backend = backend
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **factory))
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        try:
            self.cache = LayoutCache(pattern, layer=layer, heads=num_heads, seed=seed, block_size=block_size)
        except (ValueError, TypeError) as e:
            raise ValueError(f"pattern {pattern!r} is not a valid spec: {e}") from None
        self._causal_checked: set[int] = set()
        self._reset_parameters()

    @property
    def pattern(self) -> str:
        return self.cache.spec

    def _reset_parameters(self) -> None:
        # as nn.MultiheadAttention initialises itself
        nn.init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    def _padding(self, mask: torch.Tensor | None, batch: int, n: int, device: torch.device) -> torch.Tensor | None:
        if mask is None:
            return None
        if not isinstance(mask, torch.Tensor):
            raise TypeError(f"key_padding_mask must be a tensor, got {type(mask).__name__}")
        if mask.dim() == 1 and batch == 1:
            mask = mask[None]
        if tuple(mask.shape) != (batch, n):
            raise ValueError(f"key_padding_mask must have shape [batch, L] = [{batch}, {n}], got {list(mask.shape)}")
        if mask.dtype != torch.bool:
            if not mask.is_floating_point():
                raise TypeError(f"key_padding_mask must be bool (True = padding) or float (-inf = padding), got {mask.dtype}")
            pad = torch.isneginf(mask)
            if bool(((mask != 0) & ~pad).any()):
                raise ValueError(
                    "a float key_padding_mask may only hold 0 (attend) and -inf (padding); additive biases "
                    "are not supported"
                )
            mask = pad
        mask = mask.to(device)
        return mask if bool(mask.any()) else None

    def _check_causal(self, n: int) -> None:
        if n in self._causal_checked:
            return
        graph = self.cache.layout(n).to_graph()
        for m in graph.adjacencies():
            upper = sp.triu(m, k=1).tocoo()
            if upper.nnz:
                raise ValueError(
                    f"is_causal=True but pattern {self.pattern!r} has the edge ({int(upper.row[0])}, "
                    f"{int(upper.col[0])}) with key > query at L={n}; use a causal pattern"
                )
        self._causal_checked.add(n)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = False,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, None]:
        """Attend over the graph; returns ``(output, None)`` like ``nn.MultiheadAttention``.

        ``query``/``key``/``value``: ``[L, batch, E]`` (``[batch, L, E]`` with ``batch_first``) or
        unbatched ``[L, E]``, one length ``L``. ``key_padding_mask``: ``[batch, L]``, bool (True =
        padding) or float (``-inf`` = padding).
        """
        if need_weights:
            raise ValueError("need_weights must be False: SparseGraphAttention never materialises attention weights")
        if attn_mask is not None:
            raise ValueError(
                "attn_mask must be None: the pattern's graph is the mask (is_causal=True checks that it is causal)"
            )
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
            if t.is_nested:
                raise ValueError(
                    f"{name} is a nested tensor (nn.TransformerEncoder's fast path, built before self_attn was "
                    "replaced); build the TransformerEncoder with this self_attn, or enable_nested_tensor=False"
                )
        same = query is key and key is value
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query[:, None], key[:, None], value[:, None]
            if self.batch_first:
                query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if query.dim() != 3 or key.shape != query.shape or value.shape != query.shape:
            raise ValueError(
                "query, key and value must have one shape [L, batch, E] ([batch, L, E] with batch_first) or "
                f"[L, E]; got {list(query.shape)}, {list(key.shape)}, {list(value.shape)}"
            )
        if not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        b, n, e = query.shape
        if e != self.embed_dim:
            raise ValueError(f"inputs must have embed_dim={self.embed_dim} features, got {e}")
        kpm = self._padding(key_padding_mask, b, n, query.device)
        if is_causal:
            self._check_causal(n)
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None, None, None)
        shape = (b, n, self.num_heads, self.head_dim)
        if same:
            q, k, v = F.linear(query, self.in_proj_weight, self.in_proj_bias).view(b, n, 3, self.num_heads,
                                                                                   self.head_dim).unbind(2)
        else:
            q, k, v = (F.linear(x, w, bb).view(shape) for x, w, bb in
                       ((query, w_q, b_q), (key, w_k, b_k), (value, w_v, b_v)))
        layout = self.cache.device_layout(n, query.device)
        out = kernels.attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), layout,
                                scale=1.0 / math.sqrt(self.head_dim), key_padding_mask=kpm, backend=self.backend)
        out = self.out_proj(out.transpose(1, 2).reshape(b, n, e))
        if not self.batch_first:
            out = out.transpose(0, 1)
        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)
        return out, None

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, pattern={self.pattern!r}, "
                f"batch_first={self.batch_first}, backend={self.backend!r}")
