"""`AttentionGraph`: an attention pattern as an immutable directed graph.

Edge ``i -> j`` means *query position i attends to key position j* (the convention of every part
of sparsegraph; see docs/semantics.md). A graph has ``n_q`` query nodes and ``n_k`` key nodes (they differ
for cross attention) and one edge set per head. When every head has the same edges the set is
stored once (``shared``); set operations broadcast a shared graph over the heads of the other.

Storage: one ``scipy.sparse.csr_matrix`` of dtype bool and shape ``[n_q, n_k]`` per stored head,
with sorted indices and no explicit zeros, so two equal graphs have equal arrays.

Optional edge *kinds* (``"window"``, ``"global"``, ``"random"``, ``"rewired"``, ...) record why an
edge exists, for plots; each kind is a sub-graph of the same shape. Kinds never change the edge set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

__all__ = ["AttentionGraph", "Provenance"]


@dataclass(frozen=True)
class Provenance:
    """Where a graph came from: enough to rebuild it.

    Attributes:
        name: registered pattern name (``"bigbird"``), or an expression such as ``"a | b"``.
        params: the pattern's keyword parameters.
        seed: the seed it was built with (``None`` for deterministic patterns / hand-made graphs).
        layer: the layer index it was built for.
        spec: the spec string that rebuilds it with ``patterns.get(spec).build(...)``, if known.
    """

    name: str = "custom"
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    layer: int = 0
    spec: str | None = None

    def __repr__(self) -> str:
        extra = f", seed={self.seed}" if self.seed is not None else ""
        extra += f", layer={self.layer}" if self.layer else ""
        return f"Provenance({self.spec or self.name!r}{extra})"


def _canonical(m: sp.spmatrix | sp.sparray) -> sp.csr_matrix:
    """Bool CSR with sorted indices, duplicates summed away and explicit zeros removed."""
    m = sp.csr_matrix(m, dtype=bool)
    m.sum_duplicates()
    if not m.data.all():  # eliminate_zeros rewrites every entry even when there is nothing to drop
        m.eliminate_zeros()
    m.sort_indices()
    return m


def _check_int(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


class AttentionGraph:
    """An immutable directed attention graph with one edge set per head.

    Args:
        adjacency: one sparse matrix of shape ``[n_q, n_k]`` (shared by all heads) or a sequence of
            ``heads`` of them. Any nonzero entry is an edge.
        heads: number of heads. With a single matrix it is shared by all ``heads`` heads.
        num_global: number of ETC global tokens: extra positions ``0 .. num_global-1`` at the front
            of both the query and the key axis (their edges are part of the graph like any other).
        provenance: where the graph came from (pattern name, parameters, seed).
        kinds: optional ``{kind name: sub-graph adjacency}`` (one matrix, or one per stored head),
            recording why edges exist; restricted to the graph's edges.

    Prefer the constructors ``from_edges``, ``from_mask``, ``from_networkx``.
    """

    __slots__ = ("_adj", "_heads", "_num_global", "_provenance", "_kinds", "_n_q", "_n_k")

    def __init__(
        self,
        adjacency: sp.spmatrix | sp.sparray | Sequence[sp.spmatrix | sp.sparray],
        *,
        heads: int | None = None,
        num_global: int = 0,
        provenance: Provenance | None = None,
        kinds: Mapping[str, Any] | None = None,
    ) -> None:
        mats = [adjacency] if sp.issparse(adjacency) else list(adjacency)
        if not mats:
            raise ValueError("adjacency must hold at least one matrix, got an empty sequence")
        mats = [_canonical(m) for m in mats]
        shape = mats[0].shape
        for h, m in enumerate(mats):
            if m.shape != shape:
                raise ValueError(
                    f"adjacency[{h}] has shape {m.shape}, expected {shape} like adjacency[0]"
                )
        stored = len(mats)
        if heads is None:
            heads = stored
        heads = _check_int("heads", heads, 1)
        if stored not in (1, heads):
            raise ValueError(f"got {stored} adjacency matrices for heads={heads}: expected 1 or {heads}")
        # Store once when every head is the same (cheap check: compare CSR arrays).
        if stored > 1 and all(_same(mats[0], m) for m in mats[1:]):
            mats = mats[:1]
        self._adj: tuple[sp.csr_matrix, ...] = tuple(mats)
        self._heads = heads
        self._n_q, self._n_k = int(shape[0]), int(shape[1])
        self._num_global = _check_int("num_global", num_global, 0)
        if self._num_global > min(self._n_q, self._n_k):
            raise ValueError(
                f"num_global={num_global} exceeds the graph size ({self._n_q} x {self._n_k})"
            )
        self._provenance = provenance if provenance is not None else Provenance()
        self._kinds = self._normalise_kinds(kinds) if kinds else {}

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_edges(
        cls,
        rows: Iterable[int] | np.ndarray,
        cols: Iterable[int] | np.ndarray,
        n_q: int,
        n_k: int | None = None,
        *,
        heads: int = 1,
        head_index: Iterable[int] | np.ndarray | None = None,
        **kwargs: Any,
    ) -> "AttentionGraph":
        """Graph from edge lists ``rows[e] -> cols[e]`` (query -> key).

        Without ``head_index`` the edges are shared by all ``heads``; with it, edge ``e`` belongs
        to head ``head_index[e]`` only. Duplicate edges are merged. Out-of-range positions raise.
        """
        n_q = _check_int("n_q", n_q, 0)
        n_k = n_q if n_k is None else _check_int("n_k", n_k, 0)
        heads = _check_int("heads", heads, 1)
        r = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.int64).ravel()
        c = np.asarray(list(cols) if not isinstance(cols, np.ndarray) else cols, dtype=np.int64).ravel()
        if r.shape != c.shape:
            raise ValueError(f"rows and cols must have the same length, got {r.size} and {c.size}")
        if r.size and (r.min() < 0 or r.max() >= n_q):
            raise ValueError(f"rows must lie in [0, {n_q}), got values in [{r.min()}, {r.max()}]")
        if c.size and (c.min() < 0 or c.max() >= n_k):
            raise ValueError(f"cols must lie in [0, {n_k}), got values in [{c.min()}, {c.max()}]")
        if head_index is None:
            m = sp.csr_matrix((np.ones(r.size, bool), (r, c)), shape=(n_q, n_k))
            return cls(m, heads=heads, **kwargs)
        hi = np.asarray(
            list(head_index) if not isinstance(head_index, np.ndarray) else head_index, dtype=np.int64
        ).ravel()
        if hi.shape != r.shape:
            raise ValueError(f"head_index must have one entry per edge ({r.size}), got {hi.size}")
        if hi.size and (hi.min() < 0 or hi.max() >= heads):
            raise ValueError(f"head_index must lie in [0, {heads}), got values in [{hi.min()}, {hi.max()}]")
        mats = [
            sp.csr_matrix((np.ones(int((hi == h).sum()), bool), (r[hi == h], c[hi == h])), shape=(n_q, n_k))
            for h in range(heads)
        ]
        return cls(mats, heads=heads, **kwargs)

    @classmethod
    def from_mask(cls, mask: Any, **kwargs: Any) -> "AttentionGraph":
        """Graph from a boolean mask ``[n_q, n_k]`` (shared) or ``[heads, n_q, n_k]`` (numpy or torch).

        ``mask[h, i, j]`` true means query i attends key j in head h.
        """
        if hasattr(mask, "detach"):  # a torch tensor; sparsegraph does not import torch
            mask = mask.detach().cpu().numpy()
        arr = np.asarray(mask)
        if arr.dtype != np.bool_:
            raise TypeError(f"mask must be boolean, got dtype {arr.dtype}")
        if arr.ndim == 2:
            return cls(sp.csr_matrix(arr), **kwargs)
        if arr.ndim == 3:
            kwargs.setdefault("heads", arr.shape[0])
            return cls([sp.csr_matrix(a) for a in arr], **kwargs)
        raise ValueError(f"mask must have shape [n_q, n_k] or [heads, n_q, n_k], got {arr.shape}")

    @classmethod
    def from_networkx(cls, g: Any, n: int | None = None, **kwargs: Any) -> "AttentionGraph":
        """Graph from a networkx graph whose nodes are ``0 .. n-1`` (square, self attention).

        A directed edge ``u -> v`` is query u attending key v; an undirected edge gives both
        directions.
        """
        nodes = list(g.nodes)
        # check the node type before max(): non-int labels would make it raise a bare TypeError
        not_int = [u for u in nodes if isinstance(u, bool) or not isinstance(u, (int, np.integer))]
        if n is None:
            n = (max(nodes) + 1) if nodes and not not_int else 0
        bad = not_int or [u for u in nodes if not 0 <= u < n]
        if bad:
            raise ValueError(f"networkx nodes must be ints in [0, {n}), got {bad[:5]!r}")
        edges = np.array(list(g.edges()), dtype=np.int64).reshape(-1, 2)
        rows, cols = edges[:, 0], edges[:, 1]
        if not g.is_directed():
            rows, cols = np.concatenate([rows, cols]), np.concatenate([cols, rows])
        return cls.from_edges(rows, cols, n, n, **kwargs)

    # ------------------------------------------------------------------ basic properties
    @property
    def n_q(self) -> int:
        """Number of query positions (rows)."""
        return self._n_q

    @property
    def n_k(self) -> int:
        """Number of key positions (columns)."""
        return self._n_k

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(heads, n_q, n_k)``."""
        return (self._heads, self._n_q, self._n_k)

    @property
    def heads(self) -> int:
        return self._heads

    @property
    def shared(self) -> bool:
        """True when all heads have the same edges (stored once)."""
        return len(self._adj) == 1

    @property
    def num_global(self) -> int:
        """Number of ETC global tokens at the front (positions ``0 .. num_global-1``)."""
        return self._num_global

    @property
    def provenance(self) -> Provenance:
        return self._provenance

    @property
    def kinds(self) -> tuple[str, ...]:
        """Names of the recorded edge kinds (empty when the pattern records none)."""
        return tuple(self._kinds)

    def adjacency(self, head: int = 0) -> sp.csr_matrix:
        """The bool CSR adjacency of one head (``[n_q, n_k]``). Do not modify it."""
        return self._adj[self._stored_index(head)]

    def adjacencies(self) -> tuple[sp.csr_matrix, ...]:
        """The stored matrices: one when shared, else one per head."""
        return self._adj

    def kind(self, name: str, head: int = 0) -> sp.csr_matrix:
        """Adjacency of the edges of kind ``name`` in ``head``."""
        if name not in self._kinds:
            raise KeyError(f"edge kind {name!r} not recorded; this graph has kinds {self.kinds}")
        mats = self._kinds[name]
        # A kind may hold one matrix per head even when the edges are shared by all heads, so
        # index it by the head itself, not by the stored-adjacency index (always 0 when shared).
        return mats[0] if len(mats) == 1 else mats[self._stored_check(head)]

    def iter_heads(self) -> Iterator[sp.csr_matrix]:
        for h in range(self._heads):
            yield self.adjacency(h)

    @property
    def nnz(self) -> int:
        """Number of edges summed over all heads."""
        if self.shared:
            return int(self._adj[0].nnz) * self._heads
        return int(sum(m.nnz for m in self._adj))

    def nnz_per_head(self) -> np.ndarray:
        return np.array([self.adjacency(h).nnz for h in range(self._heads)], dtype=np.int64)

    @property
    def density(self) -> float:
        """Edges over all possible (query, key, head) triples, in [0, 1]."""
        total = self._heads * self._n_q * self._n_k
        return self.nnz / total if total else 0.0

    def degrees(self, head: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(out_degree, in_degree)``: keys per query (length n_q) and queries per key (n_k).

        With ``head=None`` the degrees are summed over heads.
        """
        heads = range(self._heads) if head is None else [self._stored_check(head)]
        out = np.zeros(self._n_q, np.int64)
        inn = np.zeros(self._n_k, np.int64)
        for h in heads:
            m = self.adjacency(h)
            out += np.diff(m.indptr)
            inn += np.bincount(m.indices, minlength=self._n_k)
        return out, inn

    # ------------------------------------------------------------------ conversions
    def to_dense(self, head: int | None = None) -> np.ndarray:
        """Bool mask ``[heads, n_q, n_k]``, or ``[n_q, n_k]`` for one ``head``."""
        if head is not None:
            return self.adjacency(head).toarray()
        out = np.empty((self._heads, self._n_q, self._n_k), dtype=bool)
        for h in range(self._heads):
            out[h] = self.adjacency(h).toarray()
        return out

    def to_networkx(self, head: int = 0) -> Any:
        """A ``networkx.DiGraph`` of one head (square graphs only); edges carry their kinds."""
        import networkx as nx

        if self._n_q != self._n_k:
            raise ValueError(f"to_networkx needs a square graph, got n_q={self._n_q}, n_k={self._n_k}")
        g = nx.DiGraph()
        g.add_nodes_from(range(self._n_q))
        m = self.adjacency(head).tocoo()
        g.add_edges_from(zip(m.row.tolist(), m.col.tolist()))
        for name in self._kinds:
            k = self.kind(name, head).tocoo()
            for u, v in zip(k.row.tolist(), k.col.tolist()):
                g.edges[u, v].setdefault("kinds", []).append(name)
        return g

    def merge_heads(self) -> "AttentionGraph":
        """One-head graph whose edges are the union over heads."""
        if self.shared:
            m = self._adj[0]
        else:
            m = self._adj[0]
            for other in self._adj[1:]:
                m = m + other
        kinds = {k: [_union_all(v)] for k, v in self._kinds.items()}
        return AttentionGraph(m, heads=1, num_global=self._num_global, provenance=self._provenance, kinds=kinds)

    def expand_heads(self, heads: int) -> "AttentionGraph":
        """The same graph seen as ``heads`` heads (only from a shared graph)."""
        if heads == self._heads:
            return self
        if not self.shared:
            raise ValueError(f"cannot expand a graph with {self._heads} distinct heads to heads={heads}")
        return self._copy(_heads=_check_int("heads", heads, 1))

    def with_self_loops(self) -> "AttentionGraph":
        """Add the edges ``i -> i`` for ``i < min(n_q, n_k)``, in every head."""
        eye = sp.eye(self._n_q, self._n_k, dtype=bool, format="csr")
        return self._replace([m + eye for m in self._adj])

    def transpose(self) -> "AttentionGraph":
        """Reverse every edge: ``i -> j`` becomes ``j -> i`` (shape ``[n_k, n_q]``)."""
        kinds = {k: [m.T for m in v] for k, v in self._kinds.items()}
        return AttentionGraph(
            [m.T for m in self._adj], heads=self._heads, num_global=self._num_global,
            provenance=self._provenance, kinds=kinds,
        )

    @property
    def T(self) -> "AttentionGraph":
        return self.transpose()

    def with_provenance(self, provenance: Provenance) -> "AttentionGraph":
        return self._copy(_provenance=provenance)

    def with_kinds(self, kinds: Mapping[str, Any], *, subset: bool = False) -> "AttentionGraph":
        """A copy recording ``kinds`` (``{name: matrix or per-head matrices}``) in addition.

        Each kind is restricted to the graph's edges. ``subset=True`` promises that every kind
        already is a sub-graph of the edges (a pattern that builds its graph as the union of its
        kinds) and skips that intersection, which costs as much as building the graph.
        """
        new = self._normalise_kinds(kinds, restrict=not subset) if kinds else {}
        return self._copy(_kinds={**self._kinds, **new})

    def pad_front(self, g: int) -> "AttentionGraph":
        """Embed the graph into ``g + n`` positions, shifting every edge by ``g`` on both axes.

        Used to place a pattern over the regular tokens behind ``g`` ETC global tokens; the new
        front positions get no edges (the global pattern adds them).
        """
        g = _check_int("g", g, 0)
        if g == 0:
            return self

        def shift(m: sp.csr_matrix) -> sp.csr_matrix:
            # g empty rows in front and every column index + g: stays canonical, no COO re-sort
            indptr = np.concatenate([np.zeros(g, dtype=m.indptr.dtype), m.indptr])
            return sp.csr_matrix((m.data, m.indices + g, indptr), shape=(self._n_q + g, self._n_k + g))

        kinds = {k: [shift(m) for m in v] for k, v in self._kinds.items()}
        return AttentionGraph(
            [shift(m) for m in self._adj], heads=self._heads, num_global=self._num_global + g,
            provenance=self._provenance, kinds=kinds,
        )

    # ------------------------------------------------------------------ set algebra
    def _binary(self, other: Any, op: str) -> "AttentionGraph":
        if not isinstance(other, AttentionGraph):
            return NotImplemented
        if (self._n_q, self._n_k) != (other._n_q, other._n_k):
            raise ValueError(
                f"cannot combine graphs of shapes {self._n_q}x{self._n_k} and {other._n_q}x{other._n_k} "
                f"with {op!r}: both must have the same n_q and n_k"
            )
        if self._heads != other._heads and 1 not in (self._heads, other._heads):
            raise ValueError(
                f"cannot combine graphs with heads={self._heads} and heads={other._heads} with {op!r}: "
                "heads must be equal or one graph must have a single head"
            )
        if self._num_global != other._num_global:
            raise ValueError(
                f"cannot combine graphs with num_global={self._num_global} and {other._num_global}; "
                "use pad_front() to align the regular tokens first"
            )
        heads = max(self._heads, other._heads)
        a, b = self._per_head_list(heads), other._per_head_list(heads)
        if op == "|":
            mats = [x + y for x, y in zip(a, b)]
        elif op == "&":
            mats = [x.multiply(y) for x, y in zip(a, b)]
        else:  # "-"
            # scipy refuses bool subtraction: compute the difference in int8
            mats = [x.astype(np.int8) - x.multiply(y).astype(np.int8) for x, y in zip(a, b)]
        kinds: dict[str, list[sp.csr_matrix]] = {}
        for src in (self, other):
            for name in src._kinds:
                per = [src.kind(name, h if src._heads > 1 else 0) for h in range(heads)]
                kinds[name] = [x + y for x, y in zip(kinds[name], per)] if name in kinds else per
        prov = Provenance(
            name=f"{self._provenance.spec or self._provenance.name} {op} "
            f"{other._provenance.spec or other._provenance.name}",
            seed=self._provenance.seed if self._provenance.seed is not None else other._provenance.seed,
            layer=self._provenance.layer,
            spec=(f"{self._provenance.spec}|{other._provenance.spec}"
                  if op == "|" and self._provenance.spec and other._provenance.spec else None),
        )
        return AttentionGraph(mats, heads=heads, num_global=self._num_global, provenance=prov, kinds=kinds)

    def __or__(self, other: "AttentionGraph") -> "AttentionGraph":
        return self._binary(other, "|")

    def __and__(self, other: "AttentionGraph") -> "AttentionGraph":
        return self._binary(other, "&")

    def __sub__(self, other: "AttentionGraph") -> "AttentionGraph":
        return self._binary(other, "-")

    def __eq__(self, other: object) -> bool:
        """Same shape, heads, num_global and edge sets (provenance and kinds are not compared)."""
        if not isinstance(other, AttentionGraph):
            return NotImplemented
        if self.shape != other.shape or self._num_global != other._num_global:
            return False
        return all(_same(self.adjacency(h), other.adjacency(h)) for h in range(self._heads))

    __hash__ = None  # type: ignore[assignment]  # mutable-looking numpy payload; use layout hashes

    def issubgraph(self, other: "AttentionGraph") -> bool:
        """True when every edge of ``self`` is an edge of ``other``."""
        return (self - other).nnz == 0

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        size = f"n={self._n_q}" if self._n_q == self._n_k else f"n_q={self._n_q}, n_k={self._n_k}"
        glob = f", num_global={self._num_global}" if self._num_global else ""
        share = "shared" if self.shared else "per-head"
        src = self._provenance.spec or self._provenance.name
        return (
            f"AttentionGraph({src}: {size}, heads={self._heads} ({share}){glob}, "
            f"edges={self.nnz}, density={self.density:.2%})"
        )

    def to_string(self, head: int = 0, max_size: int = 96, block: int | None = None) -> str:
        """ASCII picture of one head: ``#`` an edge, ``.`` none; one row per query.

        With ``block`` each character is a ``block x block`` tile: ``#`` full, ``+`` partial,
        ``.`` empty. Graphs wider than ``max_size`` characters raise (pass ``block``).
        """
        m = self.adjacency(head)
        if block is None:
            if max(self._n_q, self._n_k) > max_size:
                raise ValueError(
                    f"graph is {self._n_q}x{self._n_k}, wider than max_size={max_size}; "
                    f"pass block=... (e.g. block={-(-max(self._n_q, self._n_k) // 64)}) or a larger max_size"
                )
            dense = m.toarray()
            lines = ["".join("#" if x else "." for x in row) for row in dense]
        else:
            block = _check_int("block", block, 1)
            nbq, nbk = -(-self._n_q // block), -(-self._n_k // block)
            if max(nbq, nbk) > max_size:
                raise ValueError(f"{nbq}x{nbk} blocks exceed max_size={max_size}; pass a larger block")
            c = m.tocoo()
            counts = sp.csr_matrix(
                (np.ones(c.nnz, np.int64), (c.row // block, c.col // block)), shape=(nbq, nbk)
            ).toarray()
            rq = np.minimum(block, self._n_q - np.arange(nbq) * block)
            rk = np.minimum(block, self._n_k - np.arange(nbk) * block)
            cap = rq[:, None] * rk[None, :]
            lines = [
                "".join("#" if x == cp else ("+" if x else ".") for x, cp in zip(row, caprow))
                for row, caprow in zip(counts, cap)
            ]
        header = f"{self!r}, head {head}" + (f", {block}x{block} tiles" if block else "")
        return "\n".join([header, *lines])

    # ------------------------------------------------------------------ internals
    def _stored_check(self, head: int) -> int:
        if isinstance(head, bool) or not isinstance(head, (int, np.integer)):
            raise TypeError(f"head must be an int, got {type(head).__name__}")
        if not -self._heads <= head < self._heads:
            raise IndexError(f"head={head} out of range for a graph with {self._heads} heads")
        return int(head) % self._heads

    def _stored_index(self, head: int) -> int:
        h = self._stored_check(head)
        return 0 if len(self._adj) == 1 else h

    def _per_head_list(self, heads: int) -> list[sp.csr_matrix]:
        return [self._adj[0] if self.shared else self._adj[h] for h in range(heads)]

    def _normalise_kinds(
        self, kinds: Mapping[str, Any], restrict: bool = True
    ) -> dict[str, tuple[sp.csr_matrix, ...]]:
        out: dict[str, tuple[sp.csr_matrix, ...]] = {}
        for name, val in kinds.items():
            mats = [val] if sp.issparse(val) else list(val)
            if len(mats) not in (1, self._heads):
                raise ValueError(f"kind {name!r} has {len(mats)} matrices; expected 1 or {self._heads}")
            restricted = []
            for i, m in enumerate(mats):
                m = _canonical(m)
                if m.shape != (self._n_q, self._n_k):
                    raise ValueError(f"kind {name!r} has shape {m.shape}, expected {(self._n_q, self._n_k)}")
                if not restrict:
                    restricted.append(m)
                    continue
                base = self._adj[0] if self.shared else self._adj[i if len(mats) > 1 else 0]
                if len(mats) == 1 and not self.shared:
                    base = _union_all(self._adj)
                restricted.append(_canonical(m.multiply(base)))
            if any(r.nnz for r in restricted):
                out[name] = tuple(restricted)
        return out

    def _copy(self, **slots: Any) -> "AttentionGraph":
        """A copy sharing the (immutable, already canonical) matrices, with some slots replaced.

        Unlike ``_replace`` it does not re-canonicalise the adjacency or re-restrict the kinds,
        which for large graphs cost as much as building them (``Pattern.build`` sets provenance
        on every graph it returns).
        """
        new = object.__new__(AttentionGraph)
        for name in AttentionGraph.__slots__:
            setattr(new, name, slots[name] if name in slots else getattr(self, name))
        return new

    def _replace(self, mats: Sequence[sp.csr_matrix], **changes: Any) -> "AttentionGraph":
        args = dict(
            heads=self._heads, num_global=self._num_global, provenance=self._provenance,
            kinds={k: list(v) for k, v in self._kinds.items()},
        )
        args.update(changes)
        return AttentionGraph(list(mats), **args)


def _same(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return (
        a.shape == b.shape
        and a.nnz == b.nnz
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
    )


def _union_all(mats: Sequence[sp.csr_matrix]) -> sp.csr_matrix:
    out = mats[0]
    for m in mats[1:]:
        out = out + m
    return _canonical(out)
