"""The ``sparsegraph`` command line.

Each subcommand lives in its own module ``experiments.commands.<name>``, which defines

    HELP: str                                   one line for ``sparsegraph --help``
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int    the exit status

User errors (``ValueError``, ``TypeError``, ``FileNotFoundError``, ``PermissionError``, and
``CliError``) are printed as one line ``sparsegraph <command>: error: ...`` with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from typing import Sequence

#: Subcommands in the order ``--help`` lists them.
COMMANDS = ("patterns", "show", "analyze", "bench", "train", "pretrain", "generate", "compare")


class CliError(Exception):
    """A user error that the CLI reports in one line (exit status 2)."""


def _available_commands() -> list[str]:
    return [c for c in COMMANDS if importlib.util.find_spec(f"sparsegraph.experiments.commands.{c}") is not None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparsegraph",
        description="Attention patterns as directed graphs: list, draw, measure, benchmark, train, compare.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _available_commands():
        mod = importlib.import_module(f"sparsegraph.experiments.commands.{name}")
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # the words as given, for commands that record their own command line (compare); when main
    # is called with argv, sys.argv is the caller's, not this command's
    args._argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(args._run(args) or 0)
    except (CliError, ValueError, TypeError, FileNotFoundError, PermissionError, IsADirectoryError) as e:
        print(f"sparsegraph {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sparsegraph {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
