"""``--import``: load a user's own module or ``.py`` file so that its ``@register`` calls run.

One implementation for every command and for the processes ``compare`` starts (its workers and
its speed sweep), so a module that imports in ``sparsegraph show`` imports in a compare worker too.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Iterable

__all__ = ["import_user_modules", "is_file_name", "absolute_imports"]


def is_file_name(name: str) -> bool:
    """Whether an ``--import`` value names a ``.py`` file rather than a module."""
    return name.endswith(".py") or os.sep in name or Path(name).is_file()


def absolute_imports(names: Iterable[str]) -> list[str]:
    """``names`` with every file made absolute: how a run records them, so that a worker or a
    resume started from another directory imports the same files."""
    return [str(Path(n).expanduser().resolve()) if is_file_name(n) else n for n in names]


def import_user_modules(names: Iterable[str]) -> None:
    """Import each of ``names``: a path to a ``.py`` file, or a module name.

    The current directory is put on ``sys.path`` first (console scripts and ``python -m`` workers
    leave it out), so a module next to the user resolves. A missing file or module, or an exception
    inside the user's code, is a one-line ``ValueError`` (``FileNotFoundError`` for a missing file)
    naming the module.
    """
    for name in names:
        if is_file_name(name):
            _import_file(Path(name).expanduser())
            continue
        cwd = os.getcwd()
        if cwd not in sys.path:
            sys.path.insert(0, cwd)
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name and name.startswith(e.name):
                raise ValueError(
                    f"--import {name!r}: no such module; pass a module on the Python path or in the "
                    "current directory, or a path to a .py file"
                ) from None
            raise ValueError(f"--import {name!r} failed: {type(e).__name__}: {e}") from None
        except Exception as e:  # the user's module raised while registering
            raise ValueError(f"--import {name!r} failed: {type(e).__name__}: {e}") from None


def _import_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"--import: no such file {str(path)!r}")
    resolved = path.resolve()
    for module in list(sys.modules.values()):
        # already imported (as a module or by an earlier --import): registering again would clash
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve() == resolved:
            return
    mod_name = "sparsegraph_user_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"--import {str(path)!r}: cannot load it as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[mod_name]
        raise ValueError(f"--import {str(path)!r} failed: {type(e).__name__}: {e}") from None
