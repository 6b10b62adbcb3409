"""Does the model's output depend on its input? A check the trainer runs before the first update.

Two numbers, measured on one training batch with the model in evaluation mode (no dropout, so the
check draws no random numbers and the run that follows is unchanged):

``output_spread``
    How much the outputs differ between the examples of the batch, relative to their size::

        spread = RMS_b ||y_b - mean_b y_b||  /  RMS_b ||y_b||

    over the examples ``b`` of the batch, with ``y_b`` the objective's outputs for example ``b``
    (``objective.logits(model, batch)``; the check is skipped for objectives without it). 0 means
    every example gets the same output: the model ignores its input.

``embedding_grad``
    The share of the loss gradient that reaches the input embeddings (every ``nn.Embedding``
    weight)::

        ||∂loss/∂E||  /  ||∂loss/∂θ||

    0 means no training signal reaches the input: whatever the model does, it will never learn to
    read it.

A model whose outputs do not depend on its inputs cannot learn the task, and training it shows
this only as a loss that stays at the labels' entropy for minutes. The trainer stops such a run
at once with one line (:class:`InputIgnoredError`), and prints both numbers for every run, so that
a weak dependence (an input averaged away over a long sequence: spreads of 1e-3 and below) is
visible before training starts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["InputSensitivity", "InputIgnoredError", "measure_input_sensitivity"]


class InputIgnoredError(ValueError):
    """The model's outputs do not depend on its inputs (see :mod:`.sensitivity`)."""


@dataclass(frozen=True)
class InputSensitivity:
    """The two numbers of the module docstring (``None``: not measurable for this objective or
    model: no ``logits`` method, no ``nn.Embedding``)."""

    output_spread: float | None
    embedding_grad: float | None

    def ignores_input(self, threshold: float) -> bool:
        """True when a measured number is below ``threshold`` (0 disables the check)."""
        if threshold <= 0:
            return False
        return any(v is not None and v < threshold
                   for v in (self.output_spread, self.embedding_grad))

    def describe(self) -> str:
        """One line for the run's log."""
        def fmt(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.2e}"
        return (f"input sensitivity at step 0: outputs differ across the batch by {fmt(self.output_spread)} "
                f"of their size; the embeddings get {fmt(self.embedding_grad)} of the gradient")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(num: float, den: float) -> float:
    return 0.0 if den == 0.0 else num / den


@torch.no_grad()
def _spread(outputs: torch.Tensor) -> float:
    y = outputs.detach().double().reshape(outputs.shape[0], -1)
    centred = y - y.mean(dim=0, keepdim=True)
    return _ratio(float(centred.pow(2).sum(1).mean().sqrt()), float(y.pow(2).sum(1).mean().sqrt()))


def measure_input_sensitivity(model: nn.Module, objective: Any, batch: Any) -> InputSensitivity:
    """Measure :class:`InputSensitivity` of ``model`` on ``batch`` (already on the model's device).

    The model is put in evaluation mode for the measurement and its training mode restored;
    the gradients it computes are cleared (set to ``None``) before it returns, so the optimiser
    never sees them.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    was_training = model.training
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.grad for p in params]
    for p in params:
        p.grad = None
    try:
        spread = None
        logits = getattr(objective, "logits", None)
        if callable(logits):
            with torch.no_grad():
                out = logits(model, batch)
            if isinstance(out, torch.Tensor) and out.dim() >= 1 and out.shape[0] > 1:
                spread = _spread(out)
        loss, _ = objective.loss_and_metrics(model, batch)
        loss.backward()
        embeddings = [m.weight for m in model.modules() if isinstance(m, nn.Embedding)]
        emb_grad = None
        if embeddings:
            def norm(ps: list[torch.Tensor]) -> float:
                return math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in ps if p.grad is not None))
            emb_grad = _ratio(norm([e for e in embeddings if e.requires_grad]), norm(params))
        return InputSensitivity(spread, emb_grad)
    finally:
        for p, g in zip(params, saved):
            p.grad = g
        model.train(was_training)
