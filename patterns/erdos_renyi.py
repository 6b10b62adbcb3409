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
    block: int = 1,
    heads: int = 1,
    layer: int = 0,
    seed: int = 0,
) -> AttentionGraph:
    """Erdős–Rényi random attention over tokens or blocks: give exactly one of ``p`` or ``degree``.

    ``p``: G(n, p): every pair ``i -> j`` with ``j != i`` is an edge independently with probability
    ``p`` (sampled by geometric skipping, cost proportional to the edges, never an ``n x n`` draw).
    ``degree``: every query ``i`` attends exactly ``degree`` distinct keys ``j != i``, each
    ``degree``-subset of the other ``n - 1`` keys equally likely (a random ``degree``-out graph).

    ``self_loops=True`` adds ``i -> i`` for every ``i`` on top of the random edges (so a query never
    has zero keys); with ``False`` there are none. The random edges never include the diagonal.

    ``block=b > 1`` draws the same random graph over the ``nb = ceil(n / b)`` blocks of ``b``
    consecutive tokens (``p`` and ``degree`` then count key *blocks*, ``degree <= nb - 1``) and
    lifts it: a block edge ``A -> B`` makes every token of ``A`` attend every token of ``B``, and
    ``self_loops`` gives each block its own block. Positions past ``n`` in the last block are
    dropped. A random graph drawn over tokens touches nearly every key block of a block-sparse
    layout once its degree is a few per block (the layout then costs what full attention costs);
    drawn over the layout's blocks it costs what its edges say, as BigBird's random part does.

    >>> g = erdos_renyi(8, degree=1, block=4, seed=0)   # 2 blocks: each attends the other and itself
    >>> int(g.nnz)
    64

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
    block = check_int("erdos_renyi.block", block, 1)
    nodes = -(-n // block)  # the vertices the random graph is drawn over: tokens or blocks
    if p is not None:
        p = check_probability("erdos_renyi.p", p)
    else:
        degree = check_int("erdos_renyi.degree", degree, 0)
        if degree > nodes - 1:
            bound = (f"n - 1 = {n - 1} (distinct keys other than the query)" if block == 1 else
                     f"ceil(n / block) - 1 = {nodes - 1} (distinct key blocks other than the "
                     f"query's own; n={n} in blocks of {block})")
            raise ValueError(f"erdos_renyi.degree must be <= {bound}, got {degree} for n={n}")
    randoms = []
    for h in range(heads):
        gen = rng(seed, layer, h, "erdos_renyi")
        randoms.append(_bernoulli(gen, nodes, p) if p is not None else _fixed_degree(gen, nodes, degree))
    kinds: dict[str, object] = {"random": randoms}
    if self_loops:
        mats = [_csr.add_diagonal(m) for m in randoms]
        kinds["self"] = sp.eye(nodes, dtype=bool, format="csr")
    else:
        mats = randoms
    if block > 1:
        lift = lambda m: _csr.expand_blocks(m, block)[:n, :n].tocsr()  # noqa: E731
        mats = [lift(m) for m in mats]
        kinds = {k: ([lift(m) for m in v] if isinstance(v, list) else lift(v)) for k, v in kinds.items()}
    return AttentionGraph(mats, heads=heads).with_kinds(kinds, subset=True)
