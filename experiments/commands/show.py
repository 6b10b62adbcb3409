"""``sparsegraph show SPEC --n N``: draw one pattern's mask (ASCII in the terminal, or a picture)."""

from __future__ import annotations

import argparse
import math

from sparsegraph import patterns as pattern_library
from sparsegraph.experiments.commands._common import add_import_argument, import_user_modules, parse_ns

HELP = "draw an attention pattern: ASCII mask in the terminal, or a PNG/SVG with -o"

#: Widest ASCII rendering, in characters.
ASCII_WIDTH = 96
DRAWINGS = ("mask", "heads", "graph", "degrees")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="pattern spec, e.g. 'bigbird:block=64' or 'sliding_window:window=8'")
    parser.add_argument("--n", required=True, help="sequence length (regular tokens)")
    parser.add_argument("--heads", type=int, default=1, help="number of heads to build (default 1)")
    parser.add_argument("--head", type=int, default=0, help="head to draw (default 0)")
    parser.add_argument("--seed", type=int, default=0, help="seed of random patterns (default 0)")
    parser.add_argument("--layer", type=int, default=0, help="layer index (default 0)")
    parser.add_argument("--block", type=int, default=None,
                        help="ASCII: one character per block x block tile (chosen automatically when n is "
                             f"over {ASCII_WIDTH}); pictures: the block grid drawn over the mask")
    parser.add_argument("-o", "--output", default=None, metavar="FILE",
                        help="write a picture (.png, .svg or .pdf) instead of printing ASCII")
    parser.add_argument("--draw", choices=DRAWINGS, default="mask",
                        help="with -o: the mask of --head (default), all heads, a node-link drawing "
                             "(small n), or degree histograms")
    parser.add_argument("--merged", action="store_true", help="draw the union of all heads instead of --head")
    parser.add_argument("--max-pixels", type=int, default=384,
                        help="with -o: largest image side in pixels; larger masks are downsampled")
    add_import_argument(parser)


def run(args: argparse.Namespace) -> int:
    out = None
    if args.output is not None:
        from sparsegraph.plot import check_output_path

        out = check_output_path(args.output)  # before any work: a bad path fails fast
    import_user_modules(args.imports)
    ns = parse_ns(args.n)
    if len(ns) != 1:
        raise ValueError(f"show draws one length; --n must be a single value, got {args.n!r}")
    pattern = pattern_library.get(args.spec)
    graph = pattern.build(ns[0], heads=args.heads, layer=args.layer, seed=args.seed)
    if not (0 <= args.head < graph.heads):
        raise ValueError(f"--head must be in [0, {graph.heads}) for --heads {args.heads}, got {args.head}")
    if out is None:
        print(_ascii(graph, args))
        return 0
    from sparsegraph import plot

    head = 0 if args.merged else args.head
    if args.draw == "mask":
        fig = plot.plot_mask(graph, head, merged=args.merged, block=args.block, max_pixels=args.max_pixels)
    elif args.draw == "heads":
        fig = plot.plot_heads(graph, block=args.block, max_pixels=min(args.max_pixels, 192))
    elif args.draw == "graph":
        fig = plot.draw_graph(graph, head, merged=args.merged, seed=args.seed)
    else:
        fig = plot.plot_degree_histogram(graph, head, merged=args.merged)
    plot.save(fig, out)
    print(f"wrote {out} ({args.draw} of {graph!r})")
    return 0


def _ascii(graph, args: argparse.Namespace) -> str:
    size = max(graph.n_q, graph.n_k)
    block = args.block
    if block is None and size > ASCII_WIDTH:
        block = math.ceil(size / 64)  # 64 characters wide
    if block is not None and block < 1:
        raise ValueError(f"--block must be >= 1, got {block}")
    if block is not None and math.ceil(size / block) > ASCII_WIDTH:
        raise ValueError(
            f"--block {block} gives {math.ceil(size / block)} characters per row, over {ASCII_WIDTH}; "
            f"use --block {math.ceil(size / ASCII_WIDTH)} or more, or -o mask.png"
        )
    heads = range(graph.heads) if args.merged else [args.head]
    if args.merged:
        graph = graph.merge_heads()
        heads = [0]
    parts = [graph.to_string(h, max_size=ASCII_WIDTH, block=block) for h in heads]
    legend = "'#' edge, '.' none" if block is None else "'#' full tile, '+' partial, '.' empty"
    return "\n".join(parts) + f"\n({legend})"
