"""A convolutional baseline on generated Pathfinder: how hard the task is for the architecture
with the right bias (local, translation-invariant), as a calibration for the transformer runs.

    python -m sparsegraph.experiments.measure.pathfinder_cnn --n-train 20000 --batch 64 --minutes 30 [--seed 0]

Seven 3x3 convolutions (``--channels`` wide, ReLU), a global max-pool and a linear layer, trained
with Adam on the same generated images as ``sparsegraph compare --task pathfinder`` (the cache is
shared). Prints the validation accuracy every ``--eval-every`` steps; stops after ``--steps`` or
``--minutes``. Its measurements are in docs/results.md ("Longer runs, and a CNN").
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

import numpy as np
import torch
from torch import nn

from sparsegraph.experiments.lra import load_task


def cnn(channels: int, layers: int = 7) -> nn.Module:
    """``layers`` 3x3 convolutions with ReLU (receptive field ``2 * layers + 1`` pixels), global
    max-pool, linear to 2 classes."""
    mods: list[nn.Module] = [nn.Conv2d(1, channels, 3, padding=1), nn.ReLU()]
    for _ in range(layers - 1):
        mods += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU()]
    mods += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(channels, 2)]
    return nn.Sequential(*mods)


def _images(split) -> tuple[torch.Tensor, torch.Tensor]:
    side = int(round(split.tokens.shape[1] ** 0.5))
    x = torch.from_numpy(np.asarray(split.tokens, np.float32) / 255.0).view(-1, 1, side, side)
    return x, torch.from_numpy(split.labels)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sparsegraph.experiments.measure.pathfinder_cnn",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=20_000)
    ap.add_argument("--n-val", type=int, default=500)
    ap.add_argument("--cache-dir", default=None, help="generated-data cache (default: the project's)")
    ap.add_argument("--difficulty", default="easy", choices=("easy", "intermediate", "hard"))
    ap.add_argument("--distractors", type=int, default=None,
                    help="number of distractor snakes (default: LRA's for the difficulty)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    for name in ("n_train", "n_val", "batch", "channels", "steps", "eval_every", "threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.minutes > 0:
        ap.error(f"--minutes must be > 0, got {args.minutes}")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    extra = {} if args.distractors is None else {"num_distractor_snakes": args.distractors}
    # n_test=1000 as in the cpu preset, so that the cache is shared with its runs
    task = load_task("pathfinder", difficulty=args.difficulty, n_train=args.n_train,
                     n_val=args.n_val, n_test=1000, cache_dir=args.cache_dir, **extra)
    x, y = _images(task["train"])
    xv, yv = _images(task["val"])
    print(f"train {len(y)} images ({100 * y.float().mean():.1f}% label 1), val {len(yv)} "
          f"(majority {100 * task.majority_baseline('val'):.1f}%)", flush=True)
    net = cnn(args.channels)
    opt = torch.optim.Adam(net.parameters(), args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = torch.randint(0, len(y), (args.batch,), generator=gen)
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % args.eval_every == 0:
            with torch.no_grad():
                acc = (net(xv).argmax(1) == yv).float().mean().item()
            print(f"step {step}  {time.perf_counter() - t0:6.0f} s  loss {loss.item():.4f}  "
                  f"val {100 * acc:.1f}%", flush=True)
        if time.perf_counter() - t0 > 60 * args.minutes:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
