"""Metric records of a run: ``metrics.jsonl`` (and TensorBoard when it is installed).

Each record is one JSON object per line, e.g.
``{"step": 100, "split": "train", "loss": 1.23, "accuracy": 0.5, "lr": 0.001, "time": 12.3}``,
appended and flushed at once, so the file is readable while the run is going and survives a kill
up to the last full line. After a resume from step ``k``, :meth:`MetricsLog.truncate_after` drops
the records of steps after ``k`` (they will be recomputed), so the file reads as if the run had
never been interrupted.

:class:`WeightedMean` averages per-batch means with weights (examples, or masked tokens for MLM),
which is how evaluation metrics over uneven batches and over several processes are combined.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

__all__ = ["MetricsLog", "WeightedMean", "read_metrics"]


class WeightedMean:
    """Running weighted means of named values: ``sum(w·x) / sum(w)`` per name."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.weight = 0.0

    def add(self, values: Mapping[str, float], weight: float = 1.0) -> None:
        if weight < 0 or not math.isfinite(weight):
            raise ValueError(f"weight must be a finite number >= 0, got {weight}")
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v) * weight
        self.weight += weight

    def state(self) -> dict[str, float]:
        """Sums and total weight in one dict (for an all-reduce across processes)."""
        return {**{f"sum/{k}": v for k, v in self.sums.items()}, "weight": self.weight}

    @staticmethod
    def from_state(state: Mapping[str, float]) -> "WeightedMean":
        m = WeightedMean()
        m.weight = float(state["weight"])
        m.sums = {k[4:]: float(v) for k, v in state.items() if k.startswith("sum/")}
        return m

    def means(self) -> dict[str, float]:
        if self.weight <= 0:
            return {}
        return {k: v / self.weight for k, v in self.sums.items()}

    def reset(self) -> None:
        self.sums.clear()
        self.weight = 0.0


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no inf/nan; keep them visible rather than invalid
    return v


class MetricsLog:
    """Appends records to ``<run_dir>/metrics.jsonl``; mirrors scalars to TensorBoard if installed.

    ``enabled=False`` (non-zero ranks) makes every method a no-op. ``tensorboard="auto"`` uses
    ``torch.utils.tensorboard`` when the ``tensorboard`` package is importable, writing to
    ``<run_dir>/tensorboard``.
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, enabled: bool = True, tensorboard: bool | str = "auto") -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.enabled = enabled
        self._tb = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # needs the optional `tensorboard` package
            except ImportError:
                if tensorboard is True:
                    raise
            else:
                self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def write(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        if "step" not in record:
            raise ValueError(f"a metrics record needs a 'step', got keys {sorted(record)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({k: _jsonable(v) for k, v in record.items()}, sort_keys=False)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
        if self._tb is not None:
            split = record.get("split", "train")
            for k, v in record.items():
                if k not in ("step", "split") and isinstance(v, (int, float)) and not isinstance(v, bool):
                    self._tb.add_scalar(f"{split}/{k}", v, record["step"])
            self._tb.flush()

    def truncate_after(self, step: int) -> None:
        """Drop records with ``step > step`` (and any torn last line), rewriting the file atomically."""
        if not self.enabled or not self.path.exists():
            return
        from sparsegraph.experiments.train.checkpoint import atomic_write_bytes

        kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= step]
        atomic_write_bytes(self.path, "".join(json.dumps(r) + "\n" for r in kept).encode("utf-8"))

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (a torn final line, from a kill, is skipped)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out
