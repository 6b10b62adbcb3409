"""Sequence to sequence: a sparse encoder and a full-attention causal decoder with cross attention.

The shape of BigBird-Pegasus (Zaheer et al. 2020) and LED (Beltagy et al. 2020): the long input
goes through the sparse :class:`~experiments.models.encoder.Encoder` (any pattern); the short
output is produced by a pre-LN Transformer decoder (Vaswani et al. 2017) whose layers are::

    y = y + Dropout(CausalSelfAttention(LN(y)))      # query t attends targets 0..t
    y = y + Dropout(CrossAttention(LN(y), memory))   # every target attends every real encoder state
    y = y + Dropout(W_2 GELU(W_1 LN(y)))

and a final LayerNorm. The decoder's attention is dense and short, so it uses
``torch.nn.functional.scaled_dot_product_attention`` (SDPA), not ``kernels.attention``: causal
self-attention via ``is_causal`` (training) or a key/value cache (decoding), cross attention with
the encoder's padding as a boolean mask. ``memory`` is every encoder state (ETC global tokens, CLS,
tokens) except padding.

Greedy decoding (:meth:`Seq2Seq.generate`) is incremental: each step runs the decoder on the one
new token, with the self-attention keys/values of the earlier steps cached and the cross-attention
keys/values computed once per call. ``incremental=False`` recomputes the whole prefix every step
instead (slower; the tests check both give the same tokens).

Target sequences are padded on the right (causal attention never looks at later positions, so
right padding cannot affect real positions); mask padded targets out of the loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from sparsegraph.experiments.models.config import Seq2SeqConfig
from sparsegraph.experiments.models.encoder import Encoder, init_weights

__all__ = ["Seq2Seq", "DecoderLayer"]

KV = tuple[torch.Tensor, torch.Tensor]


class DecoderLayer(nn.Module):
    """One pre-LN decoder layer: causal self-attention, cross attention, GELU MLP."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, eps: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.ln1 = nn.LayerNorm(d_model, eps=eps)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.self_out = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model, eps=eps)
        self.q_cross = nn.Linear(d_model, d_model)
        self.kv_cross = nn.Linear(d_model, 2 * d_model)
        self.cross_out = nn.Linear(d_model, d_model)
        self.ln3 = nn.LayerNorm(d_model, eps=eps)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(d_ff, d_model))
        self.drop = nn.Dropout(dropout)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

    @staticmethod
    def _merge(x: torch.Tensor) -> torch.Tensor:
        b, h, t, dh = x.shape
        return x.transpose(1, 2).reshape(b, t, h * dh)

    def cross_kv(self, memory: torch.Tensor) -> KV:
        """Cross-attention keys and values ``[batch, heads, S, head_dim]`` of the encoder memory."""
        k, v = self.kv_cross(memory).chunk(2, dim=-1)
        return self._heads(k), self._heads(v)

    def forward(self, y: torch.Tensor, cross: KV, memory_mask: torch.Tensor | None,
                past: KV | None = None) -> tuple[torch.Tensor, KV]:
        """Run the layer on ``y`` ``[batch, t, d]``.

        Args:
            cross: :meth:`cross_kv` of the memory.
            memory_mask: bool ``[batch, 1, 1, S]``, True = the key takes part (SDPA's convention),
                or ``None`` when no memory position is padding.
            past: cached self-attention ``(k, v)`` of earlier positions (decoding), or ``None``
                (training: causal over ``y``).

        Returns ``(y, (k, v))`` with the self-attention keys/values including ``y``'s.
        """
        q, k, v = (self._heads(t) for t in self.qkv(self.ln1(y)).chunk(3, dim=-1))
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
            # the new queries are the last positions: each sees all cached keys and the new keys
            # up to itself
            t, s = q.shape[2], k.shape[2]
            causal = torch.ones(t, s, dtype=torch.bool, device=y.device).tril(s - t)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=causal)
        else:
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y + self.drop(self.self_out(self._merge(att)))
        qc = self._heads(self.q_cross(self.ln2(y)))
        att = F.scaled_dot_product_attention(qc, cross[0], cross[1], attn_mask=memory_mask)
        y = y + self.drop(self.cross_out(self._merge(att)))
        y = y + self.drop(self.mlp(self.ln3(y)))
        return y, (k, v)


