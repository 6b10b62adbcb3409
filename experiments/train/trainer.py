"""The training loop: AdamW, schedules, clipping, accumulation, mixed precision, evaluation,
checkpoints, exact resume, early stopping, metrics, progress, data parallelism.

One optimizer step (``train.batch_size`` examples, the *global* batch)::

    batch  = next global batch from data.batches("train", B, seed, epoch, start_step)
    shard  = this process's contiguous 1/world_size of it           (distributed.shard)
    for each of the grad_accum micro-batches of the shard:
        loss, metrics = objective.loss_and_metrics(model, micro)        (under autocast if bf16/fp16)
        (loss / grad_accum).backward()                              (DDP averages over processes)
    clip the global gradient norm to clip_norm; AdamW step; scheduler step

so the update equals the one of a single process on the whole batch: the loss is the mean of the
micro-batch means, which is the batch mean when micro-batches have equal size (they do: the batch
size must be divisible by ``grad_accum * world_size``; for MLM, where the number of masked tokens
varies, it is the mean of per-micro-batch token means, as in most MLM trainers).

After a step: log every ``log_every`` steps; evaluate every ``eval_every`` steps; checkpoint every
``checkpoint_every`` steps, after every evaluation, and at the end. A checkpoint holds everything
the next step depends on — weights, optimizer and scheduler state, loss scaler, every generator's
state on every process, the data position (epoch, batches done in it), the best metric and the
early-stopping count, the metrics window — so ``fit(resume=True)`` after a kill continues exactly as
if never interrupted: same batches, same dropout masks, bit-identical weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TextIO

import torch
from torch import nn

from sparsegraph.experiments.infra import config as cfgmod
from sparsegraph.experiments.train.config import OptimConfig, RunConfig, TrainConfig
from sparsegraph.experiments.train import distributed as D
from sparsegraph.experiments.train.checkpoint import CheckpointManager, load_checkpoint
from sparsegraph.experiments.train.metrics import MetricsLog, WeightedMean
from sparsegraph.experiments.train.optim import build_optimizer, build_scheduler
from sparsegraph.experiments.train.progress import ProgressBar
from sparsegraph.experiments.train.result import Best, RunResult
from sparsegraph.experiments.train.rng import rng_state, seed_everything, set_rng_state
from sparsegraph.experiments.train.sensitivity import InputIgnoredError, InputSensitivity, measure_input_sensitivity
from sparsegraph.experiments.train.objective import DataSource, Objective, metrics_to_floats, to_device

__all__ = ["Trainer", "Callback", "autocast_context", "load_model_weights", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = 1


class Callback:
    """Hooks into :meth:`Trainer.fit`; override the ones you need (all are called on every rank)."""

    def on_before_optimizer_step(self, trainer: "Trainer", step: int) -> None:
        """Gradients of update ``step`` (1-based) are final (accumulated, all-reduced, unscaled, clipped)."""

    def on_step_end(self, trainer: "Trainer", step: int) -> None:
        """Update ``step`` is done (logging, evaluation and checkpointing included)."""

    def on_checkpoint(self, trainer: "Trainer", step: int, path: Path | None) -> None:
        """The checkpoint of ``step`` is on disk (``path`` on rank 0, ``None`` elsewhere)."""

    def on_evaluate(self, trainer: "Trainer", step: int, split: str, metrics: dict[str, float]) -> None:
        """An evaluation of ``split`` at ``step`` finished."""


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``bf16``/``fp16`` on ``device``; a no-op for ``fp32``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _check_precision(precision: str, device: torch.device) -> None:
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(
            "train.precision = 'fp16' needs a CUDA device (CPU autocast computes in bf16); "
            "use precision = 'bf16' or 'fp32' on CPU"
        )
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("train.precision = 'bf16' but this GPU does not support bf16; use 'fp16'")


def _peak_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    # ru_maxrss is in KiB on Linux (bytes on macOS): the process's peak resident set.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


class Trainer:
    """Trains ``model`` for ``objective`` with batches from ``data``; see the module docstring.

    Args:
        model: any ``nn.Module``; built by the caller (after :func:`seed_everything`, so every
            process builds the same one).
        objective: a :class:`~experiments.train.objective.Objective`.
        data: a :class:`~experiments.train.objective.DataSource` with splits ``"train"``,
            ``train.eval_split`` and (if set) ``train.test_split``.
        train, optim, run: the configuration sections.
        config: the whole configuration object, saved as ``config.toml`` and in each checkpoint.
        run_dir: defaults to ``<run.out_dir>/<run.name>``.
        dist: this process's place in a data-parallel job (default: from the ``torchrun``
            environment, see :func:`experiments.train.distributed.init`).
        callbacks: :class:`Callback` objects.
        stream: where the progress display goes (default stderr).
        phases: a :class:`~experiments.train.phases.PhaseSchedule` (staged training): the model's
            pattern parameters, the data's sequence length and a learning-rate multiplier, set
            for each update before its batch is drawn (``phases.apply(model, data, step)``).
        extra: facts about the run that the caller adds to its result (``RunResult.extra`` in
            ``results.json``, written in the same atomic write as the rest), e.g. how its
            weights were initialised.
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        data: DataSource,
        *,
        train: TrainConfig,
        optim: OptimConfig,
        run: RunConfig,
        config: Any = None,
        run_dir: str | os.PathLike[str] | None = None,
        dist: D.DistInfo | None = None,
        callbacks: Sequence[Callback] = (),
        stream: TextIO | None = None,
        phases: Any = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(getattr(objective, "loss_and_metrics", None)):
            raise TypeError(f"objective must have a loss_and_metrics(model, batch) method, got {type(objective).__name__}")
        if not callable(getattr(data, "batches", None)):
            raise TypeError(f"data must have a batches(split, batch_size, seed=, epoch=, start_step=) method, got {type(data).__name__}")
        self.train_cfg, self.optim_cfg, self.run_cfg = train, optim, run
        self.config = config
        self.dist = dist if dist is not None else D.init(run.device)
        self.device = self.dist.device
        _check_precision(train.precision, self.device)
        parts = train.grad_accum * self.dist.world_size
        if train.batch_size % parts:
            raise ValueError(
                f"train.batch_size ({train.batch_size}) must be divisible by train.grad_accum "
                f"({train.grad_accum}) x processes ({self.dist.world_size}) = {parts}"
            )
        self.run_dir = Path(run_dir) if run_dir is not None else Path(run.out_dir) / run.name
        self.model = model.to(self.device)
        self.objective = objective
        self.data = data
        self.callbacks = list(callbacks)
        self.stream = stream
        self.checkpoints = CheckpointManager(self.run_dir / "checkpoints", keep_last=train.keep_last)
        self.metrics = MetricsLog(self.run_dir, enabled=self.dist.is_main)
        self.optimizer = build_optimizer(self.model, optim)
        self.phases = phases
        self.extra = dict(extra) if extra is not None else {}
        self.scheduler = build_scheduler(self.optimizer, optim, train.steps,
                                         factor=phases.lr_scale if phases is not None else None)
        self.scaler = torch.amp.GradScaler("cuda") if train.precision == "fp16" else None
        self._ddp: nn.Module | None = None
        # Training state (everything a checkpoint restores).
        self.step = 0
        self.epoch = 0
        self.position = 0
        self.best: dict[str, Any] = {"metric": train.metric, "value": None, "step": None, "eval": None}
        self.bad_evals = 0
        self.last_eval_step: int | None = None
        self.stopped_early = False
        #: measured before the first update of a fresh run (None when resumed; see _check_input)
        self.input_sensitivity: InputSensitivity | None = None
        self._window = WeightedMean()
        self._window_tokens = 0.0
        self._tokens_total = 0.0
        self._train_seconds = 0.0

    # -- public -------------------------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def fit(self, resume: bool = False) -> RunResult:
        """Train for ``train.steps`` updates (or until early stopping); returns the
        :class:`~sparsegraph.experiments.train.result.RunResult` also written to ``results.json``. With ``resume``, continue from the newest checkpoint in
        the run directory (starting fresh, with a note, if there is none)."""
        tc = self.train_cfg
        self._start(resume)
        if self.step == 0:
            self._check_input()
        net = self._wrap()
        progress = ProgressBar(
            tc.steps, start=self.step, desc=self.run_cfg.name,
            mode=tc.progress if self.is_main else "off", stream=self.stream,
        )
        self._progress = progress
        if tc.eval_at_start and self.step == 0:
            start = self.evaluate(tc.eval_split, tc.eval_batches)
            self.metrics.write({"step": 0, "epoch": 0, "split": tc.eval_split, **start})
            shown = ", ".join(f"{k} {v:.4f}" for k, v in start.items() if k != "count")
            progress.message(f"step 0: {tc.eval_split} {shown} (untrained)")
        last_ckpt_step = self.step if self.step > 0 else None
        last_log_time = time.monotonic()
        layouts_checked = not self.dist.distributed
        try:
            while self.step < tc.steps and not self.stopped_early:
                got_full_batch = False
                epoch_start = self.position
                for batch in self.data.batches("train", tc.batch_size, seed=self.run_cfg.seed,
                                               epoch=self.epoch, start_step=self.position):
                    n = D.batch_size_of(batch)
                    if n != tc.batch_size:
                        if n > tc.batch_size:
                            raise ValueError(
                                f"data.batches('train', {tc.batch_size}) yielded a batch of {n} examples"
                            )
                        self.position += 1  # the short last batch of an epoch: not trained on
                        continue
                    got_full_batch = True
                    t0 = time.monotonic()
                    self._train_step(net, batch)
                    self._train_seconds += time.monotonic() - t0
                    self.step += 1
                    self.position += 1
                    if not layouts_checked:
                        # Models build their attention layouts at the first forward pass: check
                        # that every process built the same graphs (the tensors were checked at start).
                        D.check_same(D.model_fingerprint(self.model, tensors=False),
                                     "the attention layouts built at the first step")
                        layouts_checked = True
                    if self.step % tc.log_every == 0 or self.step == tc.steps:
                        now = time.monotonic()
                        self._log_train(now - last_log_time)
                        last_log_time = now
                    else:
                        progress.update(self.step, **self._window.means())
                    evaluated = False
                    if tc.eval_every and self.step % tc.eval_every == 0:
                        self._evaluate_and_track()
                        evaluated = True
                        last_log_time = time.monotonic()  # evaluation time is not training time
                    if evaluated or (tc.checkpoint_every and self.step % tc.checkpoint_every == 0):
                        self._save(is_best=evaluated and self.best["step"] == self.step)
                        last_ckpt_step = self.step
                    for cb in self.callbacks:
                        cb.on_step_end(self, self.step)
                    if self.step >= tc.steps or self.stopped_early:
                        break
                    self._apply_phase(self.step)  # before the next batch is drawn
                else:
                    if epoch_start == 0 and not got_full_batch:
                        raise ValueError(
                            f"the train split yields no full batch of {tc.batch_size} examples; "
                            "lower train.batch_size or add data"
                        )
                    self.epoch += 1
                    self.position = 0
            if self.last_eval_step != self.step:
                self._evaluate_and_track()
                self._save(is_best=self.best["step"] == self.step)
            elif last_ckpt_step != self.step:
                self._save(is_best=False)
            results = self._finish()
        finally:
            progress.close()
        return results

    def evaluate(self, split: str, max_batches: int = 0) -> dict[str, float]:
        """Mean loss and metrics over ``split`` (the first ``max_batches`` batches if > 0), weighted
        by each batch's ``count``, combined over all processes."""
        tc = self.train_cfg
        model = self.model
        was_training = model.training
        model.eval()
        acc = WeightedMean()
        bs = tc.eval_batch_size or tc.batch_size
        try:
            with torch.no_grad():
                for i, batch in enumerate(self.data.batches(split, bs, seed=self.run_cfg.seed, epoch=0, start_step=0)):
                    if max_batches and i >= max_batches:
                        break
                    local = D.shard(batch, self.dist.world_size, self.dist.rank)
                    n = D.batch_size_of(local)
                    if n == 0:
                        continue
                    with autocast_context(tc.precision, self.device):
                        loss, metrics = self.objective.loss_and_metrics(model, to_device(local, self.device))
                    values = metrics_to_floats(metrics)
                    count = values.pop("count", float(n))
                    values["loss"] = float(loss.detach().float().item())
                    if not math.isfinite(values["loss"]):
                        raise FloatingPointError(f"evaluation loss on {split!r} is {values['loss']} at step {self.step}")
                    acc.add(values, count)
        finally:
            model.train(was_training)
        total = self._combine([acc.state()])
        out = total.means()
        out["count"] = total.weight
        return out

    # -- internals ----------------------------------------------------------------------------

    def _start(self, resume: bool) -> None:
        """Prepare the run directory and state: fresh, or restored from the newest checkpoint."""
        if self.dist.distributed:
            D.check_same(D.model_fingerprint(self.model), "the initial model (parameters, buffers, attention layouts)")
        found = self.checkpoints.latest() if resume else None
        if not resume and self.checkpoints.steps():
            raise ValueError(
                f"run directory {str(self.run_dir)!r} already has checkpoints; pass --resume to continue "
                "it, or choose another run name"
            )
        if found is None:
            if resume:
                self._note(f"--resume: no checkpoint in {self.checkpoints.dir}, starting from step 0")
            # Dropout and any other draws from torch's generator: a stream per process, from the seed.
            seed_everything(self.run_cfg.seed, "train", self.dist.rank)
            self._apply_phase(0)
            if self.is_main:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                for stale in ("metrics.jsonl", "results.json"):
                    (self.run_dir / stale).unlink(missing_ok=True)
        else:
            path, state = found
            self._restore(state, path)
            self.metrics.truncate_after(self.step)
            self._note(f"resumed from {path} (step {self.step}, epoch {self.epoch}, batch {self.position})")
        if self.is_main and self.config is not None:
            cfgmod.save(self.config, self.run_dir / "config.toml")
        D.barrier()

    def _check_input(self) -> None:
        """Before the first update: does the model's output depend on its input? Prints the two
        numbers of :mod:`~sparsegraph.experiments.train.sensitivity` and stops the run with one
        line when one is below ``train.input_check``. Runs on the first training batch in eval
        mode, so the run that follows draws the same random numbers as without it."""
        tc = self.train_cfg
        batch = next(iter(self.data.batches("train", tc.batch_size, seed=self.run_cfg.seed,
                                            epoch=0, start_step=0)), None)
        if batch is None:
            return
        local = to_device(D.shard(batch, self.dist.world_size, self.dist.rank), self.device)
        with autocast_context(tc.precision, self.device):
            found = measure_input_sensitivity(self.model, self.objective, local)
        self.input_sensitivity = found
        self._note(found.describe())
        if found.ignores_input(tc.input_check):
            raise InputIgnoredError(
                f"{found.describe()}: below train.input_check={tc.input_check:g}, so the model "
                "ignores its input and training cannot help; check the pooling, the padding mask "
                "and the embeddings (or set train.input_check=0 to train anyway)")

    def _restore(self, state: dict[str, Any], path: Path) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"checkpoint {str(path)!r} has format {state.get('format')!r}, expected {CHECKPOINT_FORMAT}")
        self._apply_phase(max(state["step"] - 1, 0))  # the phase the checkpoint was written in
        self.model.load_state_dict(state["model"])
        self._apply_phase(state["step"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        self.best = dict(state["best"])
        self.bad_evals = state["bad_evals"]
        self.last_eval_step = state["last_eval_step"]
        self.stopped_early = bool(state.get("stopped_early", False))
        self._window = WeightedMean.from_state(state["window"])
        self._window_tokens = state["window_tokens"]
        self._tokens_total = state["tokens_total"]
        self._train_seconds = state["train_seconds"]
        rngs = state["rng"]
        if len(rngs) == self.dist.world_size:
            set_rng_state(rngs[self.dist.rank])
        else:
            # Data order is by global batch, so it is unchanged; only the per-process dropout
            # streams cannot be carried over to a different number of processes.
            self._note(
                f"checkpoint was written by {len(rngs)} process(es), resuming with {self.dist.world_size}: "
                "same data order, new dropout random streams"
            )
            seed_everything(self.run_cfg.seed, "resume", self.step, self.dist.rank)
        if self.config is not None and state.get("config") is not None:
            now = cfgmod.to_dict(self.config)
            diff = _dict_diff(state["config"], now)
            if diff:
                self._note("config differs from the checkpoint's: " + "; ".join(diff[:6]))

    def _wrap(self) -> nn.Module:
        if not self.dist.distributed:
            return self.model
        if self._ddp is None:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self._ddp = DistributedDataParallel(self.model, device_ids=ids)
        return self._ddp

    def _train_step(self, net: nn.Module, batch: Any) -> None:
        tc = self.train_cfg
        self.model.train()
        local = D.shard(batch, self.dist.world_size, self.dist.rank)
        tokens = 0.0
        num_tokens = getattr(self.objective, "num_tokens", None)
        for i in range(tc.grad_accum):
            micro = to_device(D.shard(local, tc.grad_accum, i), self.device)
            last = i == tc.grad_accum - 1
            sync = contextlib.nullcontext() if (last or self._ddp is None) else self._ddp.no_sync()
            with sync:
                with autocast_context(tc.precision, self.device):
                    loss, metrics = self.objective.loss_and_metrics(net, micro)
                if loss.dim() != 0:
                    raise ValueError(f"the objective's loss must be a scalar, got shape {tuple(loss.shape)}")
                value = float(loss.detach().float().item())
                if not math.isfinite(value) and self.scaler is None:
                    raise FloatingPointError(
                        f"training loss is {value} at step {self.step + 1} (micro-batch {i}); "
                        "lower optim.lr, enable train.clip_norm, or use fp32"
                    )
                scaled = loss / tc.grad_accum
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            values = metrics_to_floats(metrics)
            count = values.pop("count", float(D.batch_size_of(micro)))
            values["loss"] = value
            self._window.add(values, count)
            if callable(num_tokens):
                tokens += float(num_tokens(micro))
        self._window_tokens += tokens
        self._tokens_total += tokens
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        max_norm = tc.clip_norm if tc.clip_norm > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        self._last_grad_norm = float(norm)
        if not math.isfinite(self._last_grad_norm) and self.scaler is None:
            raise FloatingPointError(f"gradient norm is {self._last_grad_norm} at step {self.step + 1}")
        self._last_lr = self.scheduler.get_last_lr()[0]
        for cb in self.callbacks:
            cb.on_before_optimizer_step(self, self.step + 1)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _apply_phase(self, step: int) -> None:
        """Staged training: set the model and data for update ``step + 1`` (no-op without phases)."""
        if self.phases is not None:
            self.phases.apply(self.model, self.data, step)

    def _combine(self, states: Iterable[dict[str, float]]) -> WeightedMean:
        """Sum WeightedMean states over processes (keys may differ: a rank may have seen no batch)."""
        total: dict[str, float] = {}
        for per_rank in D.all_gather_objects(list(states)):
            for st in per_rank:
                for k, v in st.items():
                    total[k] = total.get(k, 0.0) + v
        total.setdefault("weight", 0.0)
        return WeightedMean.from_state(total)

    def _log_train(self, seconds: float) -> None:
        state = dict(self._window.state())
        state["tokens"] = self._window_tokens
        combined: dict[str, float] = {}
        for st in D.all_gather_objects(state):
            for k, v in st.items():
                combined[k] = combined.get(k, 0.0) + v
        tokens = combined.pop("tokens", 0.0)
        means = WeightedMean.from_state(combined).means()
        record: dict[str, Any] = {"step": self.step, "epoch": self.epoch, "split": "train", **means}
        record["lr"] = self._last_lr
        record["grad_norm"] = self._last_grad_norm
        if tokens > 0 and seconds > 0:
            record["tokens_per_s"] = tokens / seconds
        if self.scaler is not None:
            record["loss_scale"] = float(self.scaler.get_scale())
        self.metrics.write(record)
        self._progress.update(self.step, **{k: v for k, v in record.items() if isinstance(v, float)})
        self._window.reset()
        self._window_tokens = 0.0

    def _evaluate_and_track(self) -> dict[str, float]:
        tc = self.train_cfg
        result = self.evaluate(tc.eval_split, tc.eval_batches)
        if tc.metric not in result:
            raise ValueError(
                f"train.metric = {tc.metric!r} is not among the evaluation metrics {sorted(result)}"
            )
        value = result[tc.metric]
        self.last_eval_step = self.step
        best = self.best["value"]
        improved = best is None or (value > best if tc.mode == "max" else value < best)
        if improved:
            self.best = {"metric": tc.metric, "value": value, "step": self.step, "eval": result}
            self.bad_evals = 0
        else:
            self.bad_evals += 1
            if tc.patience and self.bad_evals >= tc.patience:
                self.stopped_early = True
        record = {"step": self.step, "epoch": self.epoch, "split": tc.eval_split, **result}
        self.metrics.write(record)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in result.items() if k != "count")
        flag = " (best)" if improved else ""
        stop = f" - no improvement in {self.bad_evals} evaluations, stopping early" if self.stopped_early else ""
        self._progress.message(f"step {self.step}: {tc.eval_split} {shown}{flag}{stop}")
        for cb in self.callbacks:
            cb.on_evaluate(self, self.step, tc.eval_split, result)
        return result

    def _state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "epoch": self.epoch,
            "position": self.position,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": D.all_gather_objects(rng_state()),
            "best": self.best,
            "bad_evals": self.bad_evals,
            "last_eval_step": self.last_eval_step,
            "stopped_early": self.stopped_early,
            "window": self._window.state(),
            "window_tokens": self._window_tokens,
            "tokens_total": self._tokens_total,
            "train_seconds": self._train_seconds,
            "world_size": self.dist.world_size,
            "config": cfgmod.to_dict(self.config) if self.config is not None else None,
        }

    def _save(self, is_best: bool) -> None:
        state = self._state()  # every rank takes part (the RNG states are gathered)
        path = self.checkpoints.save(self.step, state, is_best=is_best) if self.is_main else None
        D.barrier()
        for cb in self.callbacks:
            cb.on_checkpoint(self, self.step, path)

    def _finish(self) -> RunResult:
        tc = self.train_cfg
        test_final = test_at_best = None
        if tc.test_split:
            test_final = self.evaluate(tc.test_split)
            if self.best["step"] is not None and self.best["step"] != self.step and self.checkpoints.best_path.exists():
                final_weights = {k: v.clone() if isinstance(v, torch.Tensor) else v
                                 for k, v in self.model.state_dict().items()}
                self._apply_phase(max(self.best["step"] - 1, 0))
                self.model.load_state_dict(load_checkpoint(self.checkpoints.best_path)["model"])
                test_at_best = self.evaluate(tc.test_split)
                self._apply_phase(max(self.step - 1, 0))
                self.model.load_state_dict(final_weights)
            else:
                test_at_best = test_final
            self.metrics.write({"step": self.step, "split": tc.test_split, **test_at_best})
        results = RunResult(
            name=self.run_cfg.name,
            steps=self.step,
            epochs_started=self.epoch + (1 if self.position else 0),
            stopped_early=self.stopped_early,
            best=Best(**{k: self.best[k] for k in ("metric", "value", "step")}),
            best_eval=self.best["eval"],
            parameters=sum(p.numel() for p in self.model.parameters()),
            world_size=self.dist.world_size,
            precision=tc.precision,
            train_seconds=self._train_seconds,
            tokens_per_s=self._tokens_total / self._train_seconds if self._train_seconds > 0 else None,
            peak_memory_bytes=_peak_memory_bytes(self.device),
            test_final=test_final,
            test_at_best=test_at_best,
            extra=dict(self.extra),
        )
        if self.is_main:
            results.write(self.run_dir)
        self.metrics.close()
        if self.is_main and tc.plots:
            from sparsegraph.experiments.train.plots import plot_run

            try:
                plot_run(self.run_dir, title=self.run_cfg.name, metric=tc.metric)
            except Exception as e:  # a figure must not fail a finished run; say why it is missing
                self._note(f"curves.png not drawn: {type(e).__name__}: {e}")
        D.barrier()
        return results

    def _note(self, text: str) -> None:
        if self.is_main:
            print(f"[{self.run_cfg.name}] {text}", file=self.stream if self.stream is not None else sys.stderr)


def _dict_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        out = []
        for k in sorted(set(old) | set(new)):
            out += _dict_diff(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [f"{prefix[:-1]}: {old!r} -> {new!r}"]
