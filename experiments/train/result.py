"""What a finished run produced: :class:`RunResult`, stored as ``results.json`` in its directory.

The trainer writes it (atomically) when a run finishes and returns it from ``Trainer.fit``; the
``train`` command and the compare results read it back with :meth:`RunResult.read`, so the
writer and every reader share one typed definition instead of string keys. Torch-free.

Fields (``results.json`` holds exactly these keys):

- ``name``: the run's name; ``steps``: optimizer steps taken; ``epochs_started``;
  ``stopped_early``: early stopping ended the run;
- ``best``: the tracked metric's best evaluation (:class:`Best`: ``metric``, ``value``, ``step``;
  value and step are None when no evaluation happened); ``best_eval``: every metric of that
  evaluation;
- ``parameters``: trainable and frozen parameters of the model; ``world_size``: processes;
  ``precision``;
- ``train_seconds``: time in optimizer steps only; ``tokens_per_s``: real (unpadded) input tokens
  per second of those steps (None when the objective does not count tokens);
- ``peak_memory_bytes``: the process's peak resident set on CPU, ``max_memory_allocated`` on CUDA;
- ``test_final`` / ``test_at_best``: the test split's metrics with the final weights / with the
  best checkpoint's (None when the run has no test split);
- ``extra``: facts of the task that the command running it adds (e.g. the character LM's
  unigram baseline and corpus); empty for the trainer alone.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

__all__ = ["Best", "RunResult", "RESULTS_FILE"]

#: The file in a run directory that holds its :class:`RunResult`.
RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class Best:
    """The best evaluation of the tracked metric."""

    metric: str
    value: float | None = None
    step: int | None = None


@dataclass(frozen=True)
class RunResult:
    """A finished run (see the module docstring for every field)."""

    name: str
    steps: int
    epochs_started: int
    stopped_early: bool
    best: Best
    best_eval: dict[str, float] | None
    parameters: int
    world_size: int
    precision: str
    train_seconds: float
    tokens_per_s: float | None
    peak_memory_bytes: int
    test_final: dict[str, float] | None = None
    test_at_best: dict[str, float] | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "results") -> "RunResult":
        """Rebuild from :meth:`to_dict`'s form; a missing or unknown key is a ``ValueError``
        naming ``source``."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        unknown, missing = set(data) - names, required - set(data)
        if unknown or missing:
            raise ValueError(f"{source}: not a run result (unknown keys {sorted(unknown)}, "
                             f"missing keys {sorted(missing)})")
        best = data["best"]
        if not isinstance(best, Mapping) or set(best) - {"metric", "value", "step"}:
            raise ValueError(f"{source}: 'best' must be {{metric, value, step}}, got {best!r}")
        return cls(**{**data, "best": Best(**best)})

    def write(self, run_dir: str | os.PathLike[str]) -> Path:
        """Write ``run_dir/results.json`` atomically; returns its path."""
        from sparsegraph.experiments.infra.atomic import atomic_write_bytes

        path = Path(run_dir) / RESULTS_FILE
        atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        return path

    @classmethod
    def read(cls, run_dir: str | os.PathLike[str]) -> "RunResult":
        """Read ``run_dir/results.json`` (``FileNotFoundError`` when the run has not finished)."""
        path = Path(run_dir) / RESULTS_FILE
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        return cls.from_dict(data, source=str(path))
