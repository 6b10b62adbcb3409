"""A convolutional baseline on generated Pathfinder: how hard the task is for the architecture
with the right bias (local, translation-invariant), as a calibration for the transformer runs.

    python -m sparsegraph.experiments.measure.pathfinder_cnn --distractors 0 --steps 2000 [--seed 0]

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

Training: Adam on random batches (a new permutation of the training set every epoch), the same
generated images as ``sparsegraph compare --task pathfinder`` (the cache is shared for equal
parameters). Prints the mean training loss and the validation accuracy every ``--eval-every``
steps; stops after ``--steps`` or ``--minutes``. Its measurements are in docs/results.md
("Longer runs, and a CNN for calibration").
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from sparsegraph.experiments.lra import load_task
from sparsegraph.experiments.lra.datasets import Split

__all__ = ["Standardise", "cnn", "receptive_field", "images", "History", "train", "main"]


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


def train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, *, steps: int, batch: int = 32,
          lr: float = 1e-3, seed: int = 0, xv: torch.Tensor | None = None,
          yv: torch.Tensor | None = None, eval_every: int = 100, minutes: float = math.inf,
          log: Callable[[str], None] | None = None) -> History:
    """Train ``net`` with Adam and cross-entropy on ``(x, y)`` for ``steps`` batches of
    ``batch`` (a fresh permutation of the data every epoch, drawn from ``seed``), or until
    ``minutes`` have passed.

    Every ``eval_every`` steps (and after the last one) the validation accuracy on ``(xv, yv)``
    is measured, if given, and ``log`` receives a progress line with the mean training loss
    since the previous line.
    """
    for name, v in (("steps", steps), ("batch", batch), ("eval_every", eval_every)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r}: expected an int >= 1")
    if not lr > 0:
        raise ValueError(f"lr={lr!r}: expected a number > 0")
    if not minutes > 0:
        raise ValueError(f"minutes={minutes!r}: expected a number > 0")
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"len(x)={len(x)}, len(y)={len(y)}: expected equal and > 0")
    if (xv is None) != (yv is None):
        raise ValueError("xv and yv: expected both or neither")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr)
    net.train()
    hist = History()
    order = torch.empty(0, dtype=torch.long)
    pos, t0, last_log = 0, time.perf_counter(), 0
    for step in range(1, steps + 1):
        if pos + batch > len(order):  # the remainder of an epoch is dropped: equal batch sizes
            order, pos = torch.randperm(len(y), generator=gen), 0
        idx = order[pos:pos + batch]
        pos += batch
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
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
                log(line)
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
    args = ap.parse_args(argv)
    for name in ("n_train", "n_val", "batch", "channels", "steps", "eval_every", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.distractors is not None and args.distractors < 0:
        ap.error(f"--distractors must be >= 0, got {args.distractors}")
    if not args.minutes > 0:
        ap.error(f"--minutes must be > 0, got {args.minutes}")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    extra = {} if args.distractors is None else {"num_distractor_snakes": args.distractors}
    # n_test=1000 as in the cpu preset, so that the cache is shared with its runs
    task = load_task("pathfinder", difficulty=args.difficulty, n_train=args.n_train,
                     n_val=args.n_val, n_test=1000, seed=args.data_seed, cache_dir=args.cache_dir,
                     workers=args.threads, **extra)
    x, y = images(task["train"])
    xv, yv = images(task["val"])
    mean, std = x.mean().item(), x.std().item()
    net = cnn(args.channels, mean=mean, std=std)
    print(f"train {len(y)} images ({100 * y.float().mean():.1f}% label 1), val {len(yv)} "
          f"(majority {100 * task.majority_baseline('val'):.1f}%); "
          f"{task.info['config']['num_distractor_snakes']} distractor snakes; "
          f"pixel mean {mean:.2f} std {std:.2f}; receptive field {receptive_field(net)} px; "
          f"{sum(p.numel() for p in net.parameters())} parameters", flush=True)
    hist = train(net, x, y, steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                 xv=xv, yv=yv, eval_every=args.eval_every, minutes=args.minutes,
                 log=lambda line: print(line, flush=True))
    best_step, best = max(hist.evals, key=lambda e: (e[1], -e[0]))
    print(f"done: {len(hist.losses)} steps, final val {100 * hist.evals[-1][1]:.1f}%, "
          f"best val {100 * best:.1f}% at step {best_step}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
