"""The patterns of a comparison: parsing ``--patterns`` and resolving short names to full specs.

A pattern entry is either

* a **short name** — ``full``, ``bigbird``, ``longformer``, ``window``, ``window_only``, ``dilated``,
  ``watts_strogatz``, ``erdos_renyi``, ``erdos_renyi_blocks``, ``sparse_transformer`` — resolved to a full spec string
  for the task's length and block size by :func:`resolve` (printed before training), or
* any **spec string** of the pattern registry (``"bigbird:block=32,window=3,random=2,global=1"``,
  ``"sliding_window:window=65|global_itc:indices=[0]"``, the name of a pattern the user
  registered), used as given.

Short names give every sparse pattern the same **key budget** as BigBird with LRA's parameters
(window 3 blocks, 3 random blocks, 2 global blocks: ``K = 8 * block`` keys per ordinary query),
so that a comparison is between graph *shapes* rather than edge counts: Longformer and the plain
window take a window of ``K + 1`` keys (LRA's own Longformer used a 512 window at length 2000, the
same budget as its BigBird with 64-blocks), Watts–Strogatz ``k = K`` lattice neighbours with
rewiring probability 0.1, Erdős–Rényi ``K`` random keys, its block version ``erdos_renyi_blocks``
its own block and ``BUDGET_BLOCKS - 1`` random key blocks (the same ``K`` keys, drawn as whole
layout blocks: token-level random keys touch most blocks of the layout, so ``erdos_renyi`` costs
nearly what full attention costs), the Sparse Transformer a stride of one block. With CLS pooling the CLS token (position 0) is made global for the window patterns, as the
Longformer paper does for classification (Beltagy et al. 2020, §3.1); BigBird's global blocks
already contain it. ``window_only`` is the plain window without that global CLS: information
reaches the CLS token only through the window, ``K/2`` positions per layer, which is what a
graph that cannot route looks like.

Splitting ``--patterns``: entries are separated by commas, but a spec's parameter list contains
commas too. A comma-separated piece that starts with ``identifier=`` continues the parameter list
of the entry before it (a new entry always starts with a pattern name, which contains no ``=``);
commas inside ``[...]`` never split. So ``--patterns full,bigbird:block=32,random=2,window`` is
the three entries ``full``, ``bigbird:block=32,random=2`` and ``window``. ``--pattern SPEC``
(repeatable) takes one entry verbatim.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Iterable

from sparsegraph import patterns
from sparsegraph.patterns.registry import split_outside_brackets

__all__ = ["PatternChoice", "SHORT_NAMES", "split_patterns", "check_entries", "resolve", "resolve_all", "run_label"]

#: Short names and what they become (``K`` = the key budget, ``b`` = the block size).
SHORT_NAMES: dict[str, str] = {
    "full": "full attention",
    "bigbird": "bigbird:block=b,window=3,random=3,global=2 (ITC; LRA's BigBird)",
    "longformer": "longformer:window=K+1 (+ global CLS with cls pooling)",
    "window": "sliding_window:window=K+1 (+ global CLS with cls pooling)",
    "window_only": "sliding_window:window=K+1 (no global token, whatever the pooling)",
    "dilated": "longformer:window=K/2+1,dilation=2 (+ global CLS with cls pooling)",
    "watts_strogatz": "watts_strogatz:k=K,p=0.1",
    "erdos_renyi": "erdos_renyi:degree=K",
    "erdos_renyi_blocks": "erdos_renyi:degree=7,block=b (its own block + 7 random key blocks: K keys)",
    "sparse_transformer": "sparse_transformer:stride=b,causal=false",
}

#: BigBird's blocks per ordinary query row with LRA's parameters: window 3 + random 3 + global 2.
BUDGET_BLOCKS = 8

_CONTINUATION = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*=")


@dataclass(frozen=True)
class PatternChoice:
    """One pattern of a comparison: ``label`` (the entry as the user wrote it: a short name or a
    spec) and ``spec`` (the full spec string the model uses)."""

    label: str
    spec: str


def split_patterns(text: str) -> list[str]:
    """Split a ``--patterns`` value into entries (rules in the module docstring).

    >>> split_patterns("full,bigbird:block=32,random=2,window")
    ['full', 'bigbird:block=32,random=2', 'window']
    >>> split_patterns("longformer:window=65,global_indices=[0,5]|full,erdos_renyi:degree=8")
    ['longformer:window=65,global_indices=[0,5]|full', 'erdos_renyi:degree=8']
    """
    if not isinstance(text, str):
        raise TypeError(f"--patterns must be a string, got {type(text).__name__}")
    pieces = split_outside_brackets(text, ",", f"--patterns {text!r}")
    entries: list[str] = []
    for piece in pieces:
        if _CONTINUATION.match(piece) and entries and ":" in entries[-1]:
            entries[-1] += "," + piece
            continue
        if not piece.strip():
            raise ValueError(f"--patterns {text!r}: empty entry (two commas in a row, or a "
                             f"trailing comma); expected comma-separated pattern names or specs")
        if _CONTINUATION.match(piece):
            raise ValueError(f"--patterns {text!r}: {piece.strip()!r} looks like a parameter "
                             f"but follows no 'name:' spec; write it as 'name:{piece.strip()}'")
        entries.append(piece)
    return [e.strip() for e in entries]


def _budget(block: int, length: int) -> int:
    """Keys per ordinary query of BigBird with LRA's parameters, capped at the length."""
    return min(BUDGET_BLOCKS * block, length)


