"""AdamW with weight-decay exclusions, and learning-rate schedules with linear warm-up.

AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019) decays weights
directly, ``θ ← θ - lr·(m̂/(√v̂+ε) + λ·θ)``, instead of adding ``λ·θ`` to the gradient. As in BERT
(Devlin et al. 2019) and most Transformer recipes, biases, normalisation gains and embeddings are
usually exempt from the decay: :func:`param_groups` splits the parameters into a decayed and an
undecayed group by the kinds listed in ``OptimConfig.no_decay``.

Schedules: the learning rate at optimizer step ``s`` (0-based: ``s`` updates done before this one)
is ``lr · f(s)`` with

- warm-up (Goyal et al. 2017), for ``s < W``: ``f(s) = (s + 1) / W`` (the first update already moves;
  update ``W - 1`` is the first at full rate);
- after warm-up, with progress ``p = (s - W) / max(1, T - W)`` over the remaining ``T - W`` steps
  and floor ``r = min_lr_ratio``:

  - ``constant``: ``f = 1``;
  - ``linear``:   ``f = r + (1 - r)·(1 - p)``;
  - ``cosine``:   ``f = r + (1 - r)·(1 + cos(π·p))/2`` (Loshchilov & Hutter, SGDR, ICLR 2017);
  - ``rsqrt``:    ``f = √(W' / (s + 1))`` with ``W' = max(W, 1)`` — the inverse-square-root decay of
    Vaswani et al. 2017 ("Attention Is All You Need"), normalised to 1 at the end of warm-up; it does
    not depend on ``T``.
"""

from __future__ import annotations

import fnmatch
import math
from typing import Any, Callable

import torch
from torch import nn

from sparsegraph.experiments.train.config import OptimConfig

__all__ = ["param_groups", "build_optimizer", "lr_factor", "build_scheduler"]

_NORM_TYPES: tuple[type, ...] = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.modules.batchnorm._NormBase,  # BatchNorm*, InstanceNorm*, SyncBatchNorm
) + ((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())


def _is_norm(module: nn.Module) -> bool:
    # Models may define their own norm layers; a class name ending in "Norm" counts too.
    return isinstance(module, _NORM_TYPES) or type(module).__name__.lower().endswith("norm")


def param_groups(
    model: nn.Module,
    weight_decay: float,
    no_decay: tuple[str, ...] | list[str] = ("bias", "norm", "embedding"),
    no_decay_params: tuple[str, ...] | list[str] = (),
) -> list[dict[str, Any]]:
    """Split ``model``'s trainable parameters into a decayed and an undecayed group.

    A parameter is undecayed when it is a bias (its name ends in ``bias``) and ``"bias"`` is in
    ``no_decay``; belongs to a normalisation layer (``"norm"``); belongs to an ``nn.Embedding``
    (``"embedding"``); or its dotted name matches an ``fnmatch`` pattern of ``no_decay_params``
    (each pattern must match some parameter: a typo is an error, not a silent no-op).
    Parameters shared between modules (tied embeddings) appear once. Each group carries the names of
    its parameters under ``"names"`` (for logging and tests).
    """
    kinds = set(no_decay)
    unknown = kinds - {"bias", "norm", "embedding"}
    if unknown:
        raise ValueError(f"no_decay: unknown kinds {sorted(unknown)}; expected among ['bias', 'embedding', 'norm']")
    owner_kind: dict[int, str] = {}
    for module in model.modules():
        kind = "norm" if _is_norm(module) else "embedding" if isinstance(module, nn.Embedding) else None
        if kind:
            for p in module.parameters(recurse=False):
                owner_kind[id(p)] = kind
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    used_patterns: set[str] = set()
    decay, keep, decay_names, keep_names = [], [], [], []
    for name, p in named:
        exempt = False
        if "bias" in kinds and name.split(".")[-1].endswith("bias"):
            exempt = True
        if owner_kind.get(id(p)) in kinds:
            exempt = True
        for pat in no_decay_params:
            if fnmatch.fnmatchcase(name, pat):
                used_patterns.add(pat)
                exempt = True
        (keep if exempt else decay).append(p)
        (keep_names if exempt else decay_names).append(name)
    unused = [p for p in no_decay_params if p not in used_patterns]
    if unused:
        raise ValueError(
            f"no_decay_params: pattern(s) {unused} match no parameter of the model; parameter names "
            f"look like {[n for n, _ in named[:4]]}"
        )
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay, "names": decay_names})
    if keep:
        groups.append({"params": keep, "weight_decay": 0.0, "names": keep_names})
    if not groups:
        raise ValueError("the model has no trainable parameters (requires_grad=True)")
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` of ``model`` with the settings of ``cfg``."""
    groups = param_groups(model, cfg.weight_decay, cfg.no_decay, cfg.no_decay_params)
    # foreach=False: the single-tensor path gives bit-identical updates whatever the grouping, which
    # keeps "resume == uninterrupted" exact across torch's foreach heuristics.
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, foreach=False)


def lr_factor(step: int, *, schedule: str, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0) -> float:
    """The multiplier ``f(step)`` of the base learning rate (formulas in the module docstring)."""
    if not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
    w = warmup_steps
    if step < w:
        return (step + 1) / w
    if schedule == "constant":
        return 1.0
    if schedule == "rsqrt":
        return math.sqrt(max(w, 1) / (step + 1))
    p = min(1.0, (step - w) / max(1, total_steps - w))
    if schedule == "linear":
        decay = 1.0 - p
    elif schedule == "cosine":
        decay = 0.5 * (1.0 + math.cos(math.pi * p))
    else:
        raise ValueError(f"schedule must be one of 'linear', 'cosine', 'rsqrt', 'constant', got {schedule!r}")
    return min_lr_ratio + (1.0 - min_lr_ratio) * decay


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int,
                    factor: Callable[[int], float] | None = None) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :func:`lr_factor` (times ``factor(step)`` when given, e.g. a phase
    schedule's multiplier); call ``scheduler.step()`` after each update."""
    fn: Callable[[int], float] = lambda s: lr_factor(  # noqa: E731
        s, schedule=cfg.schedule, warmup_steps=cfg.warmup_steps, total_steps=total_steps,
        min_lr_ratio=cfg.min_lr_ratio,
    ) * (factor(s) if factor is not None else 1.0)
    lr_factor(0, schedule=cfg.schedule, warmup_steps=cfg.warmup_steps, total_steps=total_steps,
              min_lr_ratio=cfg.min_lr_ratio)  # validate now, not at the first step
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)
