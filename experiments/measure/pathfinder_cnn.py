"""A convolutional baseline on generated Pathfinder: how hard the task is for the architecture
with the right bias (local, translation-invariant), as a calibration for the transformer runs.

    python -m sparsegraph.experiments.measure.pathfinder_cnn --distractors 0 --steps 2000 [--seed 0]
    python -m sparsegraph.experiments.measure.pathfinder_cnn --fresh [--curriculum-steps 2000]

Defaults: 4,000 training and 500 validation images of the easy difficulty, LRA's number of
distractor snakes (10 for easy; ``--distractors`` sets it), 16 channels, batch 32, Adam 1e-3,
2,000 steps, one thread.

The network (:func:`cnn`) is six conv-BN-ReLU blocks in three stages at 32, 16 and 8 pixels,
with a 2x2 max-pool between stages, then a global average pool and a linear layer to the two
classes. Its input is standardised with the training set's pixel mean and standard deviation
(:class:`Standardise`, carried in the model as buffers).

Receptive field: a unit's receptive field ``r`` (in input pixels) and the distance ``j`` between
neighbouring units of its layer (the *jump*, in input pixels) start at ``r = 1, j = 1``; a layer
with kernel ``k``, dilation ``d`` and stride ``s`` gives ``r += d * (k - 1) * j`` and
``j *= s`` (:func:`receptive_field`). For :func:`cnn`: two 3x3 convs (r = 3, 5), pool (6, j = 2),
two convs (10, 14), pool (16, j = 4), two convs (24, 32). So each unit of the last 8x8 map sees
32 input pixels, the whole 32x32 image, and more than a target path of the easy difficulty
(contour length 6, about 24 pixels end to end) - the old network's seven stride-1 convs saw 15.

Training: Adam on random batches (a new permutation of the training set every epoch,
:func:`epoch_batches`), the same generated images as ``sparsegraph compare --task pathfinder``
(the cache is shared for equal parameters). ``--fresh`` trains on images generated fresh every
step instead (:func:`fresh_batches`, ``load_task(..., fresh=True)``: a pure function of the data
seed, ``--seed`` and the step), and ``--curriculum-steps N --start-distractors K`` ramps the
distractor count from ``K`` at step 0 to the task's at step ``N`` (and
``--start-contour-length`` the contour length, through 6, 9 and 14), linearly or in
``--curriculum-stages`` equal stages; validation and test images
stay fixed, and the input is then standardised with the validation images' statistics.

Prints the mean training loss and the validation accuracy every ``--eval-every`` steps; stops
after ``--steps`` or ``--minutes``, then prints the test accuracy on the 1,000 fixed test images.
Its measurements are in docs/results.md ("Longer runs, and a CNN for calibration", and
"Pathfinder at LRA's distractor density: what each remedy does").
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import shlex
import sys
import time
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from sparsegraph.experiments.lra import load_task
from sparsegraph.experiments.lra.datasets import Split
from sparsegraph.experiments.infra.source import source_state
from sparsegraph.experiments.lra.fresh import FreshTrain
from sparsegraph.experiments.measure.cnn_record import RUN_FILE, CnnRun

__all__ = ["Standardise", "cnn", "receptive_field", "images", "History", "epoch_batches",
           "fresh_batches", "train", "CnnRun", "RUN_FILE", "main"]


class Standardise(nn.Module):
    """``x -> (x - mean) / std`` with scalar ``mean`` and ``std`` kept as buffers, so that a saved
    model carries the statistics of the data it was trained on.

    ``std`` is clamped below at ``1e-6`` so that a constant input (an all-black data set) gives
    zeros rather than NaNs.
    """

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        if not math.isfinite(mean):
            raise ValueError(f"mean={mean!r}: expected a finite number")
        if not (math.isfinite(std) and std >= 0):
            raise ValueError(f"std={std!r}: expected a finite number >= 0")
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(max(float(std), 1e-6)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.item():.4g}, std={self.std.item():.4g}"


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    # no conv bias: the BatchNorm right after it has its own shift
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


def cnn(channels: int = 16, *, mean: float = 0.0, std: float = 1.0) -> nn.Sequential:
    """The calibration CNN for 1-channel images (the layers and receptive field are in the
    module docstring).

    Args:
        channels: width of the first stage; the second and third stages have ``2 * channels``
            (the feature maps shrink 4x per pool, so the wider later stages cost about as much
            as the first one).
        mean, std: the input statistics for :class:`Standardise` (pixel values as given to the
            model, e.g. 0..255).

    Returns:
        An ``nn.Sequential`` mapping ``[N, 1, H, W]`` floats to ``[N, 2]`` logits.
    """
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels={channels!r}: expected an int >= 1")
    c1, c2 = channels, 2 * channels
    return nn.Sequential(
        Standardise(mean, std),
        *_block(1, c1), *_block(c1, c1), nn.MaxPool2d(2),
        *_block(c1, c2), *_block(c2, c2), nn.MaxPool2d(2),
        *_block(c2, c2), *_block(c2, c2),
        # average, not max: every position of the last map sees the whole image, and the mean
        # gives every position a gradient
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c2, 2),
    )


def _pair(v: int | tuple[int, ...], name: str) -> tuple[int, int]:
    if isinstance(v, int):
        return v, v
    if len(v) != 2:
        raise ValueError(f"{name}={v!r}: expected an int or a pair of ints (2-D layers)")
    return int(v[0]), int(v[1])


def receptive_field(net: nn.Module) -> int:
    """The receptive field, in input pixels, of one unit of the last spatial feature map of
    ``net``: the side of the input square that can influence it.

    Walks ``net.modules()`` in registration order, which is the order of application for
    (nested) ``nn.Sequential`` models like :func:`cnn`, and stops at the first adaptive
    (global) pooling layer. ``nn.Conv2d``, ``nn.MaxPool2d`` and ``nn.AvgPool2d`` change the
    receptive field (see the module docstring for the recurrence); other layers (normalisation,
    activations) are pointwise and leave it alone. With non-square kernels the smaller of the
    two axes is returned.

    Raises:
        ValueError: if ``net`` contains a layer whose effect on the receptive field is not
            known here (1-D or 3-D convolutions or pools, transposed convolutions).
    """
    unknown = (nn.Conv1d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
               nn.MaxPool1d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool3d)
    r, j = [1, 1], [1, 1]
    for m in net.modules():
        if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            break
        if isinstance(m, unknown):
            raise ValueError(f"net contains {type(m).__name__}: expected only 2-D convolutions "
                             f"and pools (and pointwise layers)")
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k = _pair(m.kernel_size, "kernel_size")
            s = _pair(m.stride, "stride")
            d = _pair(getattr(m, "dilation", 1), "dilation")  # AvgPool2d has none
            for a in range(2):
                r[a] += d[a] * (k[a] - 1) * j[a]
                j[a] *= s[a]
    return min(r)


def images(split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """A Pathfinder split as ``[N, 1, side, side]`` float32 pixel values 0..255 and ``[N]``
    int64 labels (the tokens are the row-major pixels of square images)."""
    n, length = split.tokens.shape
    side = math.isqrt(length)
    if side * side != length:
        raise ValueError(f"split.tokens.shape={split.tokens.shape}: expected square images "
                         f"(a sequence length that is a square)")
    x = torch.from_numpy(np.asarray(split.tokens, np.float32)).view(n, 1, side, side)
    return x, torch.from_numpy(np.asarray(split.labels, np.int64))


@dataclasses.dataclass
class History:
    """What :func:`train` measured: ``losses[i]`` is the training loss of step ``i + 1``;
    ``evals`` holds ``(step, validation accuracy)`` pairs."""

    losses: list[float] = dataclasses.field(default_factory=list)
    evals: list[tuple[int, float]] = dataclasses.field(default_factory=list)


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    """The fraction of ``x`` that ``net`` classifies as ``y``, in eval mode (BatchNorm with its
    running statistics); restores the previous mode."""
    was_training = net.training
    net.eval()
    correct = sum(int((net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
                  for i in range(0, len(y), batch))
    net.train(was_training)
    return correct / max(len(y), 1)


Batches = Iterator[tuple[torch.Tensor, torch.Tensor]]


def epoch_batches(x: torch.Tensor, y: torch.Tensor, batch: int, *, seed: int = 0) -> Batches:
    """Endless batches ``(images, labels)`` of a fixed training set: a new permutation of
    ``(x, y)`` every epoch, drawn from ``seed``; the remainder of an epoch is dropped, so every
    batch has ``batch`` images."""
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= len(y):
        raise ValueError(f"batch={batch!r}: expected an int in [1, {len(y)}] (the training set)")
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"len(x)={len(x)}, len(y)={len(y)}: expected equal and > 0")
    gen = torch.Generator().manual_seed(seed)

    def endless() -> Batches:
        while True:
            order = torch.randperm(len(y), generator=gen)
            for pos in range(0, len(y) - batch + 1, batch):
                idx = order[pos:pos + batch]
                yield x[idx], y[idx]

    return endless()


def fresh_batches(stream: FreshTrain, batch: int, *, seed: int = 0) -> Batches:
    """Endless batches ``(images, labels)`` of newly generated images (``load_task(...,
    fresh=True)``): the images of step ``s`` are a pure function of (data seed, ``seed``, ``s``),
    at the curriculum's difficulty of step ``s`` (:mod:`sparsegraph.experiments.lra.fresh`)."""
    side = math.isqrt(stream.width)
    if side * side != stream.width:
        raise ValueError(f"stream.width={stream.width}: expected square images")
    source = stream.batches(batch, seed=seed, as_torch=True)  # checks batch and seed now
    return ((b["tokens"].to(torch.float32).view(-1, 1, side, side), b["labels"]) for b in source)


