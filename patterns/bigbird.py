"""BigBird block-sparse attention: window + random + global blocks (Zaheer et al. 2020)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

from sparsegraph.patterns import _csr, _sample
from sparsegraph.patterns._validate import check_choice, check_int
from sparsegraph.patterns.registry import register, rng
from sparsegraph.graph import AttentionGraph


def _random_blocks(
    gen: np.random.Generator, first: int, total: int, lo: np.ndarray, hi: np.ndarray, r: int
) -> tuple[np.ndarray, np.ndarray]:
    """Random key blocks for the query blocks ``first + t`` (``t = 0 .. len(lo)-1``).

    Query block ``t`` draws ``min(r, m_t)`` distinct blocks uniformly from the eligible blocks
    ``[first, total)`` minus its window ``[lo[t], hi[t]]`` (``m_t`` of them). Returns the
    ``(query block, key block)`` pairs.
    """
    width = np.maximum(hi - lo + 1, 0)
    sizes = (total - first) - width
    qrows = np.arange(first, first + lo.size, dtype=np.int64)
    many = sizes > r  # sample r of them; the others take every eligible block
    u_rows, u_vals = [], []
    if r and many.any():
        picks = _sample.floyd(gen, sizes[many], r)
        u_rows.append(np.repeat(np.flatnonzero(many), r))
        u_vals.append(picks.ravel())
    few = np.flatnonzero(~many & (sizes > 0)) if r else np.zeros(0, dtype=np.int64)
    if few.size:
        counts = sizes[few]
        u_rows.append(np.repeat(few, counts))
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        u_vals.append(np.arange(int(counts.sum()), dtype=np.int64) - starts)
    if not u_rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    t = np.concatenate(u_rows)
    u = np.concatenate(u_vals)
    # the u-th eligible block: count from `first`, skipping the window interval
    blocks = first + u
    blocks = blocks + np.where(blocks >= lo[t], width[t], 0)
    return qrows[t], blocks


@register("bigbird", global_tokens=lambda p: p["global_"] * p["block"] if p["mode"] == "etc" else 0)
def bigbird(
    n: int,
    *,
    block: int = 64,
    window: int = 3,
    random: int = 3,
    global_: int = 2,
    mode: Literal["itc", "etc"] = "itc",
    heads: int = 1,
    layer: int = 0,
    seed: int = 0,
) -> AttentionGraph:
    """BigBird (Zaheer et al. 2020): blockified window + random + global attention.

    The ``n`` tokens form ``nb = n / block`` blocks (``n`` must be a multiple of ``block``, else
    ``ValueError``: pad the sequence, as the original code does). Every edge set below is made of
    whole ``block x block`` tiles. Let ``G`` be the global blocks and ``B`` the blocks of the
    sequence that the window and random parts range over:

    - ``mode="itc"``: ``G`` = the first ``global_`` blocks of the sequence (``global_ <= nb``);
      ``B`` = all ``nb`` blocks. The graph has ``n`` positions.
    - ``mode="etc"``: ``global_ * block`` extra tokens in front (``num_global = global_ * block``,
      ``global_`` blocks ``G``); ``B`` = the ``nb`` blocks of regular tokens behind them.

    Global: the rows and the columns of ``G`` are full (a global token attends every token and is
    attended by every token). Every other query block ``q`` attends

    - window: the blocks ``q - window//2 .. q + window//2`` that lie in ``B`` (``window`` odd, or
      0 for none); cut at the ends of ``B``, never wrapped around;
    - random: ``min(random, m_q)`` distinct blocks drawn uniformly, without replacement, from the
      ``m_q`` blocks of ``B`` that are neither global nor in ``q``'s window;
    - global: every block of ``G``.

    These three sets are disjoint except that an ITC window may reach into ``G``, so a non-global
    query block has exactly ``|G ∪ W(q)| + min(random, m_q)`` key blocks; that is
    ``window + random + global_`` whenever ``q``'s window lies inside ``B \\ G`` and there are at
    least ``random`` eligible blocks. With too few blocks the random part takes all the eligible
    blocks (the row becomes full); nothing raises.

    Randomness: head ``h`` draws its random blocks from ``patterns.rng(seed, layer, h, "bigbird")``:
    heads differ (as in the paper), layers differ, and the same ``(seed, layer, heads, n)`` gives
    the same graph everywhere. With ``random=0`` every head is the same (stored once).

    Compared with the original code (google-research/bigbird ``bigbird_block_rand_mask``) and
    Hugging Face ``modeling_big_bird.py``: they fix the global blocks to the *first and last* block
    (``global_=2``) and the window to 3 blocks, support no ETC in the block-sparse path, and draw
    random blocks per head with ``np.random`` seeded by the layer index, from the middle blocks
    minus the window, without replacement -- except that their rows next to the ends may draw
    window blocks (a slicing shortcut noted in their comments); for lengths 1024/3072/4096 they
    draw only from the first 1024 tokens, for other lengths they split the random blocks over a
    "plan" of regions. Here the global blocks are the first ``global_``
    (so ITC and ETC both put globals in front), any odd window and any number of global blocks are
    allowed, the last query blocks' windows are cut instead of relying on a global last block, and
    random blocks are always uniform over all eligible blocks, so the per-row count above is exact.

    Edge kinds: ``"window"``, ``"random"``, ``"global"``.
    """
    n = check_int("bigbird.n", n, 1)
    block = check_int("bigbird.block", block, 1)
    window = check_int("bigbird.window", window, 0)
    random = check_int("bigbird.random", random, 0)
    global_ = check_int("bigbird.global", global_, 0)
    mode = check_choice("bigbird.mode", mode, ("itc", "etc"))
    if window and window % 2 == 0:
        raise ValueError(
            f"bigbird.window must be odd (a window of blocks centred on the query block) or 0, got {window}"
        )
    if n % block:
        raise ValueError(
            f"bigbird needs n to be a multiple of block: n={n} is not divisible by block={block}; "
            f"pad the sequence to {-(-n // block) * block} tokens or choose another block size"
        )
    nb = n // block
    if mode == "itc" and global_ > nb:
        raise ValueError(
            f"bigbird.global must be <= the number of blocks n/block = {nb} in ITC mode, got {global_}"
        )
    g = global_
    total = nb if mode == "itc" else g + nb  # blocks of the whole graph
    span = 0 if mode == "itc" else g  # first block of B
    q = np.arange(g, total, dtype=np.int64)  # the non-global query blocks
    half = window // 2
    if window:
        lo, hi = np.maximum(q - half, span), np.minimum(q + half, total - 1)
    else:
        lo, hi = q, q - 1
    starts = np.zeros(total, dtype=np.int64)
    stops = np.zeros(total, dtype=np.int64)
    starts[g:], stops[g:] = lo, hi + 1
    window_b = _csr.row_ranges(starts, stops, total)
    global_b = _csr.global_rows_cols(total, np.arange(g, dtype=np.int64))
    # random blocks exclude G and the part of the window inside B \ G
    lo_rand = np.maximum(lo, g)
    random_b = []
    for h in range(heads if random else 0):
        qb, kb = _random_blocks(rng(seed, layer, h, "bigbird"), g, total, lo_rand, hi, random)
        random_b.append(sp.csr_matrix((np.ones(qb.size, dtype=bool), (qb, kb)), shape=(total, total)))
    base_b = window_b + global_b
    mats = [_csr.expand_blocks(base_b + r, block) for r in random_b] or [_csr.expand_blocks(base_b, block)]
    kinds = {
        "window": _csr.expand_blocks(window_b, block),
        "global": _csr.expand_blocks(global_b, block),
    }
    if random_b:
        kinds["random"] = [_csr.expand_blocks(r, block) for r in random_b]
    num_global = g * block if mode == "etc" else 0
    return AttentionGraph(mats, heads=heads, num_global=num_global).with_kinds(kinds, subset=True)
