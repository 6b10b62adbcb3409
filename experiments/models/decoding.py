"""Autoregressive decoding of a :class:`~experiments.models.decoder.DecoderLM` with a key/value
cache that keeps only the keys the attention graph lets a future query reach.

**What to keep is derived from each layer's graph** (not from the pattern's name). The layer's
pattern is built at a *probe* length ``P`` (the model's ``max_len`` rounded up to the block size,
the context it was trained on) and one of three rules is fitted and verified on every row of it:

- ``window`` -- the graph is *stationary with sinks*: there is an ``s >= 0`` and, per head ``h``,
  a set of sink columns ``Z_h ⊆ [0, s)`` and of offsets ``R_h`` such that every row is exactly
  ``K_h(i) = (Z_h ∩ [0, i]) ∪ {i - d : d ∈ R_h, i - d >= s}``, with ``span = max R + 1 <= P / 2``
  (the rule was seen to hold over at least ``P / 2`` rows past its widest reach). ``Z`` and ``R``
  are read off the last row; the smallest ``s`` that verifies is used. A key ``j >= s`` is never
  read again once the query passes ``j + span - 1``, so the cache is a ring of ``span`` slots
  plus ``s`` sink slots: **constant memory in the generated length**, and decoding may continue
  past ``P`` (the rule is extended: every later row is read off ``Z`` and ``R``). Causal windows,
  dilated windows (``R = {0, d, 2d, ...}``), ``sink_window`` (``s`` = the sinks) and
  ``window_schedule`` fit it when their window is at most ``P / 2``.
- ``full`` -- every row is ``[0, i]`` (full causal attention, or a window wider than ``P / 2``
  that covers the whole probe: the same graph at these lengths): every key is kept.
- ``graph`` -- anything else (e.g. the Sparse Transformer's strided and fixed patterns): the graph
  is built for the whole decoding horizon (prompt + new tokens); key ``j`` is dropped once every
  query that reads it has passed (``last_use[j] = max {i : i -> j}``), and each step attends the
  row of the new position. Memory follows the graph (strided: every key stays).

For ``pattern = "causal"`` the probe graph is not built (``P (P + 1) / 2`` edges): its rows are
``[0, i]`` by definition, the ``full`` rule.

The cached decoder computes the same function as the full forward pass re-run at every step (a
test checks greedy fp32 decoding step by step against it, for every rule), within float rounding:
the full pass runs ``kernels.attention`` (or SDPA) on the padded sequence, the cached step a
masked softmax over the cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from sparsegraph.graph import AttentionGraph

__all__ = ["CacheRule", "derive_rule", "cache_rules", "LayerCache", "DecodingCache", "generate",
           "generate_uncached", "sample_next"]


@dataclass(frozen=True)
class CacheRule:
    """Which past keys one layer keeps and which of them each head reads (module docstring).

    ``mode``: ``window``, ``full`` or ``graph``. ``window``: ``sinks = s``, ``span``,
    ``sink_cols`` bool ``[heads, s]`` and ``offsets`` bool ``[heads, span]`` (offset ``d = i - j``
    read by head ``h``). ``graph``: ``graph`` (built for the horizon) and ``last_use`` per key.
    ``probe``: the probe length the rule was fitted on.
    """

    mode: str
    heads: int
    probe: int
    sinks: int = 0
    span: int = 0
    sink_cols: np.ndarray | None = None
    offsets: np.ndarray | None = None
    graph: AttentionGraph | None = None
    last_use: np.ndarray | None = None

    @property
    def bounded(self) -> bool:
        """True when the cache size does not grow with the generated length."""
        return self.mode == "window"

    def capacity(self, horizon: int) -> int:
        """Cache slots needed to decode up to ``horizon`` positions."""
        if self.mode == "window":
            return self.sinks + self.span
        if self.mode == "full":
            return horizon
        live = _live_counts(self.last_use, horizon)
        return int(live.max()) if live.size else 0

    def describe(self) -> str:
        if self.mode == "window":
            return f"window: {self.sinks} sink(s) + a ring of {self.span} keys"
        if self.mode == "full":
            return "full: every key"
        return f"graph: keys dropped after their last reader (horizon {self.graph.n_q})"


def _live_counts(last_use: np.ndarray, horizon: int) -> np.ndarray:
    """Keys alive after inserting position ``p`` (``j <= p <= last_use[j]``) for every ``p``."""
    last = np.maximum(np.minimum(last_use[:horizon], horizon - 1), np.arange(min(horizon, last_use.size)))
    delta = np.zeros(horizon + 1, dtype=np.int64)
    np.add.at(delta, np.arange(last.size), 1)
    np.add.at(delta, last + 1, -1)
    return np.cumsum(delta)[:horizon]


def _fit_window(mats: list[sp.csr_matrix], probe: int, max_sinks: int = 64) -> tuple[int, int, np.ndarray, np.ndarray] | None:
    """``(s, span, sink_cols, offsets)`` of the stationary-with-sinks rule, or ``None``."""
    r = probe - 1
    last_rows = [m.indices[m.indptr[r]:m.indptr[r + 1]].astype(np.int64) for m in mats]
    candidates = sorted({0} | {int(j) + 1 for row in last_rows for j in row if j < r // 2})
    for s in candidates[: max_sinks + 1]:
        offs = [r - row[row >= s] for row in last_rows]
        span = max(int(o.max()) + 1 if o.size else 1 for o in offs)
        if span > probe // 2:
            continue  # the offsets reach across the probe: not a window (with these sinks)
        sink_cols = np.zeros((len(mats), s), dtype=bool)
        offsets = np.zeros((len(mats), span), dtype=bool)
        ok = True
        for h, (m, row, o) in enumerate(zip(mats, last_rows, offs)):
            sink_cols[h, row[row < s]] = True
            offsets[h, o] = True
            if not _rows_match(m, probe, s, sink_cols[h], offsets[h]):
                ok = False
                break
        if ok:
            return s, span, sink_cols, offsets
    return None


def _rows_match(m: sp.csr_matrix, n: int, s: int, sink: np.ndarray, offsets: np.ndarray) -> bool:
    """Whether every row of ``m`` is ``(sinks ∩ [0, i]) ∪ {i - d : d ∈ offsets, i - d >= s}``."""
    i = np.arange(n, dtype=np.int64)
    rows, cols = [], []
    for z in np.flatnonzero(sink):
        sel = i[i >= z]
        rows.append(sel)
        cols.append(np.full(sel.size, z, dtype=np.int64))
    for d in np.flatnonzero(offsets):
        sel = i[i - d >= s]
        rows.append(sel)
        cols.append(sel - d)
    if not rows:
        return m.nnz == 0
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    expected = sp.csr_matrix((np.ones(r.size, dtype=bool), (r, c)), shape=(n, n))
    expected.sum_duplicates()
    expected.sort_indices()
    got = sp.csr_matrix(m, dtype=bool)
    got.sort_indices()
    return (expected.nnz == got.nnz and np.array_equal(expected.indptr, got.indptr)
            and np.array_equal(expected.indices, got.indices))


def derive_rule(spec: str, *, heads: int, layer: int, seed: int, probe: int, horizon: int | None = None) -> CacheRule:
    """The :class:`CacheRule` of one layer (module docstring). ``horizon``: the longest length
    decoded (needed by the ``graph`` rule, which builds the graph at that length)."""
    from sparsegraph import patterns

    pat = patterns.get(spec)
    if pat.spec == "causal":
        return CacheRule("full", heads, probe)
    g = pat.build(probe, heads=heads, layer=layer, seed=seed)
    mats = [g.adjacency(h) for h in range(heads)]
    fit = _fit_window(mats, probe)
    if fit is not None:
        s, span, sink_cols, offsets = fit
        return CacheRule("window", heads, probe, sinks=s, span=span, sink_cols=sink_cols, offsets=offsets)
    if all(m.nnz == probe * (probe + 1) // 2 for m in mats):  # causal graphs: every row [0, i]
        return CacheRule("full", heads, probe)
    n = max(probe, horizon or probe)
    big = g if n == probe else pat.build(n, heads=heads, layer=layer, seed=seed)
    last = np.full(n, -1, dtype=np.int64)
    for h in range(heads):
        coo = big.adjacency(h).tocoo()
        np.maximum.at(last, coo.col.astype(np.int64), coo.row.astype(np.int64))
    return CacheRule("graph", heads, probe, graph=big, last_use=last)


def cache_rules(model: Any, horizon: int | None = None) -> list[CacheRule]:
    """The rule of every layer of ``model`` for its current patterns (probe: ``max_len`` rounded
    up to the block size; ``horizon`` for ``graph`` rules, padded to the block size)."""
    c = model.config
    probe = model.padded_length(max(c.max_len, 2 * c.attention.block_size))
    hz = model.padded_length(horizon) if horizon else None
    out = []
    for layer in model.layers:
        cache = layer.attn.cache
        out.append(derive_rule(cache.pattern.spec, heads=cache.heads, layer=cache.layer, seed=cache.seed,
                               probe=probe, horizon=hz))
    return out


class LayerCache:
    """The cached keys and values of one layer: ``k``, ``v`` ``[batch, heads, capacity, head_dim]``
    and the position held by each slot (``-1``: empty)."""

    def __init__(self, rule: CacheRule, batch: int, head_dim: int, capacity: int,
                 dtype: torch.dtype, device: torch.device, keep_all: bool = False) -> None:
        self.rule = rule
        self.keep_all = keep_all
        self.capacity = max(int(capacity), 1)
        shape = (batch, rule.heads, self.capacity, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.pos = np.full(self.capacity, -1, dtype=np.int64)
        self._slot_of: dict[int, int] = {}
        self._free: list[int] = list(range(self.capacity - 1, -1, -1))
        self.device = device
        if rule.mode == "window":
            self._sink = torch.from_numpy(rule.sink_cols).to(device)
            self._off = torch.from_numpy(rule.offsets).to(device)

    @property
    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() * 2

    def _slot(self, p: int) -> int:
        r = self.rule
        if r.mode == "window" and not self.keep_all:
            return p if p < r.sinks else r.sinks + (p - r.sinks) % r.span
        if r.mode == "full" or self.keep_all:  # every key at slot p (the mask still applies)
            if p >= self.capacity:
                self._grow(max(2 * self.capacity, p + 1))
            return p
        # graph: free the slots of keys no later query reads, then take a free slot
        for j in [j for j in self._slot_of if r.last_use[j] < p]:
            slot = self._slot_of.pop(j)
            self.pos[slot] = -1
            self._free.append(slot)
        if not self._free:
            self._grow(2 * self.capacity)
        slot = self._free.pop()
        self._slot_of[p] = slot
        return slot

    def _grow(self, capacity: int) -> None:
        extra = capacity - self.capacity
        pad = (0, 0, 0, extra)
        self.k = torch.nn.functional.pad(self.k, pad)
        self.v = torch.nn.functional.pad(self.v, pad)
        self.pos = np.concatenate([self.pos, np.full(extra, -1, dtype=np.int64)])
        self._free = list(range(capacity - 1, self.capacity - 1, -1)) + self._free
        self.capacity = capacity

    def put(self, p: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store the key and value ``[batch, heads, head_dim]`` of position ``p``."""
        slot = self._slot(p)
        self.k[:, :, slot] = k
        self.v[:, :, slot] = v
        self.pos[slot] = p

    def put_many(self, start: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store positions ``start .. start + t - 1`` (``k``, ``v`` ``[batch, heads, t, head_dim]``),
        skipping those the cache would evict before the next position anyway."""
        t = k.shape[2]
        end = start + t
        r = self.rule
        for i in range(t):
            p = start + i
            if r.mode == "window" and not self.keep_all and p >= r.sinks and p < end - r.span:
                continue  # overwritten by a later position of this prefill
            if r.mode == "graph" and not self.keep_all and r.last_use[p] < end:
                continue  # no query from `end` on reads it
            self.put(p, k[:, :, i], v[:, :, i])

    def mask(self, p: int) -> torch.Tensor:
        """Bool ``[heads, capacity]``: the slots head ``h`` reads at query position ``p``."""
        pos = torch.from_numpy(self.pos).to(self.device)
        valid = (pos >= 0) & (pos <= p)
        r = self.rule
        if r.mode == "full":
            return valid.expand(r.heads, -1)
        if r.mode == "window":
            safe = pos.clamp(min=0)
            d = (p - safe).clamp(min=0)
            in_ring = (pos >= r.sinks) & (d < r.span)
            off = self._off[:, d.clamp(max=r.span - 1)] & in_ring
            if r.sinks:
                sink = self._sink[:, safe.clamp(max=r.sinks - 1)] & (pos < r.sinks)
                off = off | sink
            return off & valid
        rows = []
        for h in range(r.heads):
            a = r.graph.adjacency(h)
            if p >= a.shape[0]:
                raise ValueError(f"position {p} is past the decoding horizon {a.shape[0]} of this cache")
            cols = a.indices[a.indptr[p]:a.indptr[p + 1]]
            rows.append(np.isin(self.pos, cols) & (self.pos >= 0))
        return torch.from_numpy(np.stack(rows)).to(self.device)


class DecodingCache:
    """One :class:`LayerCache` per layer of a model, and the next position to decode.

    ``keep_all``: keep every key whatever the rule (each head still reads only its graph's keys:
    the same outputs with the memory of a full cache; for measurements)."""

    def __init__(self, model: Any, batch: int, horizon: int, *, rules: list[CacheRule] | None = None,
                 dtype: torch.dtype | None = None, keep_all: bool = False) -> None:
        c = model.config
        self.rules = rules if rules is not None else cache_rules(model, horizon)
        dev = next(model.parameters()).device
        dt = dtype or next(model.parameters()).dtype
        self.horizon = horizon
        def slots(r: CacheRule) -> int:
            return horizon if keep_all or r.mode == "full" else r.capacity(horizon)

        self.layers = [LayerCache(r, batch, c.head_dim, slots(r), dt, dev, keep_all) for r in self.rules]
        self.position = 0

    @property
    def nbytes(self) -> int:
        """Bytes of the cached keys and values (all layers)."""
        return sum(layer.nbytes for layer in self.layers)

    @property
    def capacity(self) -> list[int]:
        return [layer.capacity for layer in self.layers]


@torch.no_grad()
def _prefill(model: Any, prompt: torch.Tensor, cache: DecodingCache) -> torch.Tensor:
    logits, kvs = model(prompt, return_kv=True)
    for lc, (k, v) in zip(cache.layers, kvs):
        lc.put_many(0, k, v)
    cache.position = prompt.shape[1]
    return logits[:, -1]


@torch.no_grad()
def _step(model: Any, tokens: torch.Tensor, cache: DecodingCache) -> torch.Tensor:
    """Logits ``[batch, vocab]`` after feeding ``tokens`` ``[batch]`` at ``cache.position``."""
    p = cache.position
    x = model.token(tokens.long())[:, None, :]
    rot = model.rotary.angles(torch.tensor([p], device=x.device), x.dtype)
    for layer, lc in zip(model.layers, cache.layers):
        attn = layer.attn
        q, k, v = attn.project(layer.ln1(x), rot)
        lc.put(p, k[:, :, 0], v[:, :, 0])
        allowed = lc.mask(p)  # [heads, capacity]
        scores = torch.matmul(q, lc.k.transpose(-1, -2)) / math.sqrt(attn.head_dim)  # [B, H, 1, C]
        scores = scores.masked_fill(~allowed[None, :, None, :], float("-inf"))
        probs = torch.nan_to_num(torch.softmax(scores.float(), dim=-1), nan=0.0)  # a row without keys: 0
        o = torch.matmul(probs.to(lc.v.dtype), lc.v)
        x = x + layer.drop(attn.merge(o))
        x = x + layer.drop(layer.mlp(layer.ln2(x)))
    cache.position = p + 1
    return model.logits(model.ln_f(x))[:, 0]


def sample_next(logits: torch.Tensor, *, greedy: bool, temperature: float, top_k: int,
                generator: torch.Generator | None) -> torch.Tensor:
    """The next token ``[batch]``: argmax (greedy), else a sample from ``softmax(logits / T)``
    restricted to the ``top_k`` most likely tokens (``0``: all)."""
    if greedy:
        return logits.argmax(dim=-1)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0 (or use greedy decoding), got {temperature}")
    z = logits.float() / temperature
    if top_k and top_k < z.shape[-1]:
        kth = torch.topk(z, top_k, dim=-1).values[..., -1:]
        z = z.masked_fill(z < kth, float("-inf"))
    probs = torch.softmax(z, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def _check_prompt(model: Any, prompt: torch.Tensor, max_new_tokens: int) -> None:
    if not isinstance(prompt, torch.Tensor) or prompt.dim() != 2 or 0 in prompt.shape:
        raise ValueError(f"prompt must be a [batch >= 1, length >= 1] tensor of token ids, got "
                         f"{getattr(prompt, 'shape', type(prompt).__name__)}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")


@torch.no_grad()
def generate(model: Any, prompt: torch.Tensor, max_new_tokens: int, *, greedy: bool = False,
             temperature: float = 1.0, top_k: int = 0, seed: int = 0, rules: list[CacheRule] | None = None,
             return_logits: bool = False, return_cache: bool = False) -> Any:
    """Continue ``prompt`` ``[batch, L]`` by ``max_new_tokens`` tokens with the cached decoder.

    The prompt runs through the model once (``forward``, so ``L <= max_len``); each new token then
    costs one cached step. Sampling draws from a ``torch.Generator`` seeded with ``seed`` (same
    seed, same text). Returns the ``[batch, L + max_new_tokens]`` ids; with ``return_logits`` also
    the logits ``[batch, max_new_tokens, vocab]`` each token was chosen from; with
    ``return_cache`` also the :class:`DecodingCache`.
    """
    _check_prompt(model, prompt, max_new_tokens)
    was = model.training
    model.eval()
    try:
        horizon = prompt.shape[1] + max_new_tokens
        cache = DecodingCache(model, prompt.shape[0], horizon, rules=rules)
        gen = torch.Generator(device=prompt.device).manual_seed(int(seed))
        out = [prompt]
        all_logits = []
        logits = _prefill(model, prompt, cache) if max_new_tokens else None
        for t in range(max_new_tokens):
            all_logits.append(logits)
            nxt = sample_next(logits, greedy=greedy, temperature=temperature, top_k=top_k, generator=gen)
            out.append(nxt[:, None])
            if t + 1 < max_new_tokens:
                logits = _step(model, nxt, cache)
    finally:
        model.train(was)
    ids = torch.cat(out, dim=1)
    res: list[Any] = [ids]
    if return_logits:
        res.append(torch.stack(all_logits, dim=1) if all_logits else prompt.new_zeros((prompt.shape[0], 0, model.config.vocab_size), dtype=torch.float32))
    if return_cache:
        res.append(cache)
    return res[0] if len(res) == 1 else tuple(res)


@torch.no_grad()
def generate_uncached(model: Any, prompt: torch.Tensor, max_new_tokens: int, *, greedy: bool = False,
                      temperature: float = 1.0, top_k: int = 0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: re-run the full forward pass on the whole sequence at every step (needs
    ``L + max_new_tokens - 1 <= max_len``). Returns ``(ids, logits)`` like :func:`generate`."""
    _check_prompt(model, prompt, max_new_tokens)
    was = model.training
    model.eval()
    try:
        gen = torch.Generator(device=prompt.device).manual_seed(int(seed))
        ids = prompt
        all_logits = []
        for _ in range(max_new_tokens):
            logits = model(ids)[:, -1]
            all_logits.append(logits)
            nxt = sample_next(logits, greedy=greedy, temperature=temperature, top_k=top_k, generator=gen)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
    finally:
        model.train(was)
    return ids, torch.stack(all_logits, dim=1)
