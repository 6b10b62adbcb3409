"""``sparsegraph analyze SPEC [SPEC ...] --n 256,1024``: every graph metric, as a table or JSON."""

from __future__ import annotations

import argparse
import sys
import time

from sparsegraph import patterns as pattern_library
from sparsegraph.experiments.commands._common import add_import_argument, import_user_modules, parse_ns

HELP = "measure patterns as graphs (path length, flow depth, spectral gap, clustering, ...) over n"

#: Metric lines slower than this (seconds) are shown on stderr as they finish.
SLOW = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sparsegraph.analysis import METRICS

    parser.add_argument("specs", nargs="+", metavar="SPEC", help="pattern specs, e.g. bigbird 'watts_strogatz:k=8,p=0.1'")
    parser.add_argument("--n", default="256,1024,4096", help="comma-separated lengths (default 256,1024,4096)")
    parser.add_argument("--heads", type=int, default=1, help="heads to build (default 1); analysed merged unless --head")
    parser.add_argument("--head", type=int, default=None, help="analyse this head only (default: all heads merged)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the patterns and of the sampling (default 0)")
    parser.add_argument("--layer", type=int, default=0, help="layer index (default 0)")
    parser.add_argument("--metrics", default=",".join(METRICS),
                        help=f"comma-separated subset of {','.join(METRICS)} (default: all)")
    parser.add_argument("--samples", type=int, default=None,
                        help="sampled sources for large graphs (default: 256 for paths, 1024 nodes for clustering)")
    exact = parser.add_mutually_exclusive_group()
    exact.add_argument("--exact", dest="exact", action="store_const", const=True, default=None,
                       help="never sample (slow on large token-level graphs)")
    exact.add_argument("--sampled", dest="exact", action="store_const", const=False,
                       help="always sample (fast; estimates with standard errors)")
    fmt = parser.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the full results as JSON")
    fmt.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--plot", default=None, metavar="FILE", help="also draw each metric against n (.png/.svg/.pdf)")
    parser.add_argument("--coverage", default=None, metavar="FILE",
                        help="also draw coverage-after-L-layers curves at the largest n (.png/.svg/.pdf)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_import_argument(parser)


def run(args: argparse.Namespace) -> int:
    from sparsegraph import analysis

    outputs = {}
    for name in ("plot", "coverage"):
        path = getattr(args, name)
        if path is not None:
            from sparsegraph.plot import check_output_path

            outputs[name] = check_output_path(path)  # before any work: a bad path fails fast
    import_user_modules(args.imports)
    ns = parse_ns(args.n)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if "flow" not in metrics and "coverage" in outputs:
        raise ValueError("--coverage needs the flow metric; add flow to --metrics")
    analysis.summary.check_metrics(metrics)  # unknown metric names fail before any work
    for flag in ("heads", "layer", "seed"):
        if getattr(args, flag) < (1 if flag == "heads" else 0):
            raise ValueError(f"--{flag} must be >= {1 if flag == 'heads' else 0}, got {getattr(args, flag)}")
    if args.head is not None and not 0 <= args.head < args.heads:
        raise ValueError(f"--head must be in [0, {args.heads}) for --heads {args.heads}, got {args.head}")
    pats = [pattern_library.get(s) for s in args.specs]  # unknown patterns / bad parameters fail here
    progress = None if args.quiet else _Progress()
    rows = analysis.compare_table(
        pats, ns, heads=args.heads, layer=args.layer, seed=args.seed, metrics=metrics, head=args.head,
        samples=args.samples, exact=args.exact, progress=progress,
    )
    if args.json:
        print(analysis.to_json(rows, indent=2))
    else:
        print(analysis.format_table(rows, "markdown" if args.markdown else "text"))
        if any(not r.get("paths", {}).get("exact", True) or not r.get("clustering", {}).get("exact", True)
               for r in rows):
            print("(a±e: estimate from sampled sources with its standard error; lo..hi: bounds)")
    from sparsegraph import plot

    if "plot" in outputs:
        plot.save(plot.plot_metrics(rows, [c for c in plot.curves.DEFAULT_CURVES]), outputs["plot"])
        print(f"wrote {outputs['plot']}", file=sys.stderr)
    if "coverage" in outputs:
        top = max(ns)
        curves = {r["pattern"]: r for r in rows if r["n"] == top}
        plot.save(plot.plot_coverage(curves, title=f"coverage after L layers at n={top}"), outputs["coverage"])
        print(f"wrote {outputs['coverage']}", file=sys.stderr)
    return 0


class _Progress:
    """Progress on stderr: each case as it starts, and metrics slower than ``SLOW`` seconds."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self, line: str) -> None:
        if line.endswith("building"):
            print(f"{line} ({time.perf_counter() - self.t0:.1f}s elapsed)", file=sys.stderr, flush=True)
            return
        try:
            seconds = float(line.rsplit(" ", 1)[-1].rstrip("s"))
        except ValueError:
            seconds = SLOW
        if seconds >= SLOW:
            print(f"    {line}", file=sys.stderr, flush=True)
