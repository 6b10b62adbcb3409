"""Erdős–Rényi random attention: token-level random keys."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sparsegraph.patterns import _csr, _sample
from sparsegraph.patterns._validate import check_bool, check_int, check_probability
from sparsegraph.patterns.registry import NO_GLOBALS, register, rng
from sparsegraph.graph import AttentionGraph


def _bernoulli(gen: np.random.Generator, n: int, p: float) -> sp.csr_matrix:
    # Positions 0 .. n(n-1)-1 enumerate the off-diagonal pairs row by row; position q is
    # (i, j') = divmod(q, n-1) and key j = j' + (j' >= i) skips the diagonal.
    q = _sample.geometric_positions(gen, p, n * (n - 1))
    i, j = np.divmod(q, max(n - 1, 1))
    j += j >= i
    indptr = np.searchsorted(i, np.arange(n + 1), side="left")
    return _csr.from_arrays(indptr, j, (n, n))  # q sorted => rows sorted, keys sorted in a row


def _fixed_degree(gen: np.random.Generator, n: int, degree: int) -> sp.csr_matrix:
    if 2 * degree <= n - 1:
        # keys v in [0, n-1) stand for j = v + (v >= i): every draw is allowed except duplicates
        rows, v = _sample.distinct(gen, np.full(n, degree), n - 1)
        j = v + (v >= rows)
        # the skip map is increasing, so the keys stay sorted within each row
        indptr = np.arange(n + 1, dtype=np.int64) * degree
        return _csr.from_arrays(indptr, j, (n, n))
    # Dense regime (more than half the keys): draw the n-1-degree keys each query does NOT attend
    # (uniform too), then take the complement. The output has >= n^2/2 edges, so dense is cheap.
    keep = np.ones((n, n), dtype=bool)
    np.fill_diagonal(keep, False)
    excluded = n - 1 - degree
    if excluded:
        rows, v = _sample.distinct(gen, np.full(n, excluded), n - 1)
        keep[rows, v + (v >= rows)] = False
    return sp.csr_matrix(keep)


@register("erdos_renyi", global_tokens=NO_GLOBALS)
def erdos_renyi(
    n: int,
    *,
    p: float | None = None,
    degree: int | None = None,
    self_loops: bool = True,
    heads: int = 1,
    layer: int = 0,
    seed: int = 0,
) -> AttentionGraph:
    """Erdős–Rényi random attention over tokens: give exactly one of ``p`` or ``degree``.

    ``p``: G(n, p): every pair ``i -> j`` with ``j != i`` is an edge independently with probability
    ``p`` (sampled by geometric skipping, cost proportional to the edges, never an ``n x n`` draw).
    ``degree``: every query ``i`` attends exactly ``degree`` distinct keys ``j != i``, each
    ``degree``-subset of the other ``n - 1`` keys equally likely (a random ``degree``-out graph).

    ``self_loops=True`` adds ``i -> i`` for every ``i`` on top of the random edges (so a query never
    has zero keys); with ``False`` there are none. The random edges never include the diagonal.

    Heads are independent: head ``h`` draws from ``patterns.rng(seed, layer, h, "erdos_renyi")``,
    so head ``h`` is the same whatever the number of heads, and layers differ.
    BigBird's random component is the block version of this (Zaheer et al. 2020, Sec. 2);
    Erdős & Rényi 1959.

    Edge kinds: ``"random"``, ``"self"``.
    """
    n = check_int("erdos_renyi.n", n, 1)
    if (p is None) == (degree is None):
        raise ValueError(
            f"erdos_renyi needs exactly one of p (edge probability) or degree (keys per query), "
            f"got p={p!r}, degree={degree!r}"
        )
    self_loops = check_bool("erdos_renyi.self_loops", self_loops)
    if p is not None:
        p = check_probability("erdos_renyi.p", p)
    else:
        degree = check_int("erdos_renyi.degree", degree, 0)
        if degree > n - 1:
            raise ValueError(
                f"erdos_renyi.degree must be <= n - 1 = {n - 1} (distinct keys other than the query), "
                f"got {degree} for n={n}"
            )
    randoms = []
    for h in range(heads):
        gen = rng(seed, layer, h, "erdos_renyi")
        randoms.append(_bernoulli(gen, n, p) if p is not None else _fixed_degree(gen, n, degree))
    kinds: dict[str, object] = {"random": randoms}
    if self_loops:
        mats = [_csr.add_diagonal(m) for m in randoms]
        kinds["self"] = sp.eye(n, dtype=bool, format="csr")
    else:
        mats = randoms
    return AttentionGraph(mats, heads=heads).with_kinds(kinds, subset=True)
