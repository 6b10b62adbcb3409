"""How long the Triton kernels take in Triton's CPU interpreter (``TRITON_INTERPRET=1``).

    python -m sparsegraph.kernels.triton_interp_bench [--repeats 3] [--sizes 64,128,256]

A measurement, not a benchmark of the kernel: the interpreter executes every program of the grid
one after another in Python/numpy, so its time grows with (listed blocks) x (batch * heads) and
says nothing about GPU speed. It is printed so that test sizes can be chosen (tests/
test_triton_backend.py) and so the docs can state the cost. Prints, per case, the median over
``--repeats`` calls of the forward and of forward+backward, and the time per computed block pair.
Timings on a shared machine are noisy: the cases are interleaved, round-robin, in one process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

# Must precede the first import of triton (kernels.triton_backend imports it).
os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sparsegraph.kernels import prepare  # noqa: E402
from sparsegraph.kernels import triton_backend as tb  # noqa: E402
from sparsegraph.graph import AttentionGraph  # noqa: E402
from sparsegraph.layout import compile as compile_layout  # noqa: E402


def _case(n: int, block: int, density: float, batch: int, heads: int, d: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    layout = compile_layout(AttentionGraph.from_mask(rng.random((n, n)) < density, heads=heads), block)
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, heads, n, d, generator=gen, requires_grad=True) for _ in range(3))
    return dict(n=n, block=block, density=density, batch=batch, heads=heads, d=d,
                layout=prepare(layout), q=q, k=k, v=v, pairs=layout.nnzb * batch * heads, fwd=[], fwdbwd=[])


def _run(c: dict) -> None:
    t0 = time.perf_counter()
    out = tb.attention(c["q"], c["k"], c["v"], c["layout"])
    t1 = time.perf_counter()
    out.sum().backward()
    t2 = time.perf_counter()
    c["fwd"].append(t1 - t0)
    c["fwdbwd"].append(t2 - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per case (median reported)")
    parser.add_argument("--sizes", default="64,128,256", help="comma-separated sequence lengths")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be >= 1, got {args.repeats}")
    if not tb.is_interpreted():
        raise SystemExit("TRITON_INTERPRET was not 1 when triton was imported: this script measures the interpreter")
    sizes = [int(s) for s in args.sizes.split(",")]
    cases = []
    for n in sizes:
        for block in (16, 32):
            cases.append(_case(n, block, 0.3, 1, 2, 32, seed=n + block))
    for c in cases:  # warm-up: the interpreter rewrites each kernel's AST once per process
        _run(c)
        c["fwd"].clear()
        c["fwdbwd"].clear()
    for r in range(args.repeats):
        for i, c in enumerate(cases):
            print(f"\rrepeat {r + 1}/{args.repeats}, case {i + 1}/{len(cases)}", end="", file=sys.stderr, flush=True)
            _run(c)
    print(file=sys.stderr)
    print(f"Triton {__import__('triton').__version__} interpreter, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; float32, batch 1, 2 heads, head_dim 32, token-level "
          f"random graph of density 0.3; median of {args.repeats}")
    print(f"{'n':>5} {'block':>5} {'block pairs':>11} {'fwd s':>8} {'fwd+bwd s':>10} "
          f"{'fwd ms/pair':>11} {'f+b ms/pair':>11}")
    for c in cases:
        f, fb = statistics.median(c["fwd"]), statistics.median(c["fwdbwd"])
        print(f"{c['n']:>5} {c['block']:>5} {c['pairs']:>11} {f:>8.2f} {fb:>10.2f} "
              f"{1e3 * f / c['pairs']:>11.1f} {1e3 * fb / c['pairs']:>11.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
