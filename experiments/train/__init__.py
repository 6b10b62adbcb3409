"""The trainer: a model-agnostic training loop with exact resume, and its parts.

- :mod:`sparsegraph.experiments.train.trainer` — :class:`Trainer` (the loop), :class:`Callback`;
- :mod:`sparsegraph.experiments.train.config` — its configuration sections ``[run]``, ``[optim]``,
  ``[train]`` (torch-free, so the command line parses without torch);
- :mod:`sparsegraph.experiments.train.objective` — the :class:`Objective` and :class:`DataSource`
  interfaces: what the trainer needs from a task's loss and from its data;
- :mod:`sparsegraph.experiments.train.classification` — the classification objective;
- :mod:`sparsegraph.experiments.train.optim` — AdamW parameter groups and learning-rate schedules;
- :mod:`sparsegraph.experiments.train.checkpoint` — atomic checkpoints, the checkpoint directory,
  and loading pretrained weights into a model;
- :mod:`sparsegraph.experiments.train.rng` — seeding and generator states;
- :mod:`sparsegraph.experiments.train.distributed` — ``torchrun`` / DistributedDataParallel helpers;
- :mod:`sparsegraph.experiments.train.metrics` — ``metrics.jsonl`` (and TensorBoard);
- :mod:`sparsegraph.experiments.train.progress` — the progress bar.

The names below load on first use (PEP 562), so importing :mod:`.config` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparsegraph._lazy import lazy_exports

__all__ = ["Trainer", "Callback", "Objective", "DataSource", "load_model_weights"]

_WHERE = {
    "Trainer": "sparsegraph.experiments.train.trainer",
    "Callback": "sparsegraph.experiments.train.trainer",
    "Objective": "sparsegraph.experiments.train.objective",
    "DataSource": "sparsegraph.experiments.train.objective",
    "load_model_weights": "sparsegraph.experiments.train.checkpoint",
}

if TYPE_CHECKING:
    from sparsegraph.experiments.train.checkpoint import load_model_weights
    from sparsegraph.experiments.train.objective import DataSource, Objective
    from sparsegraph.experiments.train.trainer import Callback, Trainer


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
