"""Time every graph metric of ``sparsegraph.analysis`` for n = 1K .. 64K and print a table.

    .venv/bin/python -m sparsegraph.experiments.measure.analysis_timing                      # the default sweep
    .venv/bin/python -m sparsegraph.experiments.measure.analysis_timing --n 1024,4096 --repeats 5 --patterns bigbird

For each pattern and ``n`` the graph is built once, then every metric runs ``repeats`` times,
the metrics interleaved within each repeat (so load changes on a shared machine hit all of them
alike); the table shows the median seconds of each and how it was computed (``exact``, or
``S=…`` sampled sources / nodes). BLAS runs single-threaded (``OPENBLAS_NUM_THREADS=1`` unless
already set): on a shared 2-core machine a multi-threaded BLAS spins against the other processes
and dense eigensolvers slow down several-fold. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads BLAS

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable  # noqa: E402

from sparsegraph import patterns  # noqa: E402
from sparsegraph import analysis  # noqa: E402

DEFAULT_PATTERNS = (
    "bigbird:block=64,window=3,random=3,global=2",
    "sliding_window:window=256",
    "watts_strogatz:k=8,p=0.1",
)
DEFAULT_NS = "1024,4096,16384,65536"


def _metrics(seed: int) -> dict[str, Callable[[Any], Any]]:
    return {
        "degrees": lambda g: analysis.degree_stats(g),
        "paths+flow": lambda g: analysis.distance_profile(g, seed=seed),
        "spectral": lambda g: analysis.spectral_gap(g, seed=seed),
        "clustering": lambda g: analysis.clustering(g, seed=seed),
        "small world": lambda g: analysis.small_world(g, seed=seed),
    }


def _how(name: str, result: Any) -> str:
    if name == "paths+flow":
        return "exact" if result.exact else f"S={result.sources}"
    if name == "clustering":
        return "exact" if result.exact else f"S={result.sources}"
    if name == "small world":
        return "exact" if result.exact else "sampled"
    if name == "spectral":
        m = result.method
        return "dense" if "dense" in m.split(";")[0] else ("banded" if "banded" in m else "ARPACK")
    return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patterns", nargs="+", default=list(DEFAULT_PATTERNS), metavar="SPEC")
    ap.add_argument("--n", default=DEFAULT_NS, help=f"comma-separated lengths (default {DEFAULT_NS})")
    ap.add_argument("--repeats", type=int, default=3, help="runs per metric; the median is shown (default 3)")
    ap.add_argument("--max-repeats-n", type=int, default=16384,
                    help="above this n, run once (the 64K sweep is long; default 16384)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--metrics", default=None, help="comma-separated subset of: " + ", ".join(_metrics(0)))
    args = ap.parse_args(argv)
    ns = [int(x) for x in args.n.split(",")]
    metrics = _metrics(args.seed)
    if args.metrics:
        wanted = [m.strip() for m in args.metrics.split(",")]
        bad = [m for m in wanted if m not in metrics]
        if bad:
            ap.error(f"unknown metrics {bad}; choose from {list(metrics)}")
        metrics = {k: v for k, v in metrics.items() if k in wanted}
    print(f"# analysis timing: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}, "
          f"seed {args.seed}; median seconds over the runs shown")
    header = ["pattern", "n", "edges", "runs", "build", *metrics, "total"]
    rows = []
    t_start = time.perf_counter()
    for spec in args.patterns:
        pat = patterns.get(spec)
        for n in ns:
            t0 = time.perf_counter()
            g = pat.build(n, seed=args.seed)
            build = time.perf_counter() - t0
            runs = args.repeats if n <= args.max_repeats_n else 1
            times: dict[str, list[float]] = {m: [] for m in metrics}
            how: dict[str, str] = {}
            for r in range(runs):
                for name, fn in metrics.items():
                    print(f"[{time.perf_counter() - t_start:7.1f}s] {spec} n={n} run {r + 1}/{runs}: {name} ...",
                          file=sys.stderr, flush=True)
                    t0 = time.perf_counter()
                    res = fn(g)
                    times[name].append(time.perf_counter() - t0)
                    how[name] = _how(name, res)
            med = {m: statistics.median(v) for m, v in times.items()}
            cells = [spec, str(n), str(g.nnz), str(runs), f"{build:.2f}"]
            cells += [f"{med[m]:.2f}" + (f" ({how[m]})" if how[m] else "") for m in metrics]
            cells.append(f"{sum(med.values()):.2f}")
            rows.append(cells)
            print(f"  -> {' | '.join(cells)}", file=sys.stderr, flush=True)
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    print(f"\n(total = sum of the metric medians, excluding build; wall time of the sweep "
          f"{time.perf_counter() - t_start:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
