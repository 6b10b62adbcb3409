"""The trainer: a model-agnostic training loop with exact resume, and its parts.

- :mod:`sparsegraph.experiments.train.trainer` — :class:`Trainer` (the loop), :class:`Callback`;
- :mod:`sparsegraph.experiments.train.task` — the :class:`Task` and :class:`DataSource` interfaces;
- :mod:`sparsegraph.experiments.train.optim` — AdamW parameter groups and learning-rate schedules;
- :mod:`sparsegraph.experiments.train.checkpoint` — atomic files and the checkpoint directory;
- :mod:`sparsegraph.experiments.train.rng` — seeding and generator states;
- :mod:`sparsegraph.experiments.train.distributed` — ``torchrun`` / DistributedDataParallel helpers;
- :mod:`sparsegraph.experiments.train.metrics` — ``metrics.jsonl`` (and TensorBoard);
- :mod:`sparsegraph.experiments.train.progress` — the progress bar.
"""

from sparsegraph.experiments.train.task import DataSource, Task
from sparsegraph.experiments.train.trainer import Callback, Trainer, load_model_weights

__all__ = ["Trainer", "Callback", "Task", "DataSource", "load_model_weights"]
