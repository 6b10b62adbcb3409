"""Stacking per-example generators into split arrays, for the diagnostic tasks (``recall``,
``needles``) whose ``generate_example(cfg, seed, split, index)`` returns
``(tokens [length], label, needed [k])`` and whose padding id is 0."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

__all__ = ["stack_examples"]


def stack_examples(generate_example: Callable[[Any, int, str, int], tuple[np.ndarray, int, np.ndarray]],
                   cfg: Any, seed: int, split: str, n: int, needed: int) -> dict[str, np.ndarray]:
    """``n`` examples ``0 .. n-1`` of ``split`` as the arrays of a ``Split``: ``tokens [n, length]``
    (uint8, or uint16 past 256 ids), ``labels``, ``lengths`` (the tokens other than padding, id 0)
    and ``needed [n, needed]``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    dtype = np.uint8 if cfg.vocab_size <= 256 else np.uint16
    tokens = np.zeros((n, cfg.length), dtype=dtype)
    labels = np.zeros(n, dtype=np.int64)
    positions = np.zeros((n, needed), dtype=np.int64)
    for i in range(n):
        tokens[i], labels[i], positions[i] = generate_example(cfg, seed, split, i)
    lengths = (tokens != 0).sum(axis=1).astype(np.int64)
    return {"tokens": tokens, "labels": labels, "lengths": lengths, "needed": positions}
