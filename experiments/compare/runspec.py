"""What one run of a comparison is: :class:`RunSpec`, stored as ``run.toml`` in its directory.

The runner writes it; :mod:`sparsegraph.experiments.compare.worker` reads it and trains. Two runs are the
same run exactly when their specs are equal, which is how a resumed comparison recognises its
finished runs.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from sparsegraph.experiments.infra import config as cfgmod
from sparsegraph.experiments.lra.recipes import Recipe

__all__ = ["RunSpec", "RUN_FILE", "read_spec", "write_spec"]

#: The file in a run directory that says what the run is.
RUN_FILE = "run.toml"


@dataclass
class RunSpec:
    """One run of a comparison.

    Attributes:
        task: the task's name (an LRA or diagnostic task, or ``charlm``).
        label: the pattern as the user named it; ``spec``: the full pattern spec string.
        seed: seeds the model initialisation, the data order and dropout (``run.seed``); the
            graph seed of random patterns is the same number, so each seed is also a new graph.
        recipe: a classification task's training recipe (data, model size, optimisation);
            None for ``charlm``.
        preset, overrides: ``charlm``'s recipe and the ``--set`` overrides over it (the worker
            types the configuration from them as ``sparsegraph train`` does); unused otherwise.
        backend: the ``kernels.attention`` backend.
        data_dir: directory of file-based tasks ("" for generated ones).
        cache_dir: the data cache root ("" = the default).
        imports: modules or ``.py`` files to import first (user-registered patterns).
        threads: torch intra-op threads (0 = torch's default).
    """

    task: str
    label: str
    spec: str
    seed: int
    recipe: Recipe | None = None
    preset: str = ""
    overrides: tuple[str, ...] = ()
    backend: str = "auto"
    data_dir: str = ""
    cache_dir: str = ""
    imports: tuple[str, ...] = ()
    threads: int = 0

    def __post_init__(self) -> None:
        if (self.recipe is None) != (self.task == "charlm"):
            raise ValueError(f"RunSpec for task {self.task!r}: a recipe is needed exactly for the "
                             "classification tasks")

    @property
    def name(self) -> str:
        from sparsegraph.experiments.compare.specs import run_label

        return f"{self.task}-{run_label(self.label)}-seed{self.seed}"


def write_spec(spec: RunSpec, run_dir: str | os.PathLike[str]) -> None:
    """Write ``run.toml`` (atomically)."""
    from sparsegraph.experiments.train.checkpoint import atomic_write_bytes

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(run_dir) / RUN_FILE, cfgmod.to_toml(spec).encode())


def read_spec(run_dir: str | os.PathLike[str]) -> RunSpec:
    """Read ``run.toml`` back into a :class:`RunSpec`."""
    return cfgmod.load(RunSpec, Path(run_dir) / RUN_FILE)
