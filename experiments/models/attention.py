"""Sparse self-attention over a pattern's graph, and the per-layer layout cache.

A layer's attention graph is ``patterns.get(spec).build(n, heads=H, layer=i, seed=graph_seed)``
for the (block-padded) sequence length ``n``; it is compiled once per length to a
``sparsegraph.layout.BlockLayout`` and converted once per device to a ``kernels.DeviceLayout``.
Both live in a :class:`LayoutCache` owned by the layer (never module-level), so the cache dies with
the model and two models never share state.

The compiled layouts' hashes are part of the layer's ``state_dict`` (``nn.Module`` extra state): a
checkpoint records exactly which graphs the weights were trained on, and loading it rebuilds those
graphs from the pattern spec and seed and checks the hashes. A different graph on load (another
pattern library version, another seed) is an error, never a silent rebuild.

Evaluation uses the same graphs as training: nothing here depends on ``self.training`` (unlike
Hugging Face's BigBird, which drops its random blocks in eval mode). A pattern that cannot be built
for a length raises; the layer never falls back to full attention for short inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from sparsegraph import kernels
from sparsegraph import patterns
from sparsegraph.graph import AttentionGraph, Provenance
from sparsegraph.layout import BlockLayout, compile as compile_layout

__all__ = ["LayoutCache", "LayoutStore", "SparseSelfAttention", "RotaryEmbedding", "GRID_ROTARY_BASE",
           "dense_layout"]

#: Version of the extra state a layer saves; bumped when its meaning changes.
_STATE_VERSION = 1


def dense_layout(n: int, block_size: int, num_global: int = 0) -> BlockLayout:
    """The layout of full attention on ``n`` positions, built block by block.

    Equal (same hash) to ``compile(patterns.build("full", n), block_size)``, but built without the
    token-level graph, whose ``n**2`` edges cost gigabytes at n = 16K. A tail block (``n`` not a
    multiple of ``block_size``) is partial, as the compiler makes it.
    """
    nb = -(-n // block_size)
    tail = n - (nb - 1) * block_size  # valid positions in the last block
    r, c = np.divmod(np.arange(nb * nb, dtype=np.int64), nb)
    partial = (r == nb - 1) | (c == nb - 1) if tail != block_size else np.zeros(nb * nb, bool)
    mask_idx = np.full(nb * nb, -1, np.int64)
    mask_idx[partial] = np.arange(int(partial.sum()))
    words = -(-block_size // 32)
    masks = np.zeros((int(partial.sum()), block_size, words), np.int32)
    if partial.any():
        valid = np.zeros((block_size, block_size), bool)
        for p, (rr, cc) in enumerate(zip(r[partial], c[partial])):
            rows = tail if rr == nb - 1 else block_size
            cols = tail if cc == nb - 1 else block_size
            valid[:] = False
            valid[:rows, :cols] = True
            bits = np.packbits(valid, axis=1, bitorder="little")  # [block, block/8] uint8
            pad = np.zeros((block_size, words * 4), np.uint8)
            pad[:, : bits.shape[1]] = bits
            masks[p] = pad.view("<i4")
    row_ptr = np.arange(0, nb * nb + 1, nb, dtype=np.int64)
    col_perm = (c * nb + r)  # entry (r, c) sits at c * nb + r in column order ...
    order = np.argsort(col_perm, kind="stable")  # ... so the column-ordered entries are these
    return BlockLayout(
        n_q=n, n_k=n, block_q=block_size, block_k=block_size, heads=1, graph_heads=1,
        num_global=num_global, row_ptr=row_ptr, col_idx=c, mask_idx=mask_idx, masks=masks,
        col_ptr=row_ptr.copy(), row_idx=r[order], col_perm=order,
        provenance=Provenance(name="full", params={}, spec="full"),
    )


class LayoutStore:
    """One model's device layouts, shared between its layers by layout hash.

    Layers whose graphs are equal (full attention, windows: every deterministic pattern that does
    not depend on the layer) then share one ``DeviceLayout`` and whatever the kernels derive from
    it and cache on it (a dense backend caches an ``n x n`` mask: once per model, not per layer).
    Owned by the model (never module-level).
    """

    def __init__(self) -> None:
        self._layouts: dict[tuple[str, torch.device], kernels.DeviceLayout] = {}
        self._compiled: dict[str, BlockLayout] = {}

    def intern(self, layout: BlockLayout) -> BlockLayout:
        """The first-seen layout equal to ``layout`` (same hash): one copy of its arrays."""
        return self._compiled.setdefault(layout.hash, layout)

    def get(self, layout: BlockLayout, device: torch.device) -> kernels.DeviceLayout:
        key = (layout.hash, torch.device(device))
        if key not in self._layouts:
            self._layouts[key] = kernels.prepare(layout, device)
        return self._layouts[key]


class LayoutCache:
    """The compiled layouts of one attention layer, keyed by the (padded) regular length ``n``.

    Args:
        spec: the layer's pattern spec string.
        layer: the layer index (passed to the pattern: patterns may differ per layer).
        heads: the model's head count (passed to the pattern: patterns may differ per head).
        seed: the graph seed.
        block_size: the layouts' block size.
        global_tokens: the ETC global tokens ``g`` the graph must have (positions ``0..g-1``).
        store: the model's :class:`LayoutStore` (device layouts shared between layers); a private
            one when omitted.

    ``layout(n)`` is the ``BlockLayout`` of the graph on ``g + n`` positions; ``device_layout(n,
    device)`` its tensors on ``device``. A graph is built the first time its length is asked for
    and never again. ``corner(n, t)`` is that same graph restricted to its first ``t`` positions
    (queries and keys): what attention over the graph for ``n`` computes at those positions when
    every later position is a padded key, so a batch padded from position ``t`` on can run on
    ``t`` positions and get the same result (the classifiers do, see ``Encoder.forward``).
    """

    def __init__(self, spec: str, *, layer: int, heads: int, seed: int, block_size: int,
                 global_tokens: int = 0, store: LayoutStore | None = None) -> None:
        self.spec = spec
        self.pattern = patterns.get(spec)
        self.layer = layer
        self.heads = heads
        self.seed = seed
        self.block_size = block_size
        self.global_tokens = global_tokens
        self._layouts: dict[int, BlockLayout] = {}
        self._corners: dict[tuple[int, int], BlockLayout] = {}
        self.store = store if store is not None else LayoutStore()

    def _build(self, n: int) -> BlockLayout:
        # Full attention needs no token-level graph (n**2 edges); the layout is the same.
        if self.pattern.spec == "full" and self.global_tokens == 0:
            return dense_layout(n, self.block_size)
        try:
            graph = self.pattern.build(n, heads=self.heads, layer=self.layer, seed=self.seed)
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"pattern {self.spec!r} cannot be built for sequence length n={n} (layer "
                f"{self.layer}, heads={self.heads}): {e}. The model does not fall back to full "
                "attention; choose a pattern valid at this length (or pad inputs longer)"
            ) from e
        g = self.global_tokens
        if graph.num_global != g:
            raise ValueError(
                f"pattern {self.spec!r} (layer {self.layer}) built a graph with num_global="
                f"{graph.num_global} at n={n}, but the model has {g} global tokens (what the "
                "pattern declared, or built at the model's max_len): a pattern's ETC global "
                "tokens must not depend on the length"
            )
        if (graph.n_q, graph.n_k) != (g + n, g + n):
            raise ValueError(
                f"pattern {self.spec!r} built a {graph.n_q}x{graph.n_k} graph for n={n}; a self-"
                f"attention graph on {g} global + {n} regular tokens must be {g + n}x{g + n}"
            )
        self.check_graph(graph)
        return compile_layout(graph, self.block_size)

    def check_graph(self, graph: Any) -> None:
        """Called with every graph before it is compiled; a subclass raises ``ValueError`` for a
        graph its model cannot run (the decoder's cache refuses edges to later keys)."""

    def layout(self, n: int) -> BlockLayout:
        """The compiled layout for ``n`` regular positions (built and cached on first use)."""
        if n not in self._layouts:
            self._layouts[n] = self.store.intern(self._build(n))
        return self._layouts[n]

    def device_layout(self, n: int, device: torch.device) -> kernels.DeviceLayout:
        """``layout(n)`` as tensors on ``device`` (converted once per device)."""
        return self.store.get(self.layout(n), device)

    def corner(self, n: int, t: int) -> BlockLayout:
        """The layout of the graph for ``n`` regular positions restricted to its first ``t``
        positions (``0 < t <= g + n``), built from ``layout(n)`` and cached: the same graph, never
        one built for a shorter length (a random pattern draws another graph at another ``n``)."""
        g = self.global_tokens
        if isinstance(t, bool) or not isinstance(t, int) or not 0 < t <= g + n:
            raise ValueError(f"t={t!r}: expected an int in [1, g + n = {g + n}] (the leading "
                             f"positions of the graph for n={n})")
        if t == g + n:
            return self.layout(n)
        if (n, t) not in self._corners:
            full = self.layout(n)
            if self.pattern.spec == "full" and g == 0:
                lay = dense_layout(t, self.block_size)
            else:
                graph = full.to_graph()
                mats = [m[:t, :t] for m in graph.adjacencies()]
                lay = compile_layout(AttentionGraph(mats, heads=graph.heads, num_global=g,
                                                    provenance=graph.provenance), self.block_size)
            self._corners[(n, t)] = self.store.intern(lay)
        return self._corners[(n, t)]

    def hashes(self) -> dict[int, str]:
        """``{n: layout hash}`` of every layout built so far."""
        return {n: lay.hash for n, lay in sorted(self._layouts.items())}

    # ------------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        """What a checkpoint records: the graph's identity and the hashes of the built layouts."""
        return {
            "version": _STATE_VERSION, "pattern": self.pattern.spec, "graph_seed": self.seed,
            "layer": self.layer, "heads": self.heads, "block_size": self.block_size,
            "global_tokens": self.global_tokens,
            "layouts": {str(n): h for n, h in self.hashes().items()},
        }

    def load_state(self, state: Any) -> None:
        """Check a recorded state against this cache, then rebuild and verify every layout.

        Raises ``ValueError`` when the checkpoint's pattern, seed, layer, heads, block size or
        global tokens differ from this layer's, or when a rebuilt layout's hash differs from the
        recorded one (the pattern now builds a different graph than the one trained on).
        """
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise ValueError(
                f"layer {self.layer}: attention state must be a dict with version {_STATE_VERSION}, "
                f"got {state!r:.200}"
            )
        mine = self.state()
        for key in ("pattern", "graph_seed", "layer", "heads", "block_size", "global_tokens"):
            if state.get(key) != mine[key]:
                raise ValueError(
                    f"layer {self.layer}: the checkpoint's attention {key} is {state.get(key)!r} but "
                    f"this model's is {mine[key]!r}; build the model with the checkpoint's config"
                )
        layouts = state.get("layouts", {})
        built: dict[int, BlockLayout] = {}
        for key, expected in layouts.items():
            n = int(key)
            lay = self._layouts[n] if n in self._layouts else self._build(n)
            if lay.hash != expected:
                raise ValueError(
                    f"layer {self.layer}: pattern {self.pattern.spec!r} with seed {self.seed} builds "
                    f"a different graph at n={n} than the checkpoint was trained on (layout hash "
                    f"{lay.hash[:16]}..., checkpoint {str(expected)[:16]}...). The pattern's "
                    "definition changed since; refusing to run the weights on another graph"
                )
            built[n] = self.store.intern(lay)
        self._layouts.update(built)


#: The rotary base of ``position="rotary_2d"``: each axis is an image side (28-256 pixels), not a
#: sequence of thousands. With a head of 16 an axis has 4 pairs; at base 100 the slowest turns by
#: 100**(-3/4) * 32 = 1.0 radian across a 32-pixel image, at the 1-D base of 10,000 by 0.03.
GRID_ROTARY_BASE = 100.0


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (Su et al. 2021, RoFormer) applied to queries and keys.

    Pair ``(x[2i], x[2i+1])`` of a head vector at position ``p`` is rotated by the angle
    ``p * base**(-2i/d)``; then ``q_p . k_s`` depends on ``p - s`` only: a relative position
    encoding that needs no change to the attention kernel. Holds no parameters or state.
    """

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.base = base

    def angles(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cos, sin)`` of shape ``[len(positions), head_dim / 2]`` for integer ``positions``."""
        # float64: in float32 the angle p * theta loses ~1e-3 rad at p = 16K
        inv = self.base ** (-torch.arange(0, self.head_dim, 2, device=positions.device,
                                          dtype=torch.float64) / self.head_dim)
        ang = positions.to(torch.float64)[:, None] * inv[None, :]
        return ang.cos().to(dtype), ang.sin().to(dtype)

    def grid_angles(self, rows: torch.Tensor, cols: torch.Tensor, dtype: torch.dtype
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Axial 2-D rotary: ``(cos, sin)`` ``[len(rows), head_dim / 2]`` for pixels at integer
        ``(rows, cols)``.

        The first ``head_dim / 4`` pairs turn by ``row * base**(-4i/head_dim)``, the others by
        ``col * base**(-4i/head_dim)`` (``i = 0 .. head_dim/4 - 1``), so ``q_p . k_s`` depends on
        the offset ``(row_p - row_s, col_p - col_s)`` only: pixels that are neighbours in the image
        are neighbours to the attention, whether they sit in one row or one above the other.
        """
        if self.head_dim % 4:
            raise ValueError(f"grid_angles needs head_dim divisible by 4, got {self.head_dim}")
        quarter = self.head_dim // 4
        inv = self.base ** (-torch.arange(quarter, device=rows.device, dtype=torch.float64)
                            / quarter)
        ang = torch.cat([rows.to(torch.float64)[:, None] * inv[None, :],
                         cols.to(torch.float64)[:, None] * inv[None, :]], dim=1)
        return ang.cos().to(dtype), ang.sin().to(dtype)

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """Rotate ``x`` ``[..., n, head_dim]`` by ``(cos, sin)`` ``[n, head_dim/2]``."""
        x1, x2 = x[..., 0::2], x[..., 1::2]
        out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
        return out.flatten(-2)


class SparseSelfAttention(nn.Module):
    """Multi-head self-attention whose edges are one layer's attention graph.

    ``out = W_o concat_h softmax_{j in N_h(i)}(q_i . k_j / sqrt(d_h)) v_j`` where ``N_h(i)`` is
    query ``i``'s key set in head ``h`` of the layer's graph, minus padded keys (Vaswani et al.
    2017; sparse graphs as in BigBird, Zaheer et al. 2020). Computed by ``kernels.attention`` on
    the layer's cached layout.

    Args:
        d_model, n_heads: width and heads.
        cache: the layer's :class:`LayoutCache`.
        backend: the ``kernels.attention`` backend.
    """

    def __init__(self, d_model: int, n_heads: int, cache: LayoutCache, backend: str) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.cache = cache
        self.backend = backend

    def forward(self, x: torch.Tensor, n: int, key_padding_mask: torch.Tensor | None = None,
                rotary: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Attend over the graph for ``n`` regular positions.

        Args:
            x: ``[batch, t, d_model]`` (``g`` ETC global tokens first): the first ``t <= g + n``
                positions of the graph; with ``t < g + n`` the later positions count as padded
                keys (:meth:`LayoutCache.corner`).
            n: the regular (block-padded) length the graph is built for.
            key_padding_mask: bool ``[batch, t]``, True = padding key (receives no attention).
            rotary: ``(cos, sin)`` for the ``t`` positions when rotary embeddings are used.
        """
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if rotary is not None:
            # in q's dtype: under autocast q is bfloat16 and float32 angles would promote q and k
            # but not v
            cos, sin = (t.to(q.dtype) for t in rotary)
            q = RotaryEmbedding.rotate(q, cos, sin)
            k = RotaryEmbedding.rotate(k, cos, sin)
        g = self.cache.global_tokens
        if t == g + n:
            layout = self.cache.device_layout(n, x.device)
        else:
            layout = self.cache.store.get(self.cache.corner(n, t), x.device)
        out = kernels.attention(q, k, v, layout, key_padding_mask=key_padding_mask,
                                backend=self.backend)
        return self.out(out.transpose(1, 2).reshape(b, t, d))

    # The graph identity and layout hashes travel with the weights (see the module docstring).
    def get_extra_state(self) -> dict[str, Any]:
        return self.cache.state()

    def set_extra_state(self, state: Any) -> None:
        self.cache.load_state(state)
