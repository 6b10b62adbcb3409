"""The pre-LayerNorm Transformer encoder with pluggable sparse attention graphs.

Layer ``i`` (Vaswani et al. 2017, with the LayerNorm moved before each sublayer as in Xiong et al.
2020, "On Layer Normalization in the Transformer Architecture")::

    x = x + Dropout(SparseSelfAttention_i(LN(x)))     # graph: pattern(layer i) on g + n positions
    x = x + Dropout(W_2 GELU(W_1 LN(x)))

and a final LayerNorm after the last layer. The sequence the layers see is::

    [g ETC global tokens] [CLS]? [input tokens] [block padding]
     learned embeddings    learned  token + position   masked

``g = ModelConfig.global_tokens`` (BigBird-ETC, Zaheer et al. 2020: the graph's positions
``0..g-1``); the CLS token is prepended when ``pooling == "cls"``; the regular part (CLS + tokens)
is padded to ``n``, a multiple of the layout block size, and the padding (and any per-example
padding of the input) is masked as keys, so it receives no attention. Outputs at padded and
extra positions are dropped from ``hidden``.

Positions (``ModelConfig.position``): learned or sinusoidal vectors added to the input tokens'
embeddings, or rotary angles applied to every layer's queries and keys: over the 1-D sequence
(``rotary``; CLS at 0, input token ``p`` at ``p + 1``, global tokens unrotated), or over the image
grid (``rotary_2d``; input token ``p`` at ``(p // grid_width + 1, p % grid_width + 1)``, CLS and
global tokens at the unrotated ``(0, 0)``).

Options for pretrained BERT / RoBERTa / BigBird weights (``ModelConfig``; off by default, and then
the model is exactly the one above): ``norm="post"`` (``x = LN(x + Dropout(sublayer(x)))`` per
sublayer and no final LayerNorm, Vaswani et al. 2017), ``embedding_norm`` (a LayerNorm on the
summed embeddings), ``activation="gelu_tanh"``, ``pooling="first"`` (no CLS is prepended; the
first input token pools), ``pooler="tanh"`` and ``type_vocab_size`` (token-type embeddings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from sparsegraph.experiments.models.attention import (GRID_ROTARY_BASE, LayoutCache, LayoutStore,
                                                     RotaryEmbedding, SparseSelfAttention)
from sparsegraph.experiments.models.config import ModelConfig
from sparsegraph.layout import BlockLayout

__all__ = ["Encoder", "EncoderLayer", "EncoderOutput", "init_weights", "sinusoidal_positions"]


@dataclass
class EncoderOutput:
    """What :meth:`Encoder.forward` returns.

    Attributes:
        hidden: ``[batch, L, d_model]``, the final states at the ``L`` input tokens.
        pooled: ``[batch, d_model]``, the pooled sequence vector (``ModelConfig.pooling``).
        global_hidden: ``[batch, g, d_model]``, the ETC global tokens' final states (``g`` may be 0).
        states: ``[batch, g + n, d_model]``, the final states at every position the layers saw
            (global tokens, CLS, input tokens, block padding).
        key_padding_mask: bool ``[batch, g + n]``, True at the positions of ``states`` that are
            padding (what the attention masked).
        token_offset: index in ``states`` of the first input token (``g + 1`` with CLS, else ``g``).
        padding_mask: bool ``[batch, L]``, True at padded input tokens.
    """

    hidden: torch.Tensor
    pooled: torch.Tensor
    global_hidden: torch.Tensor
    states: torch.Tensor
    key_padding_mask: torch.Tensor
    token_offset: int
    padding_mask: torch.Tensor


def sinusoidal_positions(length: int, d_model: int, device: torch.device | None = None,
                         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Fixed position encodings ``[length, d_model]`` (Vaswani et al. 2017):
    ``PE[p, 2i] = sin(p / 10000^(2i/d))``, ``PE[p, 2i+1] = cos(p / 10000^(2i/d))``."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    inv = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float32)
                    * (-math.log(10000.0) / d_model))
    pe = torch.zeros(length, d_model, device=device, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(pos * inv)
    pe[:, 1::2] = torch.cos(pos * inv)[:, : d_model // 2]
    return pe.to(dtype)


def init_weights(module: nn.Module, std: float) -> None:
    """BERT initialisation: linear and embedding weights ~ N(0, std), biases 0, LayerNorm (1, 0)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class EncoderLayer(nn.Module):
    """One pre-LN layer: sparse self-attention then a GELU MLP, each with a residual."""

    def __init__(self, config: ModelConfig, layer: int, store: LayoutStore | None = None) -> None:
        super().__init__()
        c = config
        cache = LayoutCache(
            c.layer_pattern(layer), layer=layer, heads=c.n_heads, seed=c.attention.graph_seed,
            block_size=c.attention.block_size, global_tokens=c.global_tokens, store=store,
        )
        self.post_norm = c.norm == "post"
        self.ln1 = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.attn = SparseSelfAttention(c.d_model, c.n_heads, cache, c.attention.backend)
        self.ln2 = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        act = nn.GELU(approximate="tanh") if c.activation == "gelu_tanh" else nn.GELU()
        self.mlp = nn.Sequential(nn.Linear(c.d_model, c.d_ff), act, nn.Dropout(c.dropout),
                                 nn.Linear(c.d_ff, c.d_model))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor, n: int, key_padding_mask: torch.Tensor | None,
                rotary: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if self.post_norm:  # BERT's order: x = LN(x + sublayer(x))
            x = self.ln1(x + self.drop(self.attn(x, n, key_padding_mask, rotary)))
            return self.ln2(x + self.drop(self.mlp(x)))
        x = x + self.drop(self.attn(self.ln1(x), n, key_padding_mask, rotary))
        return x + self.drop(self.mlp(self.ln2(x)))


