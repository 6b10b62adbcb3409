"""BigBird exactly as Hugging Face's ``BigBirdModel`` runs it in ``block_sparse`` mode (training).

``bigbird_hf:block=B,random=R`` is the graph that ``transformers``' ``BigBirdBlockSparseAttention``
computes in train mode, random blocks included, so that a sparsegraph model can reproduce a
Hugging Face BigBird forward pass (``docs/huggingface.md``) and a checkpoint trained there keeps
its graph here. The algorithm is re-implemented from its description below (no code copied).

Structure (``nb = n / B`` blocks, ``n`` a multiple of ``B``): query blocks ``0`` and ``nb - 1``
attend every key; every other query block ``q`` attends key blocks ``0``, ``nb - 1`` (global),
``q - 1 .. q + 1`` (window) and ``R`` random blocks drawn per head. Key blocks ``0`` and ``nb - 1``
are attended by everyone (the global rows and columns of the first and last block).

Random blocks, as Hugging Face draws them in training (``np.random.seed(layer)`` before every
forward pass of layer ``layer``, then ``np.random.permutation`` calls in a fixed order):

* ``n`` in {1024, 3072, 4096} (their "old plans used in paper"): per head, a table for
  ``max_len / B`` blocks is drawn and cut to the first ``nb - 2`` rows; row ``i`` draws from the
  blocks ``1 .. 1024 / B - 1`` minus (mostly) its window. Rows next to the ends may draw a window
  or global block, which Hugging Face then counts twice in its softmax; no graph can express that,
  so this pattern raises ``ValueError`` when it happens (it does at n = 1024 for most layers), or
  with ``strict=false`` builds the union of the blocks.
* other ``n``: a "plan" splits the rows into regions (the first ``2R + 5`` blocks and the rest
  when ``nb > 2R + 5``; the first ``R + 5`` blocks and the rest when ``nb > R + 5``, with ``R // 2``
  and ``R - R // 2`` random blocks; else one region), and each row takes, for each region it draws
  from, the first legal blocks of one permutation of that region's blocks. Illegal: the row's
  window, block 0, the region's last block, block ``end - 2`` for row 1 and block 1 for row
  ``end - 2``. Rows are visited in order, heads inside a row, regions as Hugging Face orders them.

``seed=0`` reproduces Hugging Face exactly (its generator is ``RandomState(layer)``); any other
seed draws the same way from ``RandomState([seed, layer])``. Hugging Face itself runs
``original_full`` attention when ``n <= (5 + 2R) * B``; this pattern raises there instead of
silently becoming full attention.

Not reproduced, because it is not a graph: in **eval** mode Hugging Face sets every random block to
block 0 (``rand_attn`` all zeros), so rows ``1 .. nb - 2`` see the keys of block 0 ``R + 1`` times
in their softmax. A sparsegraph model evaluates on the graph it trained on.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sparsegraph.graph import AttentionGraph
from sparsegraph.patterns import _csr
from sparsegraph.patterns._validate import check_bool, check_int
from sparsegraph.patterns.registry import NO_GLOBALS, register

__all__ = ["bigbird_hf", "hf_random_blocks", "LEGACY_LENGTHS"]

#: Sequence lengths at which Hugging Face uses its legacy random-block table.
LEGACY_LENGTHS = (1024, 3072, 4096)


def _plan(nb: int, r: int) -> list[tuple[int, int]]:
    """The regions ``[(end block, random blocks), ...]`` Hugging Face splits ``nb`` blocks into."""
    if 2 * r + 5 < nb:
        return [(2 * r + 5, r), (nb, 0)]
    if r + 5 < nb:
        return [(r + 5, r // 2), (nb, r - r // 2)]
    return [(nb, r)]


def _pick(gen: np.random.RandomState, row: int, lo: int, hi: int, k: int) -> np.ndarray:
    """The first ``k`` legal blocks of one permutation of ``lo .. hi - 1`` for query block ``row``."""
    order = gen.permutation(np.arange(lo, hi, dtype=np.int32))
    banned = {row - 1, row, row + 1, 0, hi - 1}
    if row == 1:
        banned.add(hi - 2)
    if row == hi - 2:
        banned.add(1)
    chosen = [int(b) for b in order if int(b) not in banned][:k]
    if len(chosen) < k:
        raise ValueError(
            f"bigbird_hf: query block {row} has only {len(chosen)} legal random blocks in "
            f"[{lo}, {hi}), needs {k}; Hugging Face fails or repeats blocks here: use a longer "
            "sequence or fewer random blocks"
        )
    return np.asarray(chosen, dtype=np.int64)


def _planned(gen: np.random.RandomState, nb: int, r: int, heads: int) -> np.ndarray:
    """Random blocks ``[heads, nb, r]`` (rows 1 .. nb-2 meaningful) by Hugging Face's plan."""
    plan = _plan(nb, r)
    ends = [e for e, _ in plan]
    counts = [c for _, c in plan]
    col0 = np.concatenate([[0], np.cumsum(counts)]).astype(int)  # column offset of each region
    out = np.zeros((heads, nb, int(sum(counts))), dtype=np.int64)

    def fill(rows: range, region: int, lo: int) -> None:
        k = counts[region]
        for row in rows:
            for h in range(heads):
                out[h, row, col0[region]: col0[region] + k] = _pick(gen, row, lo, ends[region], k)

    for p in range(len(plan)):
        if p > 0:
            if counts[p] > 0:  # rows of the earlier regions also draw from this one
                fill(range(1, ends[p - 1]), p, ends[p - 1])
            for q in range(p):  # this region's rows draw from every earlier region
                if counts[q] > 0:
                    fill(range(ends[p - 1], ends[p]), q, 0 if q == 0 else ends[q - 1])
        if counts[p] > 0:
            fill(range(1 if p == 0 else ends[p - 1], ends[p]), p, 0 if p == 0 else ends[p - 1])
    return out


