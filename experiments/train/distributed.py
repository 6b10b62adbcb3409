"""Data-parallel training across processes started by ``torchrun``.

``torchrun --nproc_per_node=N -m sparsegraph.experiments.cli train CONFIG.toml`` starts N processes with the
environment variables ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`init` joins them into a process group (``gloo`` on CPU, ``nccl`` on CUDA) and the trainer
wraps the model in ``DistributedDataParallel``, which averages gradients across processes during
the backward pass.

Determinism across ranks:

- every rank reads the same *global* batch (the data order depends on the seed and the epoch, not
  on the rank) and keeps its own contiguous slice (:func:`shard`), so N processes train on exactly
  the examples one process would;
- models are built from the run's seed on every rank, so the random attention layouts agree;
  :func:`check_same` compares a fingerprint of the model (its parameters, buffers and, when it has a
  ``layout_fingerprint()`` method, its attention graphs) across ranks before training starts and
  stops with an error naming the ranks that differ;
- only rank 0 writes files (checkpoints, metrics, config, results).

Without those environment variables everything here is a no-op for a single process.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistInfo",
    "init",
    "shutdown",
    "select_device",
    "shard_bounds",
    "shard",
    "batch_size_of",
    "all_gather_objects",
    "check_same",
    "model_fingerprint",
    "barrier",
]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: rank ``rank`` of ``world_size``, on ``device``."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def select_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA (the local rank's GPU) when available, else CPU; ``cpu``; ``cuda``."""
    if preference not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {preference!r}")
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ValueError("run.device = 'cuda' but torch sees no CUDA device; use 'cpu' or 'auto'")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def _env_int(name: str, default: int) -> int:
    v = os.environ.get(name)
    if v is None:
        return default
    try:
        return int(v)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {v!r}") from None


def init(device_preference: str = "auto") -> DistInfo:
    """Join the ``torchrun`` process group if there is one; return this process's :class:`DistInfo`."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    device = select_device(device_preference, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=device)


def shutdown() -> None:
    """Leave the process group (if any)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def batch_size_of(batch: Any) -> int:
    """The leading dimension shared by every tensor / list in ``batch`` (dict, tuple, list or tensor)."""
    sizes: set[int] = set()

    def visit(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            if x.dim() == 0:
                raise ValueError("batch holds a 0-d tensor; every entry needs a leading batch dimension")
            sizes.add(x.shape[0])
        elif isinstance(x, Mapping):
            for v in x.values():
                visit(v)
        elif isinstance(x, (list, tuple)) and x and isinstance(x[0], (torch.Tensor, Mapping, list, tuple)):
            for v in x:
                visit(v)
        elif isinstance(x, (list, tuple)):
            sizes.add(len(x))

    visit(batch)
    if len(sizes) != 1:
        raise ValueError(f"batch entries disagree on the batch size (found {sorted(sizes)}); expected one size")
    return sizes.pop()


def _slice(x: Any, lo: int, hi: int) -> Any:
    if isinstance(x, torch.Tensor):
        return x[lo:hi]
    if isinstance(x, Mapping):
        return {k: _slice(v, lo, hi) for k, v in x.items()}
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], (torch.Tensor, Mapping, list, tuple)):
        return type(x)(_slice(v, lo, hi) for v in x)
    if isinstance(x, (list, tuple)):
        return x[lo:hi]
    raise TypeError(f"cannot slice a batch entry of type {type(x).__name__}; use tensors, lists, dicts or tuples")


def shard_bounds(n: int, parts: int, index: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of part ``index`` when ``n`` rows are split into ``parts`` contiguous parts.

    Sizes differ by at most one (the first ``n % parts`` parts get the extra row), like
    ``numpy.array_split``.
    """
    if parts < 1 or not 0 <= index < parts:
        raise ValueError(f"need 0 <= index < parts, got index={index}, parts={parts}")
    q, r = divmod(n, parts)
    lo = index * q + min(index, r)
    return lo, lo + q + (1 if index < r else 0)


def shard(batch: Any, parts: int, index: int) -> Any:
    """Part ``index`` of ``batch`` split into ``parts`` contiguous parts along the batch dimension."""
    lo, hi = shard_bounds(batch_size_of(batch), parts, index)
    return _slice(batch, lo, hi)


def all_gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` (just ``[obj]`` for one process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def model_fingerprint(model: nn.Module, *, tensors: bool = True) -> str:
    """SHA-256 over the model's state: parameters and buffers (names, dtypes, shapes, bytes) unless
    ``tensors=False``, and every non-tensor entry (a module's extra state, such as the identity and
    hashes of its attention layouts), plus ``model.layout_fingerprint()`` when the model has one."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        if isinstance(t, torch.Tensor):
            if tensors:
                t = t.detach().to("cpu").contiguous()
                h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
                h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(f"{name}|extra|{_stable_repr(t)}|".encode())
    fp = getattr(model, "layout_fingerprint", None)
    if callable(fp):
        h.update(b"layouts|" + str(fp()).encode())
    return h.hexdigest()


def _stable_repr(x: Any) -> str:
    """A repr independent of dict insertion order (tensors by their bytes)."""
    if isinstance(x, Mapping):
        return "{" + ",".join(f"{_stable_repr(k)}:{_stable_repr(v)}" for k, v in sorted(x.items(), key=lambda kv: str(kv[0]))) + "}"
    if isinstance(x, (list, tuple)):
        return "[" + ",".join(_stable_repr(v) for v in x) + "]"
    if isinstance(x, torch.Tensor):
        return hashlib.sha256(x.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()
    return repr(x)


def check_same(value: str, what: str) -> None:
    """Raise ``RuntimeError`` naming the ranks whose ``value`` differs from rank 0's."""
    values = all_gather_objects(value)
    bad = [r for r, v in enumerate(values) if v != values[0]]
    if bad:
        raise RuntimeError(
            f"{what} differs between ranks: rank 0 has {values[0][:16]}..., ranks {bad} have "
            f"{[values[r][:16] for r in bad]}; every rank must build the model from the same seed"
        )