class Encoder(nn.Module):
    """The encoder: embeddings, ``n_layers`` :class:`EncoderLayer`, final LayerNorm, pooling.

    ``forward(input_ids, padding_mask=None, token_type_ids=None) -> EncoderOutput``.
    ``padding_mask`` is bool ``[batch, L]`` with **True = padding** (the convention of
    ``kernels.attention``'s ``key_padding_mask``); without it, tokens equal to ``config.pad_id`` are
    padding. ``token_type_ids`` (``[batch, L]`` in ``[0, type_vocab_size)``, default 0) needs
    ``type_vocab_size > 0``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if not isinstance(config, ModelConfig):
            raise TypeError(f"config must be a ModelConfig, got {type(config).__name__}")
        c = config
        self.config = c
        self.gradient_checkpointing = c.gradient_checkpointing
        self.token = nn.Embedding(c.vocab_size, c.d_model)
        n_pos = c.max_len + int(c.cls_token)
        self.position = nn.Embedding(n_pos, c.d_model) if c.position == "learned" else None
        self.cls = nn.Parameter(torch.zeros(1, c.d_model)) if c.cls_token else None
        self.globals = nn.Parameter(torch.zeros(c.global_tokens, c.d_model)) if c.global_tokens else None
        self.rotary = (RotaryEmbedding(c.head_dim) if c.position == "rotary" else
                       RotaryEmbedding(c.head_dim, GRID_ROTARY_BASE) if c.position == "rotary_2d"
                       else None)
        # optional modules are created only when enabled, so default models build (and draw their
        # initial weights) exactly as before these options existed
        self.token_type = nn.Embedding(c.type_vocab_size, c.d_model) if c.type_vocab_size else None
        self.emb_norm = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps) if c.embedding_norm else None
        self.drop = nn.Dropout(c.dropout)
        store = LayoutStore()  # equal layouts of different layers share device tensors
        self.layers = nn.ModuleList(EncoderLayer(c, i, store) for i in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps) if c.norm == "pre" else nn.Identity()
        self.pooler = nn.Linear(c.d_model, c.d_model) if c.pooler == "tanh" else None
        init_weights(self, c.init_std)
        for p in (self.cls, self.globals):
            if p is not None:
                nn.init.normal_(p, 0.0, c.init_std)

    # ------------------------------------------------------------------ helpers
    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """Turn per-layer gradient checkpointing on or off (``torch.utils.checkpoint``)."""
        if not isinstance(enabled, bool):
            raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
        self.gradient_checkpointing = enabled

    def padded_length(self, length: int) -> int:
        """``n``: the regular length (CLS + ``length`` tokens) rounded up to the block size
        (:meth:`ModelConfig.padded_length`)."""
        return self.config.padded_length(length)

    def layout_hashes(self) -> list[dict[int, str]]:
        """Per layer, ``{n: layout hash}`` of the graphs built so far."""
        return [layer.attn.cache.hashes() for layer in self.layers]

    def graphs(self, length: int) -> list[BlockLayout]:
        """Per layer, the ``BlockLayout`` used for inputs of ``length`` tokens (built if needed)."""
        n = self.padded_length(length)
        return [layer.attn.cache.layout(n) for layer in self.layers]

    def check_inputs(self, input_ids: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
        """Validate the inputs; return the bool padding mask ``[batch, L]`` (True = padding)."""
        c = self.config
        if not isinstance(input_ids, torch.Tensor):
            raise TypeError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
        if input_ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise TypeError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
        if input_ids.dim() != 2 or input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
            raise ValueError(f"input_ids must have shape [batch >= 1, length >= 1], got {tuple(input_ids.shape)}")
        length = input_ids.shape[1]
        if length > c.max_len:
            raise ValueError(f"input length {length} exceeds ModelConfig.max_len={c.max_len}")
        lo, hi = int(input_ids.min()), int(input_ids.max())
        if lo < 0 or hi >= c.vocab_size:
            raise ValueError(
                f"input_ids must lie in [0, vocab_size={c.vocab_size}), got values in [{lo}, {hi}]"
            )
        if padding_mask is None:
            if c.pad_id is None:
                padding_mask = torch.zeros_like(input_ids, dtype=torch.bool)
            else:
                padding_mask = input_ids == c.pad_id
        else:
            if not isinstance(padding_mask, torch.Tensor) or padding_mask.dtype != torch.bool:
                raise TypeError(
                    "padding_mask must be a bool tensor (True = padding), got "
                    f"{getattr(padding_mask, 'dtype', type(padding_mask).__name__)}"
                )
            if padding_mask.shape != input_ids.shape:
                raise ValueError(
                    f"padding_mask must have the shape of input_ids {tuple(input_ids.shape)}, "
                    f"got {tuple(padding_mask.shape)}"
                )
        empty = padding_mask.all(dim=1)
        if bool(empty.any()):
            rows = empty.nonzero().flatten().tolist()[:5]
            raise ValueError(
                f"example(s) {rows} of the batch are all padding (pad_id={c.pad_id}); every example "
                "needs at least one real token"
            )
        return padding_mask

    # ------------------------------------------------------------------ forward
    def forward(self, input_ids: torch.Tensor, padding_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, *,
                skip_padding: bool = False) -> EncoderOutput:
        """Encode ``input_ids`` ``[batch, L]``; see :class:`EncoderOutput`.

        ``skip_padding=True``: the trailing positions that are padding in *every* example of the
        batch are not computed. The layers run on the leading corner of the same graphs (built
        for ``L``; :meth:`LayoutCache.corner`), so ``pooled``, ``global_hidden`` and the hidden
        states of the real tokens are what the full computation gives (to rounding); ``hidden``,
        ``states`` and the masks then end at the last position that is real in some example
        (``hidden`` is ``[batch, L', d]``, ``L' <= L``). A batch of short examples padded to a
        long ``L`` costs what its longest example costs. With dropout the random masks are drawn
        for the smaller tensors, so a trained model differs in its random draws, not its graph.
        """
        c = self.config
        padding_mask = self.check_inputs(input_ids, padding_mask).to(input_ids.device)
        if token_type_ids is not None:
            if self.token_type is None:
                raise ValueError("token_type_ids were given but ModelConfig.type_vocab_size is 0")
            if not isinstance(token_type_ids, torch.Tensor) or token_type_ids.shape != input_ids.shape:
                raise ValueError(
                    f"token_type_ids must be a tensor of the shape of input_ids {tuple(input_ids.shape)}, got "
                    f"{tuple(getattr(token_type_ids, 'shape', ())) or type(token_type_ids).__name__}"
                )
            lo, hi = int(token_type_ids.min()), int(token_type_ids.max())
            if lo < 0 or hi >= c.type_vocab_size:
                raise ValueError(
                    f"token_type_ids must lie in [0, type_vocab_size={c.type_vocab_size}), got values in [{lo}, {hi}]"
                )
        # the graph is always the one for the input length L: skipping padding only shortens the run
        n_graph = self.padded_length(input_ids.shape[1])
        if skip_padding:
            used = int(torch.nonzero(~padding_mask.all(dim=0)).max()) + 1  # check_inputs: >= 1 real token
            if self.padded_length(used) < n_graph:
                input_ids, padding_mask = input_ids[:, :used], padding_mask[:, :used]
                if token_type_ids is not None:
                    token_type_ids = token_type_ids[:, :used]
        bsz, length = input_ids.shape
        dev = input_ids.device
        cls = int(c.cls_token)
        g = c.global_tokens
        n = self.padded_length(length)

        x = self.token(input_ids.long())
        if cls:
            x = torch.cat([self.cls.expand(bsz, 1, -1), x], dim=1)
        real = length + cls
        if c.position == "learned":
            x = x + self.position.weight[:real]
        elif c.position == "sinusoidal":
            x = x + sinusoidal_positions(real, c.d_model, dev, x.dtype)
        if self.token_type is not None:
            types = token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
            tt = self.token_type(types.long())
            x = x + (F.pad(tt, (0, 0, cls, 0)) if cls else tt)  # the prepended CLS gets no type
        if self.emb_norm is not None:
            x = self.emb_norm(x)
        # block padding: zero vectors, masked as keys, their outputs dropped
        x = F.pad(x, (0, 0, 0, n - real))
        if g:
            x = torch.cat([self.globals.expand(bsz, g, -1), x], dim=1)
        x = self.drop(x)

        mask = torch.ones(bsz, g + n, dtype=torch.bool, device=dev)
        mask[:, : g + cls] = False
        mask[:, g + cls: g + real] = padding_mask
        kpm = mask if bool(mask.any()) else None

        rot = None
        if c.position == "rotary_2d":
            # input token p is pixel (p // w, p % w), one-based so that no pixel shares the
            # unrotated (0, 0) of the CLS and global tokens; block padding continues the grid
            # (masked as keys, outputs dropped)
            pixel = torch.arange(n - cls, dtype=torch.long, device=dev)
            zero = torch.zeros(g + cls, dtype=torch.long, device=dev)
            rows = torch.cat([zero, pixel // c.grid_width + 1])
            cols = torch.cat([zero, pixel % c.grid_width + 1])
            rot = self.rotary.grid_angles(rows, cols, x.dtype)
        elif self.rotary is not None:
            pos = torch.cat([torch.zeros(g, dtype=torch.long, device=dev),
                             torch.arange(n, dtype=torch.long, device=dev)])
            rot = self.rotary.angles(pos, x.dtype)

        ckpt = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for layer in self.layers:
            if ckpt:
                x = checkpoint(layer, x, n_graph, kpm, rot, use_reentrant=False)
            else:
                x = layer(x, n_graph, kpm, rot)
        x = self.ln_f(x)

        off = g + cls
        hidden = x[:, off: off + length]
        globals_out = x[:, :g]
        if c.pooling == "cls":
            pooled = x[:, g]
        elif c.pooling == "global":
            pooled = globals_out.mean(dim=1)
        elif c.pooling == "first":
            pooled = hidden[:, 0]
        else:
            keep = (~padding_mask).unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * keep).sum(dim=1) / keep.sum(dim=1)
        if self.pooler is not None:
            pooled = torch.tanh(self.pooler(pooled))
        return EncoderOutput(hidden=hidden, pooled=pooled, global_hidden=globals_out, states=x,
                             key_padding_mask=mask, token_offset=off, padding_mask=padding_mask)