def _even(k: int) -> int:
    return k - k % 2


def _odd(w: int) -> int:
    return w if w % 2 else w + 1


def check_entries(entries: Iterable[str]) -> None:
    """Check, before any data is loaded, that every entry is a short name or a valid spec of the
    registry and that none is listed twice. Resolution happens once, in :func:`resolve_all`, when
    the task's length is known."""
    seen: set[str] = set()
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(f"pattern entry must be a non-empty string, got {entry!r}")
        name = entry.strip()
        if name in seen:
            raise ValueError(f"pattern {name!r} is listed twice")
        seen.add(name)
        if name not in SHORT_NAMES:
            _check_spec(name, name)
    if not seen:
        raise ValueError("no patterns to compare: give --patterns or --pattern")


def _check_spec(name: str, spec: str) -> None:
    try:
        patterns.get(spec)
    except (ValueError, TypeError, KeyError) as e:
        known = ", ".join(sorted(set(SHORT_NAMES) | {p.name for p in patterns.available()}))
        raise ValueError(f"pattern {name!r}: {e} (short names and registered patterns: {known})") from None


def resolve(entry: str, *, length: int, block: int, pooling: str = "cls") -> PatternChoice:
    """The :class:`PatternChoice` of one entry for a model whose attention runs on ``length``
    positions (the padded length, CLS included) with layout block ``block``.

    A short name becomes its full spec (see :data:`SHORT_NAMES`); anything else must be a valid
    spec of the registry and is used verbatim. Raises ``ValueError`` naming the entry and the
    known patterns when it is neither.
    """
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError(f"pattern entry must be a non-empty string, got {entry!r}")
    name = entry.strip()
    k = _budget(block, length)
    glob = ",global_indices=[0]" if pooling == "cls" else ""
    short = {
        "full": "full",
        "bigbird": f"bigbird:block={block},window=3,random=3,global=2",
        "longformer": f"longformer:window={_odd(k)}{glob}",
        "window": f"sliding_window:window={_odd(k)}" + ("|global_itc:indices=[0]" if glob else ""),
        "window_only": f"sliding_window:window={_odd(k)}",
        "dilated": f"longformer:window={_odd(k // 2)},dilation=2{glob}",
        "watts_strogatz": f"watts_strogatz:k={_even(min(k, length - 1))},p=0.1",
        "erdos_renyi": f"erdos_renyi:degree={min(k, length - 1)}",
        "erdos_renyi_blocks": f"erdos_renyi:degree={min(BUDGET_BLOCKS - 1, -(-length // block) - 1)},block={block}",
        "sparse_transformer": f"sparse_transformer:stride={block},causal=false",
    }
    spec = short.get(name, name)
    _check_spec(name, spec)
    return PatternChoice(label=name, spec=spec)


def resolve_all(entries: Iterable[str], *, length: int, block: int,
                pooling: str = "cls") -> list[PatternChoice]:
    """:func:`resolve` for every entry; a repeated entry or spec is an error."""
    out: list[PatternChoice] = []
    for e in entries:
        c = resolve(e, length=length, block=block, pooling=pooling)
        for prev in out:
            if prev.label == c.label or prev.spec == c.spec:
                raise ValueError(f"pattern {c.label!r} is listed twice (as {prev.label!r} and "
                                 f"{c.label!r}, both {c.spec!r})")
        out.append(c)
    if not out:
        raise ValueError("no patterns to compare: give --patterns or --pattern")
    return out


def run_label(label: str) -> str:
    """``label`` as a directory/run name: letters, digits and ``._+=-`` only."""
    safe = re.sub(r"[^A-Za-z0-9._+=-]+", "_", label)
    safe = re.sub(r"^[^A-Za-z0-9]+", "", safe).rstrip("_")[:60] or "pattern"
    if safe != label:
        # different labels must not share a directory after sanitising
        safe += "-" + hashlib.sha1(label.encode()).hexdigest()[:8]
    return safe
