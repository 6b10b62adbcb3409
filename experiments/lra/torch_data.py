"""torch ``Dataset`` wrapper for LRA splits (LRA: Tay et al. 2021).

Kept in its own module so that the rest of :mod:`sparsegraph.experiments.lra` imports without torch.
For deterministic, resumable batching use :func:`experiments.lra.datasets.batches`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .datasets import Split

__all__ = ["LRADataset"]


class LRADataset(Dataset):
    """Items are ``{"tokens", "label", "length"[, "tokens2", "length2"]}`` int64 tensors."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = self.split
        if not -len(s) <= i < len(s):
            raise IndexError(f"index {i} out of range for a split of {len(s)} examples")
        item = {"tokens": torch.from_numpy(s.tokens[i].astype(np.int64)),
                "label": torch.tensor(int(s.labels[i])),
                "length": torch.tensor(int(s.lengths[i]))}
        if s.tokens2 is not None and s.lengths2 is not None:
            item["tokens2"] = torch.from_numpy(s.tokens2[i].astype(np.int64))
            item["length2"] = torch.tensor(int(s.lengths2[i]))
        return item
