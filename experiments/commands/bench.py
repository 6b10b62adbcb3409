"""``sparsegraph bench``: time and measure the attention implementations (``kernels.bench``)."""

from __future__ import annotations

import argparse
import sys

from sparsegraph.kernels import bench_options

HELP = "benchmark block-sparse attention: dense SDPA, FlexAttention, a gather loop, torch, auto"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    bench_options.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if not args.keep_malloc_env:
        # glibc reads its malloc settings at start-up: re-run this command with them raised
        bench_options.reexec_with_tuned_malloc(sys.argv[1:])
    from sparsegraph.kernels import bench  # torch: imported only when the benchmark runs

    return bench.run_from_args(args)