def train(net: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *, steps: int,
          lr: float = 1e-3, xv: torch.Tensor | None = None, yv: torch.Tensor | None = None,
          eval_every: int = 100, minutes: float = math.inf,
          log: Callable[[int, str], None] | None = None) -> History:
    """Train ``net`` with Adam and cross-entropy on the first ``steps`` of ``batches``
    (:func:`epoch_batches` or :func:`fresh_batches`), or until ``minutes`` have passed.

    Every ``eval_every`` steps (and after the last one) the validation accuracy on ``(xv, yv)``
    is measured, if given, and ``log(step, line)`` receives a progress line with the mean
    training loss since the previous line.
    """
    for name, v in (("steps", steps), ("eval_every", eval_every)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r}: expected an int >= 1")
    if not lr > 0:
        raise ValueError(f"lr={lr!r}: expected a number > 0")
    if not minutes > 0:
        raise ValueError(f"minutes={minutes!r}: expected a number > 0")
    if (xv is None) != (yv is None):
        raise ValueError("xv and yv: expected both or neither")
    opt = torch.optim.Adam(net.parameters(), lr)
    net.train()
    hist = History()
    t0, last_log = time.perf_counter(), 0
    for step, (xb, yb) in enumerate(itertools.islice(batches, steps), start=1):
        loss = nn.functional.cross_entropy(net(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hist.losses.append(loss.item())
        out_of_time = time.perf_counter() - t0 > 60 * minutes
        if step % eval_every == 0 or step == steps or out_of_time:
            line = (f"step {step:5d}  {time.perf_counter() - t0:6.0f} s  "
                    f"loss {float(np.mean(hist.losses[last_log:])):.4f}")
            if xv is not None and yv is not None:
                acc = accuracy(net, xv, yv)
                hist.evals.append((step, acc))
                line += f"  val {100 * acc:.1f}%"
            last_log = step
            if log is not None:
                log(step, line)
        if out_of_time:
            break
    return hist


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sparsegraph.experiments.measure.pathfinder_cnn",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-val", type=int, default=500)
    ap.add_argument("--cache-dir", default=None, help="generated-data cache (default: the project's)")
    ap.add_argument("--difficulty", default="easy", choices=("easy", "intermediate", "hard"))
    ap.add_argument("--distractors", type=int, default=None,
                    help="number of distractor snakes (default: LRA's for the difficulty, "
                         "10 for easy)")
    ap.add_argument("--data-seed", type=int, default=0, help="seed of the generated images")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--channels", type=int, default=16, help="width of the first stage")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="seed of the initialisation and batches")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads, and processes generating the images")
    ap.add_argument("--fresh", action="store_true",
                    help="train on images generated fresh every step instead of the fixed "
                         "--n-train images (val and test stay fixed)")
    ap.add_argument("--curriculum-steps", type=int, default=0,
                    help="with --fresh: ramp the distractor count linearly from "
                         "--start-distractors at step 0 to the task's at this step")
    ap.add_argument("--start-distractors", type=int, default=0,
                    help="the curriculum's distractor count at step 0 (default 0)")
    ap.add_argument("--curriculum-stages", type=int, default=0,
                    help="with --curriculum-steps: move in this many equal stages (start and "
                         "final included, >= 2) instead of a linear ramp")
    ap.add_argument("--start-contour-length", type=int, default=None, choices=(6, 9, 14),
                    help="the curriculum's contour length at step 0 (default: the "
                         "difficulty's throughout); it moves through 6, 9, 14")
    ap.add_argument("--out", default=None,
                    help="directory to write the run's record to (cnn_run.json, read by "
                         "docs/make_results.py)")
    args = ap.parse_args(argv)
    command = "python -m sparsegraph.experiments.measure.pathfinder_cnn " + shlex.join(
        sys.argv[1:] if argv is None else list(argv))
    # the code that runs is the code at the start: files edited during a long run do not change it
    src = source_state() if args.out is not None else None
    for name in ("n_train", "n_val", "batch", "channels", "steps", "eval_every", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    for name in ("distractors", "curriculum_steps", "start_distractors", "curriculum_stages"):
        v = getattr(args, name)
        if v is not None and v < 0:
            ap.error(f"--{name.replace('_', '-')} must be >= 0, got {v}")
    if args.curriculum_stages and not args.curriculum_steps:
        ap.error(f"--curriculum-stages {args.curriculum_stages} needs --curriculum-steps")
    if args.curriculum_stages == 1:
        ap.error("--curriculum-stages must be >= 2 (the start and the final difficulty), got 1")
    if args.start_contour_length is not None and not args.curriculum_steps:
        ap.error(f"--start-contour-length {args.start_contour_length} needs --curriculum-steps")
    if args.curriculum_steps and not args.fresh:
        ap.error(f"--curriculum-steps {args.curriculum_steps} needs --fresh (the curriculum "
                 f"ramps the difficulty of the images generated each step)")
    if not args.minutes > 0:
        ap.error(f"--minutes must be > 0, got {args.minutes}")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    extra: dict[str, object] = ({} if args.distractors is None
                                else {"num_distractor_snakes": args.distractors})
    if args.fresh:
        # one background generator: the images of a step are the same for any number of them
        extra.update(fresh=True, fresh_workers=1)
        if args.curriculum_steps:
            start = {"num_distractor_snakes": args.start_distractors}
            if args.start_contour_length is not None:
                start["contour_length"] = args.start_contour_length
            extra["curriculum"] = {"steps": args.curriculum_steps, "start": start}
            if args.curriculum_stages:
                extra["curriculum"].update(ramp="staged", stages=args.curriculum_stages)
    try:
        # n_test=1000 as in the cpu preset, so that the cache is shared with its runs
        task = load_task("pathfinder", difficulty=args.difficulty, n_train=args.n_train,
                         n_val=args.n_val, n_test=1000, seed=args.data_seed,
                         cache_dir=args.cache_dir, workers=args.threads, **extra)
    except ValueError as e:
        ap.error(str(e))
    xv, yv = images(task["val"])
    xt, yt = images(task["test"])
    distractors = task.info["config"]["num_distractor_snakes"]
    ramp = None if task.fresh is None else task.fresh.curriculum
    if ramp is None:
        ramp_log = ramp_note = ""
    else:
        # the curriculum's own start values and the task's final ones, described once for the
        # log line and once for the record
        final = task.info["config"]
        stages = f" in {ramp.stages} stages" if ramp.ramp == "staged" else ""
        d0, c0 = ramp.start["num_distractor_snakes"], ramp.start.get("contour_length")
        contour_log = "" if c0 is None else f", contour length {c0} to {final['contour_length']}"
        ramp_log = (f", distractor snakes {d0} at step 0 rising to {distractors} at step "
                    f"{ramp.steps}{stages}{contour_log}")
        ramp_note = (f", {d0} to {distractors} distractors"
                     + ("" if c0 is None else f" and contour length {c0} to "
                                              f"{final['contour_length']}")
                     + f" over {ramp.steps} steps{stages}")
    if task.fresh is None:
        x, y = images(task["train"])
        batches: Batches = epoch_batches(x, y, args.batch, seed=args.seed)
        source = f"train {len(y)} fixed images ({100 * y.float().mean():.1f}% label 1)"
        data_note = f"{len(y)} fixed images"
    else:
        # the standardisation comes from the validation images: there is no fixed train set
        x = xv
        batches = fresh_batches(task.fresh, args.batch, seed=args.seed)
        source = f"train on fresh images every step{ramp_log}"
        data_note = f"fresh images every step{ramp_note}"
    mean, std = x.mean().item(), x.std().item()
    net = cnn(args.channels, mean=mean, std=std)
    print(f"{source}; val {len(yv)} (majority {100 * task.majority_baseline('val'):.1f}%); "
          f"{distractors} distractor snakes; "
          f"pixel mean {mean:.2f} std {std:.2f}; receptive field {receptive_field(net)} px; "
          f"{sum(p.numel() for p in net.parameters())} parameters", flush=True)

    def log(step: int, line: str) -> None:
        if ramp is not None:
            now = task.fresh.difficulty(step)
            line += f"  (distractors {now['num_distractor_snakes']}" + (
                f", contour length {now['contour_length']})" if "contour_length" in now else ")")
        print(line, flush=True)

    t0 = time.perf_counter()
    hist = train(net, batches, steps=args.steps, lr=args.lr, xv=xv, yv=yv,
                 eval_every=args.eval_every, minutes=args.minutes, log=log)
    seconds = time.perf_counter() - t0
    best_step, best = max(hist.evals, key=lambda e: (e[1], -e[0]))
    test = accuracy(net, xt, yt)
    print(f"done: {len(hist.losses)} steps, final val {100 * hist.evals[-1][1]:.1f}%, "
          f"best val {100 * best:.1f}% at step {best_step}; final test "
          f"{100 * test:.1f}% of {len(yt)} (majority "
          f"{100 * task.majority_baseline('test'):.1f}%)", flush=True)
    if src is not None:
        record = CnnRun(
            command=command, commit=src.commit, dirty=src.dirty, commit_note=src.reason,
            written=time.strftime("%Y-%m-%d %H:%M:%S"), data=data_note,
            difficulty=args.difficulty, distractors=int(distractors), steps=len(hist.losses),
            batch=args.batch, lr=args.lr, channels=args.channels, seed=args.seed,
            data_seed=args.data_seed, evals=tuple(hist.evals), final_val=hist.evals[-1][1],
            best_val=best, best_step=best_step, test=test, test_count=len(yt),
            majority_val=task.majority_baseline("val"),
            majority_test=task.majority_baseline("test"),
            late_loss=float(np.mean(hist.losses[-100:])), seconds=seconds)
        print(f"wrote {record.write(args.out)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