def _legacy(gen: np.random.RandomState, nb: int, r: int, heads: int, max_blocks: int, block: int) -> np.ndarray:
    """Random blocks ``[heads, nb, r]`` by Hugging Face's table for lengths 1024/3072/4096."""
    out = np.zeros((heads, nb, r), dtype=np.int64)
    middle = np.arange(1, max_blocks - 1, dtype=np.int32)
    last = 1024 // block - 1 if 1024 > 2 * block else max_blocks - 1
    for h in range(heads):
        for i in range(1, max_blocks - 1):
            if i == 1:
                pool = middle[2:last]
            elif i == 2:
                pool = middle[3:last]
            elif i in (max_blocks - 3, max_blocks - 2):
                pool = middle[:last]
            else:
                start = min(i - 2, last)
                if start == last or i + 1 == last:
                    pool = middle[:start]
                else:
                    pool = np.concatenate((middle[:start], middle[i + 1: last]))
            picked = gen.permutation(pool)[:r]
            if picked.size < r:
                raise ValueError(
                    f"bigbird_hf: max_len={max_blocks * block} leaves query block {i} only "
                    f"{picked.size} random blocks, needs {r}"
                )
            if i < nb - 1:
                out[h, i] = picked
    return out


def hf_random_blocks(n: int, block: int, random: int, heads: int, layer: int, seed: int = 0,
                     max_len: int = 4096) -> np.ndarray:
    """The random key blocks ``[heads, n // block - 2, random]`` of query blocks ``1 .. nb - 2``,
    as Hugging Face's BigBird draws them in training for layer ``layer`` (``seed=0``); the same
    array as its ``rand_attn``. See the module docstring."""
    nb = n // block
    gen = np.random.RandomState(layer if seed == 0 else [seed, layer])
    if n in LEGACY_LENGTHS:
        if max_len % block or max_len < n:
            raise ValueError(
                f"bigbird_hf.max_len must be a multiple of block={block} and >= n={n}, got {max_len}"
            )
        table = _legacy(gen, nb, random, heads, max_len // block, block)
    else:
        table = _planned(gen, nb, random, heads)
    return table[:, 1: nb - 1]


@register("bigbird_hf", global_tokens=NO_GLOBALS)
def bigbird_hf(
    n: int,
    *,
    block: int = 64,
    random: int = 3,
    max_len: int = 4096,
    strict: bool = True,
    heads: int = 1,
    layer: int = 0,
    seed: int = 0,
) -> AttentionGraph:
    """Hugging Face BigBird's block-sparse graph, its random blocks drawn exactly as it draws them.

    First and last blocks global (rows and columns), a 3-block window, ``random`` random blocks
    per head and row (Hugging Face's ``rand_attn`` for layer ``layer`` in train mode when
    ``seed=0``). ``n`` must be a multiple of ``block`` with more than ``2 * random + 5`` blocks.
    ``max_len`` is the model's ``max_position_embeddings`` (used only at n = 1024, 3072, 4096).
    ``strict``: raise when Hugging Face's legacy table (n = 1024, 3072, 4096) repeats a window or
    global block in a row, which it then counts twice (default); ``false`` builds the union of the
    blocks anyway (the same key sets, each key once: not Hugging Face's exact softmax there).

    Edge kinds: ``"window"``, ``"random"``, ``"global"``.
    """
    n = check_int("bigbird_hf.n", n, 1)
    block = check_int("bigbird_hf.block", block, 1)
    random = check_int("bigbird_hf.random", random, 0)
    max_len = check_int("bigbird_hf.max_len", max_len, 1)
    strict = check_bool("bigbird_hf.strict", strict)
    if n % block:
        raise ValueError(
            f"bigbird_hf needs n to be a multiple of block: n={n} is not divisible by block={block}; "
            f"pad to {-(-n // block) * block} tokens (Hugging Face pads the same way)"
        )
    nb = n // block
    if nb <= 2 * random + 5:
        raise ValueError(
            f"bigbird_hf needs more than 2 * random + 5 = {2 * random + 5} blocks, got n/block = {nb} "
            f"(n={n}, block={block}); Hugging Face switches to full attention there"
        )
    table = hf_random_blocks(n, block, random, heads, layer, seed, max_len)  # [heads, nb-2, r]
    q = np.arange(nb, dtype=np.int64)
    window_b = _csr.row_ranges(np.maximum(q - 1, 0), np.minimum(q + 2, nb), nb)
    global_b = _csr.global_rows_cols(nb, np.array([0, nb - 1], dtype=np.int64))
    rows = np.arange(1, nb - 1, dtype=np.int64)
    random_b = []
    for h in range(heads if random else 0):
        t = table[h]
        clash = (t == 0) | (t == nb - 1) | (np.abs(t - rows[:, None]) <= 1)
        dup = np.array([len(set(r)) < len(r) for r in t.tolist()], dtype=bool)
        if strict and (clash.any() or dup.any()):
            i = int(np.flatnonzero(clash.any(axis=1) | dup)[0])
            raise ValueError(
                f"bigbird_hf at n={n} (layer {layer}, head {h}): Hugging Face's random blocks "
                f"{t[i].tolist()} of query block {i + 1} repeat one of its window/global blocks, which "
                "Hugging Face then counts twice in the softmax; no graph expresses that (its legacy "
                f"table for n in {LEGACY_LENGTHS}). Use another length, or strict=false for the union"
            )
        random_b.append(sp.csr_matrix(
            (np.ones(t.size, dtype=bool), (np.repeat(rows, t.shape[1]), t.ravel())), shape=(nb, nb)))
    base_b = window_b + global_b
    mats = [_csr.expand_blocks(base_b + r, block) for r in random_b] or [_csr.expand_blocks(base_b, block)]
    kinds = {"window": _csr.expand_blocks(window_b, block), "global": _csr.expand_blocks(global_b, block)}
    if random_b:
        kinds["random"] = [_csr.expand_blocks(r, block) for r in random_b]
    return AttentionGraph(mats, heads=heads).with_kinds(kinds, subset=True)
