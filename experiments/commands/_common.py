"""Helpers shared by the ``sparsegraph`` subcommands: the ``--import`` option, ``--n`` lists, graphs."""

from __future__ import annotations

import argparse

from sparsegraph.experiments.infra.user_modules import import_user_modules


def add_import_argument(parser: argparse.ArgumentParser) -> None:
    """``--import MODULE_OR_FILE`` (repeatable): load a user's own ``@register``'ed patterns first."""
    parser.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="MODULE_OR_FILE",
        help="import a module (e.g. my_patterns) or a .py file (e.g. ./my_patterns.py) first, so "
             "the patterns it @register's can be used; repeatable",
    )


def parse_ns(text: str) -> list[int]:
    """``"256,1024,4096"`` -> ``[256, 1024, 4096]`` (positive ints, ``k``/``K`` = x1024 allowed)."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        scale = 1
        if part[-1:] in ("k", "K"):
            part, scale = part[:-1], 1024
        try:
            n = int(part) * scale
        except ValueError:
            raise ValueError(f"--n must be a comma-separated list of positive ints like 256,1024, got {text!r}") from None
        if n < 1:
            raise ValueError(f"--n values must be >= 1, got {n} in {text!r}")
        out.append(n)
    return out
