"""Staged training: a list of phases, each setting the sequence length, pattern parameters (the
window) and a learning-rate multiplier; the trainer consults the schedule at step boundaries.

Longformer's character LM (Beltagy et al. 2020, §4.2) trains in 5 phases: it starts with a short
sequence and small windows, and each later phase doubles the window and the sequence length and
halves the learning rate, so the model first learns local context cheaply. :meth:`PhaseSchedule.doubling`
builds that schedule; any other list of :class:`Phase` works the same way.

How the trainer uses it (``Trainer(..., phases=schedule)``), with ``s`` the updates done so far:

- the learning rate of update ``s + 1`` is the optimiser schedule's ``lr(s)`` times
  ``phase(s).lr_scale`` (one ``LambdaLR``; no separate state);
- before the batch of update ``s + 1`` is drawn, ``apply(model, data, s)`` sets the model's
  pattern parameters (``model.set_pattern_params(**phase.params)``, e.g. ``window=64``) and the data's
  sequence length (``data.set_seq_len(phase.seq_len)``). Everything is a function of ``s``, so a
  run killed and resumed mid-schedule continues exactly (tested bit for bit on CPU): resuming
  applies the phase the checkpoint was written in, loads it, then the phase of the next update.

Steps past the last phase stay in the last phase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = ["Phase", "PhaseSchedule"]


@dataclass
class Phase:
    """One training phase: ``steps`` updates with sequence length ``seq_len`` (0: the data's
    own), the pattern parameters ``params`` (empty: the model config's) and the learning rate
    multiplied by ``lr_scale``."""

    steps: int
    seq_len: int = 0
    lr_scale: float = 1.0
    params: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"phase steps must be an int >= 1, got {self.steps!r}")
        if isinstance(self.seq_len, bool) or not isinstance(self.seq_len, int) or self.seq_len < 0:
            raise ValueError(f"phase seq_len must be an int >= 0 (0 = the data's), got {self.seq_len!r}")
        if not (isinstance(self.lr_scale, (int, float)) and not isinstance(self.lr_scale, bool) and self.lr_scale > 0):
            raise ValueError(f"phase lr_scale must be a number > 0, got {self.lr_scale!r}")
        self.lr_scale = float(self.lr_scale)
        if not isinstance(self.params, dict):
            raise ValueError(f"phase params must be a table of pattern parameters, got {self.params!r}")
        self.params = dict(self.params)


class PhaseSchedule:
    """Phases in order; ``phase(s)`` is the phase of update ``s + 1`` (``s`` updates done)."""

    def __init__(self, phases: Sequence[Phase | dict[str, Any]]) -> None:
        items = [p if isinstance(p, Phase) else Phase(**p) for p in phases]
        if not items:
            raise ValueError("a phase schedule needs at least one phase")
        self.phases: tuple[Phase, ...] = tuple(items)
        self.starts: tuple[int, ...] = tuple(sum(p.steps for p in items[:i]) for i in range(len(items)))

    @property
    def total_steps(self) -> int:
        return self.starts[-1] + self.phases[-1].steps

    def index(self, step: int) -> int:
        """The phase (0-based) of update ``step + 1``; the last phase past the end."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step must be an int >= 0, got {step!r}")
        k = 0
        for i, start in enumerate(self.starts):
            if step >= start:
                k = i
        return k

    def phase(self, step: int) -> Phase:
        return self.phases[self.index(step)]

    def lr_scale(self, step: int) -> float:
        """The learning-rate multiplier of update ``step + 1``."""
        return self.phase(step).lr_scale

    def max_seq_len(self, default: int) -> int:
        """The longest sequence any phase uses (``default`` for phases without one)."""
        return max(p.seq_len or default for p in self.phases)

    def apply(self, model: Any, data: Any, step: int) -> int:
        """Set ``model`` and ``data`` for update ``step + 1``; returns the phase index."""
        k = self.index(step)
        p = self.phases[k]
        if any(q.params for q in self.phases):
            setter = getattr(model, "set_pattern_params", None)
            if setter is None:
                raise TypeError(f"phases set pattern parameters but {type(model).__name__} has no set_pattern_params()")
            setter(**p.params)
        if any(q.seq_len for q in self.phases):
            setter = getattr(data, "set_seq_len", None)
            if setter is None:
                raise TypeError(f"phases set the sequence length but {type(data).__name__} has no set_seq_len()")
            setter(p.seq_len or None)
        return k

    @classmethod
    def doubling(cls, phases: int, steps: int | Sequence[int], seq_len: int,
                 params: dict[str, int] | None = None, lr_scale: float = 1.0) -> "PhaseSchedule":
        """Longformer's schedule: phase ``k`` (0-based) has sequence length ``seq_len * 2**k``,
        every pattern parameter in ``params`` times ``2**k`` and learning-rate multiplier
        ``lr_scale / 2**k``; ``steps`` per phase (one int, or one per phase)."""
        if isinstance(phases, bool) or not isinstance(phases, int) or phases < 1:
            raise ValueError(f"phases must be an int >= 1, got {phases!r}")
        per = [steps] * phases if isinstance(steps, int) else list(steps)
        if len(per) != phases:
            raise ValueError(f"give one steps value or {phases} (one per phase), got {len(per)}")
        params = dict(params or {})
        return cls([Phase(steps=per[k], seq_len=seq_len * 2**k, lr_scale=lr_scale / 2**k,
                          params={name: v * 2**k for name, v in params.items()}) for k in range(phases)])

    def describe(self) -> str:
        lines = []
        for i, (start, p) in enumerate(zip(self.starts, self.phases)):
            params = ", ".join(f"{k}={v}" for k, v in p.params.items()) or "config's pattern"
            lines.append(f"phase {i}: updates {start + 1}-{start + p.steps}, seq_len {p.seq_len or 'data'}, "
                         f"lr x{p.lr_scale:g}, {params}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"PhaseSchedule({list(self.phases)!r})"
