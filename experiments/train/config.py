"""The configuration sections the trainer reads: ``[run]``, ``[optim]`` and ``[train]``.

Each is a dataclass checked on construction; :mod:`sparsegraph.experiments.infra.config` loads
them from TOML and ``--set`` overrides.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from sparsegraph.experiments.infra.config import suggest

__all__ = ["RunConfig", "OptimConfig", "TrainConfig"]


_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]*")


@dataclass
class RunConfig:
    """Where and how a run executes.

    ``name`` is the directory under ``out_dir`` (``runs/<name>/``); ``seed`` seeds everything random
    (model initialisation, data order, masking, dropout); ``device`` is ``auto`` (CUDA when
    available, else CPU), ``cpu`` or ``cuda``.
    """

    name: str = "run"
    seed: int = 0
    out_dir: str = "runs"
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name):
            raise ValueError(
                f"run.name must be a non-empty name of letters, digits and ._+=- (it becomes a "
                f"directory), got {self.name!r}"
            )
        if self.seed < 0:
            raise ValueError(f"run.seed must be >= 0, got {self.seed}")


@dataclass
class OptimConfig:
    """AdamW and its learning-rate schedule (see :mod:`sparsegraph.experiments.train.optim`).

    ``no_decay`` lists parameter kinds exempt from weight decay: ``bias`` (parameters named
    ``*bias``), ``norm`` (parameters of normalisation layers), ``embedding`` (parameters of
    ``nn.Embedding``); ``no_decay_params`` adds ``fnmatch`` patterns over parameter names (each must
    match at least one parameter). ``schedule`` is applied after ``warmup_steps`` of linear warm-up;
    ``min_lr_ratio`` is the floor of the linear and cosine decays as a fraction of ``lr``.
    """

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.01
    no_decay: tuple[str, ...] = ("bias", "norm", "embedding")
    no_decay_params: tuple[str, ...] = ()
    schedule: Literal["linear", "cosine", "rsqrt", "constant"] = "linear"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0

    def __post_init__(self) -> None:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"optim.lr must be a finite number > 0, got {self.lr}")
        for i, b in enumerate(self.betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"optim.betas[{i}] must be in [0, 1), got {b}")
        if not self.eps > 0:
            raise ValueError(f"optim.eps must be > 0, got {self.eps}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ValueError(f"optim.weight_decay must be a finite number >= 0, got {self.weight_decay}")
        kinds = ("bias", "norm", "embedding")
        for k in self.no_decay:
            if k not in kinds:
                raise ValueError(
                    f"optim.no_decay entries must be among {list(kinds)}{suggest(k, kinds)}, got {k!r}"
                )
        if self.warmup_steps < 0:
            raise ValueError(f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


@dataclass
class TrainConfig:
    """The training loop (see :class:`experiments.train.trainer.Trainer`).

    ``batch_size`` is the *global* batch of one optimizer step, in examples. It is split into
    ``grad_accum`` micro-batches and, under data parallelism, into one shard per process, so the
    data order and the update are the same for any number of processes and any accumulation
    (``batch_size`` must be divisible by ``grad_accum * world_size``).

    ``precision``: ``fp32``; ``bf16`` (autocast, CPU or GPU); ``fp16`` (autocast with loss scaling,
    GPU only). ``clip_norm`` = 0 disables gradient clipping. ``eval_every`` = 0 evaluates only at the
    end; ``eval_batches`` = 0 evaluates the whole split; ``eval_at_start`` also evaluates the
    untrained model (logged as step 0, not a candidate for the best checkpoint). ``checkpoint_every`` = 0 checkpoints only at
    evaluations and at the end. ``patience`` = 0 disables early stopping; otherwise training stops
    after ``patience`` evaluations in a row without improving ``metric`` (``mode`` says whether
    larger or smaller is better). ``test_split`` = "" skips the final test evaluation.
    ``progress``: ``auto`` draws a bar on a terminal and prints periodic lines otherwise.
    ``plots``: draw ``curves.png`` (loss and metric against the step) in the run directory at
    the end (:mod:`sparsegraph.experiments.train.plots`). ``input_check``: before the first
    update of a fresh run the trainer measures whether the model's outputs depend on its inputs
    (:mod:`sparsegraph.experiments.train.sensitivity`), prints the numbers, and stops the run with
    one line when either is below ``input_check`` (0 measures and prints but never stops).
    """

    steps: int = 1000
    batch_size: int = 32
    eval_batch_size: int = 0
    grad_accum: int = 1
    clip_norm: float = 1.0
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    eval_every: int = 0
    eval_batches: int = 0
    eval_at_start: bool = False
    eval_split: str = "val"
    test_split: str = "test"
    checkpoint_every: int = 0
    keep_last: int = 2
    patience: int = 0
    metric: str = "accuracy"
    mode: Literal["max", "min"] = "max"
    log_every: int = 10
    progress: Literal["auto", "bar", "lines", "off"] = "auto"
    plots: bool = True
    input_check: float = 1e-6

    def __post_init__(self) -> None:
        if not (isinstance(self.input_check, (int, float)) and not isinstance(self.input_check, bool)
                and 0.0 <= self.input_check < 1.0):
            raise ValueError(f"train.input_check must be a number in [0, 1) (0 = never stop), "
                             f"got {self.input_check!r}")
        for name in ("steps", "batch_size", "grad_accum", "log_every", "keep_last"):
            v = getattr(self, name)
            if v < 1:
                raise ValueError(f"train.{name} must be >= 1, got {v}")
        for name in ("eval_batch_size", "eval_every", "eval_batches", "checkpoint_every", "patience"):
            v = getattr(self, name)
            if v < 0:
                raise ValueError(f"train.{name} must be >= 0 (0 = off/default), got {v}")
        if self.batch_size % self.grad_accum:
            raise ValueError(
                f"train.batch_size ({self.batch_size}) must be divisible by train.grad_accum "
                f"({self.grad_accum})"
            )
        if not (self.clip_norm >= 0 and math.isfinite(self.clip_norm)):
            raise ValueError(f"train.clip_norm must be a finite number >= 0, got {self.clip_norm}")
        if not self.eval_split:
            raise ValueError("train.eval_split must name a data split, got ''")
        if not self.metric:
            raise ValueError("train.metric must name a metric (e.g. 'accuracy' or 'loss'), got ''")