class Seq2Seq(nn.Module):
    """Sparse encoder, full causal decoder, tied output embeddings.

    ``forward(src, tgt_in, src_padding_mask=None) -> logits [batch, T, target_vocab]`` with
    teacher forcing: ``tgt_in`` is the target shifted right (starting with BOS); the loss compares
    the logits with the unshifted target. ``generate(src, max_len, bos, eos)`` decodes greedily.

    With a shared vocabulary (``Seq2SeqConfig.tgt_vocab_size is None``) the encoder's token
    embedding is also the decoder's input embedding and output projection (as in BART and Pegasus);
    otherwise the decoder's own embedding is tied to its output projection.
    """

    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"config must be a Seq2SeqConfig, got {type(config).__name__}")
        self.config = config
        c = config.encoder
        self.encoder = Encoder(c)
        self.tgt_token = None if config.shared_vocab else nn.Embedding(config.target_vocab, c.d_model)
        self.tgt_position = nn.Embedding(config.max_tgt_len, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList(
            DecoderLayer(c.d_model, c.n_heads, c.d_ff, c.dropout, c.layer_norm_eps)
            for _ in range(config.decoder_layers)
        )
        self.ln_f = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.logit_bias = nn.Parameter(torch.zeros(config.target_vocab))
        init_weights(self.layers, c.init_std)
        init_weights(self.ln_f, c.init_std)
        nn.init.normal_(self.tgt_position.weight, 0.0, c.init_std)
        if self.tgt_token is not None:
            nn.init.normal_(self.tgt_token.weight, 0.0, c.init_std)

    @property
    def target_embedding(self) -> torch.Tensor:
        """The decoder's input embedding = output projection weight ``[target_vocab, d_model]``."""
        return self.encoder.token.weight if self.tgt_token is None else self.tgt_token.weight

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """Per-layer gradient checkpointing in the encoder and the decoder."""
        self.encoder.set_gradient_checkpointing(enabled)

    def encode(self, src: torch.Tensor, src_padding_mask: torch.Tensor | None = None
               ) -> tuple[list[KV], torch.Tensor | None]:
        """Run the encoder; return per decoder layer the cross-attention ``(k, v)``, and the
        SDPA memory mask (``None`` when nothing is padding)."""
        out = self.encoder(src, src_padding_mask)
        memory = out.states
        keep = ~out.key_padding_mask
        mask = None if bool(keep.all()) else keep[:, None, None, :]
        return [layer.cross_kv(memory) for layer in self.layers], mask

    def _check_tgt(self, tgt: torch.Tensor, start: int = 0) -> None:
        if not isinstance(tgt, torch.Tensor) or tgt.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"tgt_in must be an integer tensor, got {getattr(tgt, 'dtype', type(tgt).__name__)}")
        if tgt.dim() != 2 or tgt.shape[1] == 0:
            raise ValueError(f"tgt_in must have shape [batch, T >= 1], got {tuple(tgt.shape)}")
        if start + tgt.shape[1] > self.config.max_tgt_len:
            raise ValueError(
                f"target length {start + tgt.shape[1]} exceeds Seq2SeqConfig.max_tgt_len="
                f"{self.config.max_tgt_len}"
            )
        lo, hi = int(tgt.min()), int(tgt.max())
        if lo < 0 or hi >= self.config.target_vocab:
            raise ValueError(
                f"target ids must lie in [0, {self.config.target_vocab}), got values in [{lo}, {hi}]"
            )

    def decode(self, tgt_in: torch.Tensor, cross: list[KV], memory_mask: torch.Tensor | None,
               past: list[KV] | None = None, start: int = 0) -> tuple[torch.Tensor, list[KV]]:
        """Decoder logits for ``tgt_in`` (positions ``start ..``) and the new self-attention caches."""
        self._check_tgt(tgt_in, start)
        pos = torch.arange(start, start + tgt_in.shape[1], device=tgt_in.device)
        y = self.drop(F.embedding(tgt_in.long(), self.target_embedding) + self.tgt_position(pos))
        ckpt = (self.encoder.gradient_checkpointing and self.training and torch.is_grad_enabled()
                and past is None)
        caches: list[KV] = []
        for i, layer in enumerate(self.layers):
            p = None if past is None else past[i]
            if ckpt:
                y, kv = checkpoint(layer, y, cross[i], memory_mask, p, use_reentrant=False)
            else:
                y, kv = layer(y, cross[i], memory_mask, p)
            caches.append(kv)
        return F.linear(self.ln_f(y), self.target_embedding, self.logit_bias), caches

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor,
                src_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        if tgt_in.shape[0] != src.shape[0]:
            raise ValueError(f"src and tgt_in must have the same batch size, got {src.shape[0]} and {tgt_in.shape[0]}")
        cross, mask = self.encode(src, src_padding_mask)
        return self.decode(tgt_in, cross, mask)[0]

    @torch.no_grad()
    def generate(self, src: torch.Tensor, max_len: int, bos: int, eos: int,
                 src_padding_mask: torch.Tensor | None = None, pad: int | None = None,
                 incremental: bool = True) -> torch.Tensor:
        """Greedy decoding: ``y_t = argmax p(y_t | y_<t, src)`` starting from ``bos``.

        Returns ``[batch, T]`` generated ids (without ``bos``), ``T <= max_len``: it stops when every
        sequence has produced ``eos`` (kept) or after ``max_len`` tokens; positions after a
        sequence's ``eos`` hold ``pad`` (default: the encoder's ``pad_id``, else ``eos``). Runs under
        ``no_grad``; call ``model.eval()`` first unless dropout during decoding is wanted.
        """
        for name, value in (("max_len", max_len), ("bos", bos), ("eos", eos)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
        if not 1 <= max_len <= self.config.max_tgt_len:
            raise ValueError(f"max_len must lie in [1, max_tgt_len={self.config.max_tgt_len}], got {max_len}")
        v = self.config.target_vocab
        for name, value in (("bos", bos), ("eos", eos)):
            if not 0 <= value < v:
                raise ValueError(f"{name} must lie in [0, {v}), got {value}")
        if pad is None:
            pad = self.config.encoder.pad_id if self.config.encoder.pad_id is not None else eos
        if isinstance(pad, bool) or not isinstance(pad, int) or not 0 <= pad < v:
            raise ValueError(f"pad must be an int in [0, {v}), got {pad!r}")
        cross, mask = self.encode(src, src_padding_mask)
        bsz = src.shape[0]
        prefix = torch.full((bsz, 1), bos, dtype=torch.long, device=src.device)
        out = torch.empty(bsz, 0, dtype=torch.long, device=src.device)
        done = torch.zeros(bsz, dtype=torch.bool, device=src.device)
        past = None
        for t in range(max_len):
            if incremental:
                step_in = prefix[:, -1:] if t else prefix
                logits, past = self.decode(step_in, cross, mask, past, start=t)
            else:
                logits, _ = self.decode(prefix, cross, mask)
            nxt = logits[:, -1].argmax(dim=-1)
            nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
            out = torch.cat([out, nxt[:, None]], dim=1)
            done = done | (nxt == eos)
            if bool(done.all()):
                break
            prefix = torch.cat([prefix, nxt[:, None]], dim=1)
        return out
