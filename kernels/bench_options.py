"""The options of ``sparsegraph bench`` / ``python -m sparsegraph.kernels.bench``, without importing torch.

Kept apart from :mod:`sparsegraph.kernels.bench` so that ``sparsegraph --help`` and the other subcommands
start without loading torch (about 2 s): the benchmark itself is imported when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

__all__ = ["IMPLS", "DEFAULT_PATTERNS", "TUNED_MALLOC_ENV", "add_arguments", "reexec_with_tuned_malloc"]

IMPLS = ("dense_sdpa", "flex", "gather_loop", "torch", "auto")
DEFAULT_PATTERNS = ("bigbird:block=64,window=3,random=3,global=2", "longformer:window=512")
#: Allocator settings ``sparsegraph bench`` runs its timings under (see the module docstring).
TUNED_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 32), "MALLOC_TRIM_THRESHOLD_": str(1 << 36)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", default="1024,2048,4096,8192,16384", help="lengths for every implementation")
    parser.add_argument("--sparse-n", default="32768,65536",
                        help="extra lengths for the sparse implementations only ('' for none)")
    parser.add_argument("--pattern", action="append", default=None, metavar="SPEC",
                        help="pattern spec (repeatable); default: BigBird block 64 window 3 random 3 "
                             "global 2, and Longformer window 512")
    parser.add_argument("--impl", default=",".join(IMPLS), help=f"comma list from {','.join(IMPLS)}")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (medians over them)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--max-dense-n", type=int, default=16384, help="longest n for dense SDPA")
    parser.add_argument("--compile-n", type=int, default=65536, help="n of the layout compile timing (0: skip)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--quick", action="store_true", help="n=1024,2048, no sparse-only n, 2 rounds")
    parser.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    parser.add_argument("--keep-malloc-env", action="store_true",
                        help="do not re-execute with MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ raised")


def reexec_with_tuned_malloc(argv: Sequence[str]) -> None:
    """Re-execute ``python -m sparsegraph.experiments.cli <argv>`` with the tuned allocator settings, unless
    they are already set (glibc reads them at process start only)."""
    if all(os.environ.get(k) for k in TUNED_MALLOC_ENV):
        return
    env = {**os.environ, **TUNED_MALLOC_ENV}
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "sparsegraph.experiments.cli", *argv], env)
