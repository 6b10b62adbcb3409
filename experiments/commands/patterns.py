"""``sparsegraph patterns``: the registered patterns and their parameters."""

from __future__ import annotations

import argparse

from sparsegraph import patterns as pattern_library
from sparsegraph.experiments.commands._common import add_import_argument, import_user_modules

HELP = "list the registered attention patterns and their parameters"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_import_argument(parser)


def run(args: argparse.Namespace) -> int:
    import_user_modules(args.imports)
    for p in pattern_library.available():
        params = ", ".join(x.describe() for x in p.params) or "no parameters"
        ctx = ", ".join(sorted(p.context & {"seed", "layer"}))
        extra = f"  [uses {ctx}]" if ctx else ""
        print(f"{p.name}{extra}\n    {p.summary}\n    parameters: {params}")
    return 0
