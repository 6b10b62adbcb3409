"""Seeding and the saved state of the global random generators.

Training draws random numbers from torch's global generator (dropout, anything a model samples)
and possibly from Python's and NumPy's. :func:`seed_everything` seeds all three from the run seed;
:func:`rng_state` / :func:`set_rng_state` capture and restore them in a checkpoint, so a resumed
run continues the very same streams. Data order and MLM masking do not use these global generators:
they are computed from ``(seed, epoch, index)`` (see :mod:`sparsegraph.experiments.text.mlm`).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["derive_seed", "seed_everything", "rng_state", "set_rng_state"]


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 63-bit seed determined by ``seed`` and ``keys`` (NumPy ``SeedSequence``; the same everywhere).

    Strings are hashed with their UTF-8 bytes (not Python's salted ``hash``).
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    entropy = [seed]
    for k in keys:
        if isinstance(k, str):
            entropy.extend(k.encode("utf-8"))
            entropy.append(256)  # separator, so ("ab", "c") != ("a", "bc")
        else:
            entropy.append(int(k))
    return int(np.random.SeedSequence(entropy).generate_state(2, np.uint64)[0] >> np.uint64(1))


def seed_everything(seed: int, *keys: int | str) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators from ``(seed, *keys)``."""
    s = derive_seed(seed, *keys)
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)


def rng_state() -> dict[str, Any]:
    """The state of every global random generator, as tensors and plain values.

    NumPy's and Python's Mersenne-Twister keys are stored as tensors so the checkpoint loads with
    ``weights_only=True``.
    """
    py = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": {"version": py[0], "internal": torch.tensor(py[1], dtype=torch.int64), "gauss": py[2]},
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by :func:`rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["internal"].tolist()), py["gauss"]))
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": n["bit_generator"],
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
