"""Watts–Strogatz small-world attention: a ring lattice with randomly rewired edges."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sparsegraph.patterns import _sample
from sparsegraph.patterns._validate import check_bool, check_int, check_probability
from sparsegraph.patterns.registry import NO_GLOBALS, register, rng
from sparsegraph.graph import AttentionGraph


def lattice_offsets(k: int) -> np.ndarray:
    """Offsets ``j - i`` of the ring lattice, in slot order: ``-k/2 .. -1, 1 .. k/2``."""
    half = k // 2
    return np.concatenate([np.arange(-half, 0), np.arange(1, half + 1)]).astype(np.int64)


def _new_keys(
    gen: np.random.Generator, n: int, k: int, kept: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``counts[i]`` distinct keys per query ``i``, uniform over the keys that are neither ``i`` nor
    one of its kept lattice keys (``kept[i, slot]``). Returns ``(rows, keys)``."""
    half = k // 2
    if 2 * (k + 1) <= n:
        # Sparse regime: at least half of all keys are allowed for every query, so rejection
        # sampling finishes in a few vectorised rounds.
        def forbidden(rows: np.ndarray, keys: np.ndarray) -> np.ndarray:
            d = (keys - rows) % n  # ring distance forward, in [0, n)
            offset = np.where(d <= half, d, d - n)  # the lattice offset it would be, if any
            on_lattice = (offset != 0) & (np.abs(offset) <= half)
            slot = np.where(offset < 0, offset + half, offset + half - 1)
            hit = np.zeros(rows.shape, dtype=bool)
            hit[on_lattice] = kept[rows[on_lattice], slot[on_lattice]]
            return (keys == rows) | hit

        return _sample.distinct(gen, counts, n, forbidden)
    # Dense regime (k close to n, the graph has >= n^2/2 edges anyway): rank the allowed keys of
    # every query by i.i.d. uniforms and take the counts[i] smallest — a uniform subset.
    allowed = np.ones((n, n), dtype=bool)
    np.fill_diagonal(allowed, False)
    rows = np.repeat(np.arange(n), k)
    cols = (rows + np.tile(lattice_offsets(k), n)) % n
    allowed[rows[kept.ravel()], cols[kept.ravel()]] = False
    scores = np.where(allowed, gen.random((n, n)), np.inf)
    order = np.argsort(scores, axis=1, kind="stable")
    take = np.arange(n)[None, :] < counts[:, None]
    return np.nonzero(take)[0], order[take]


def _one_head(gen: np.random.Generator, n: int, k: int, p: float) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(lattice edges kept, rewired edges)`` of one head."""
    offsets = lattice_offsets(k)
    rewire = gen.random((n, k)) < p  # each directed lattice edge independently
    kept = ~rewire
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = (rows + np.tile(offsets, n)) % n
    keep = kept.ravel()
    lattice = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=bool), (rows[keep], cols[keep])), shape=(n, n)
    )
    new_rows, new_cols = _new_keys(gen, n, k, kept, rewire.sum(axis=1))
    rewired = sp.csr_matrix((np.ones(new_rows.size, dtype=bool), (new_rows, new_cols)), shape=(n, n))
    return lattice, rewired


@register("watts_strogatz", global_tokens=NO_GLOBALS)
def watts_strogatz(
    n: int,
    *,
    k: int,
    p: float,
    self_loops: bool = True,
    heads: int = 1,
    layer: int = 0,
    seed: int = 0,
) -> AttentionGraph:
    """Watts–Strogatz small-world graph (Watts & Strogatz 1998) as directed attention edges.

    Ring lattice: query ``i`` attends the ``k`` keys ``(i ± 1), ..., (i ± k/2)`` modulo ``n``
    (wrapping around the ends). Rewiring: each of the ``n * k`` *directed* lattice edges
    ``i -> j`` is chosen independently with probability ``p``; query ``i``'s ``m_i`` chosen edges
    are replaced by ``m_i`` distinct keys drawn uniformly from the keys that are neither ``i`` nor
    one of its unchosen lattice keys ("uniformly over the entire ring, duplicates and self-loops
    forbidden", as in the paper; a replacement may land on a lattice key whose edge was itself
    chosen, including its old one). So every query keeps exactly ``k`` distinct non-self keys
    for every ``p``: ``p = 0`` is the ring lattice, ``p = 1`` a random ``k``-out graph. The edges
    are rewired per direction, so ``i -> j`` may be rewired while ``j -> i`` is kept.

    ``self_loops=True`` (attention usually lets a token see itself) adds ``i -> i`` for every
    ``i``, never rewired: then each query has ``k + 1`` keys. Edge count: ``n * k`` (+ ``n``).

    Heads are independent: head ``h`` uses ``patterns.rng(seed, layer, h, "watts_strogatz")``.
    BigBird's window + random components are this construction, blockified (Zaheer et al. 2020).

    Args:
        k: lattice keys per query: even, ``2 <= k < n``.
        p: rewiring probability in ``[0, 1]``.

    Edge kinds: ``"lattice"`` (kept lattice edges), ``"rewired"`` (the replacements), ``"self"``.
    """
    n = check_int("watts_strogatz.n", n, 1)
    k = check_int("watts_strogatz.k", k, 2)
    if k % 2:
        raise ValueError(f"watts_strogatz.k must be even (k/2 neighbours on each side), got {k}")
    if k >= n:
        raise ValueError(f"watts_strogatz.k must be < n (k distinct neighbours), got k={k} for n={n}")
    p = check_probability("watts_strogatz.p", p)
    self_loops = check_bool("watts_strogatz.self_loops", self_loops)
    lattices, rewireds, mats = [], [], []
    eye = sp.eye(n, dtype=bool, format="csr")
    for h in range(heads):
        lattice, rewired = _one_head(rng(seed, layer, h, "watts_strogatz"), n, k, p)
        lattices.append(lattice)
        rewireds.append(rewired)
        mats.append(lattice + rewired + eye if self_loops else lattice + rewired)
    kinds: dict[str, object] = {"lattice": lattices, "rewired": rewireds}
    if self_loops:
        kinds["self"] = eye
    return AttentionGraph(mats, heads=heads).with_kinds(kinds, subset=True)
