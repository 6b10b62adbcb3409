"""Helpers shared by the ``sparsegraph`` subcommands: user pattern imports, ``--n`` lists, graphs."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from pathlib import Path

from sparsegraph.experiments.cli import CliError


def add_import_argument(parser: argparse.ArgumentParser) -> None:
    """``--import MODULE_OR_FILE`` (repeatable): load a user's own ``@register``'ed patterns first."""
    parser.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="MODULE_OR_FILE",
        help="import a module (e.g. my_patterns) or a .py file (e.g. ./my_patterns.py) first, so "
             "the patterns it @register's can be used; repeatable",
    )


def import_user_modules(names: list[str]) -> None:
    """Import each of ``names``: a path to a ``.py`` file, or a module name on ``sys.path``.

    The current directory is put on ``sys.path`` (console scripts leave it out), so a module
    next to the user resolves. A missing file or module, or an exception inside the user's code,
    becomes a one-line ``CliError``.
    """
    for name in names:
        if name.endswith(".py") or os.sep in name or Path(name).is_file():
            _import_file(Path(name))
            continue
        cwd = os.getcwd()
        if cwd not in sys.path:
            sys.path.insert(0, cwd)
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):
                raise CliError(
                    f"cannot import {name!r}: no such module; pass a module on the Python path or a "
                    "path to a .py file"
                ) from None
            raise CliError(f"importing {name!r} failed: {type(e).__name__}: {e}") from None
        except Exception as e:  # the user's module raised while registering
            raise CliError(f"importing {name!r} failed: {type(e).__name__}: {e}") from None


def _import_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"--import: no such file {str(path)!r}")
    resolved = path.resolve()
    for module in list(sys.modules.values()):
        # already imported (as a module or by an earlier --import): registering again would clash
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve() == resolved:
            return
    mod_name = f"sparsegraph_user_{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise CliError(f"--import: cannot load {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[mod_name]
        raise CliError(f"importing {str(path)!r} failed: {type(e).__name__}: {e}") from None


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
