"""What the trainer needs from a task and from its data — two small interfaces.

The trainer is model-agnostic: it trains any ``torch.nn.Module`` through a :class:`Objective` and a
:class:`DataSource`.

A **task** turns a batch into a loss::

    loss, metrics = task.loss_and_metrics(model, batch)

``loss`` is a scalar tensor (the *mean* over the batch's items) to differentiate; ``metrics`` maps
names to batch means (floats or 0-d tensors), e.g. ``{"accuracy": 0.75}``. The reserved key
``"count"`` gives the number of items the means are over (examples for classification, masked
tokens for MLM); evaluation averages batches weighted by it (default: the batch size). A task may
also define ``num_tokens(batch) -> int`` (for tokens/s).

A **data source** yields batches deterministically::

    data.batches(split, batch_size, seed=seed, epoch=epoch, start_step=k)

yields the batches of ``split`` for that epoch in order, starting with batch number ``k`` (so a
resumed run skips exactly the batches it already trained on). A batch is a dict (or tuple) of
tensors whose first dimension is the batch; the trainer slices it into per-process shards and
gradient-accumulation micro-batches. The order may depend only on ``(seed, epoch)`` — never on a
global random generator — so every process and every resumed run sees the same batches. The last
batch of an epoch may be smaller; training skips it, evaluation uses it.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Protocol, runtime_checkable

import torch
from torch import nn

__all__ = ["Objective", "DataSource", "to_device", "metrics_to_floats"]


@runtime_checkable
class Objective(Protocol):
    def loss_and_metrics(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, Mapping[str, Any]]: ...


@runtime_checkable
class DataSource(Protocol):
    def batches(
        self, split: str, batch_size: int, *, seed: int, epoch: int = 0, start_step: int = 0
    ) -> Iterator[Any]: ...


def to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` with every tensor moved to ``device`` (dicts, lists and tuples are walked)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def metrics_to_floats(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Metric values as Python floats; a non-scalar value is an error naming it."""
    out = {}
    for k, v in metrics.items():
        if isinstance(v, torch.Tensor):
            if v.numel() != 1:
                raise ValueError(f"metric {k!r} must be a scalar, got a tensor of shape {tuple(v.shape)}")
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"metric {k!r} must be a number, got {type(v).__name__} {v!r}")
        out[k] = float(v)
    return out
