"""Measure the LRA generators' speed: ``python -m sparsegraph.experiments.measure.lra_generators [--quick]``.

Prints wall-clock and CPU times for ListOps at LRA lengths (100k examples, or 10k with
``--quick`` and an extrapolation), Pathfinder-32 (20k images, 2k with ``--quick``) and a
per-image Path-X (128x128) cost, plus the ListOps majority-class baseline. Nothing is cached.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

from sparsegraph.experiments.lra.listops import generate_listops
from sparsegraph.experiments.lra.pathfinder import generate_example, generate_pathfinder, pathfinder_config


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10k ListOps / 2k Pathfinder")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    args = parser.parse_args(argv)
    n_listops = 10_000 if args.quick else 100_000
    n_pf = 2_000 if args.quick else 20_000
    print(f"CPUs usable: {len(os.sched_getaffinity(0))}, load average: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")

    wall, cpu = time.perf_counter(), _cpu_seconds()
    splits, info = generate_listops(n_train=n_listops - 4000, n_val=2000, n_test=2000, seed=0,
                                    workers=args.workers)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    labels = np.concatenate([s["labels"] for s in splits.values()])
    lengths = np.concatenate([s["lengths"] for s in splits.values()])
    freq = np.bincount(labels, minlength=10) / labels.size
    print(f"ListOps (LRA lengths 501-1999), {n_listops} examples: {wall:.1f} s wall, "
          f"{cpu:.1f} s CPU; acceptance {info['acceptance_rate']:.2%}, "
          f"duplicates dropped {info['duplicates_dropped']}")
    if args.quick:
        print(f"  extrapolated to 100k: ~{wall * 10:.0f} s wall")
    print(f"  lengths min/median/mean/max {lengths.min()}/{np.median(lengths):.0f}/"
          f"{lengths.mean():.0f}/{lengths.max()}")
    print(f"  label frequencies {np.round(freq, 3).tolist()}")
    test = splits["test"]["labels"]
    print(f"  majority baseline: all {freq.max():.2%} (label {freq.argmax()}), "
          f"test split {np.bincount(test).max() / test.size:.2%}")

    cfg = pathfinder_config(32, 14)
    wall, cpu = time.perf_counter(), _cpu_seconds()
    out = generate_pathfinder(cfg, n_train=n_pf, n_val=0, n_test=0, seed=0, workers=args.workers)
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    print(f"Pathfinder-32 hard, {n_pf} images: {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"({1000 * cpu / n_pf:.1f} ms CPU/image); label mean "
          f"{out['train']['labels'].mean():.3f}")

    for res, n in ((128, 100),):
        cfg = pathfinder_config(res, 14)
        generate_example(cfg, 0, 0)
        wall, cpu = time.perf_counter(), _cpu_seconds()
        for i in range(n):
            generate_example(cfg, 0, i)
        wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
        print(f"Path-X ({res}x{res}) hard, {n} images in one process: {1000 * cpu / n:.1f} ms "
              f"CPU/image ({1000 * wall / n:.1f} ms wall)")


if __name__ == "__main__":
    main()
