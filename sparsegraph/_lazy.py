"""Package attributes loaded on first use (PEP 562), shared by the packages whose public names live
in torch-importing submodules (``sparsegraph.kernels``, ``sparsegraph.experiments.models``,
``sparsegraph.experiments.train``): importing such a package, or a torch-free submodule of it, does
not import torch."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: Mapping[str, str],
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``where`` maps each public name to the module
    (absolute, or relative to ``package`` when it starts with ``.``) that defines it."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module, package), name)

    def __dir__() -> list[str]:
        import sys

        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
