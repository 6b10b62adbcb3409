"""Build-time table for the built-in patterns: ``python -m sparsegraph.patterns.benchmark [--n 16384 65536]``.

Prints wall and CPU seconds of ``patterns.get(spec).build(n, heads=...)``: the first build of
each (spec, n) -- which pays for fresh memory pages -- and the best of ``--repeat`` builds with
other seeds, and the edges per head. A script that prints numbers, never an assertion: timings depend on the
machine and its load.
"""

from __future__ import annotations

import argparse
import time

from sparsegraph import patterns

SPECS = [
    "bigbird:block=64,window=3,random=3,global=2",
    "bigbird:block=64,window=3,random=3,global=2,mode=etc",
    "sliding_window:window=512",
    "dilated_window:window=256,dilation=[1,2,4,8]",
    "longformer:window=512,global_indices=[0,1,2]",
    "sparse_transformer:stride=128",
    "sparse_transformer:stride=128,mode=fixed,c=8",
    "erdos_renyi:degree=64",
    "erdos_renyi:p=0.004",
    "watts_strogatz:k=64,p=0.2",
    "global_itc:indices=[0,1,2]",
    "global_etc:g=2|sliding_window:window=512",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[16384, 65536])
    parser.add_argument("--heads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--spec", action="append", help="benchmark these specs instead (repeatable)")
    args = parser.parse_args(argv)
    print(f"{'spec':55s} {'n':>7s} {'first s':>8s} {'best s':>8s} {'best cpu':>8s} {'edges/head':>11s}")
    for spec in args.spec or SPECS:
        pattern = patterns.get(spec)
        for n in args.n:
            heads = args.heads
            if "dilation=[" in spec:  # a per-head list fixes the number of heads
                heads = spec.split("dilation=[")[1].split("]")[0].count(",") + 1
            walls, cpus = [], []
            for seed in range(1 + args.repeat):
                wall, cpu = time.perf_counter(), time.process_time()
                graph = pattern.build(n, heads=heads, seed=seed)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
                edges = graph.nnz // heads
                del graph
            print(f"{spec:55s} {n:7d} {walls[0]:8.3f} {min(walls[1:] or walls):8.3f} "
                  f"{min(cpus[1:] or cpus):8.3f} {edges:11d}", flush=True)


if __name__ == "__main__":
    main()
