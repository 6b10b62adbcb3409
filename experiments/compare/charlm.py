"""``sparsegraph compare --task charlm``: the byte-level language model as a comparison task.

What differs from the classification tasks, and only that, lives here:

- the setting is the charlm recipe (``--preset``, ``cpu``) under the ``--set`` overrides,
  typed by :func:`~sparsegraph.experiments.text.charlm_train.resolve_charlm_config` exactly as
  ``sparsegraph train`` types a charlm config; the run's pattern, graph seed (= the run's seed) and
  backend are three more overrides, so a worker rebuilds the same configuration from its
  ``run.toml``;
- the model is a :class:`~sparsegraph.experiments.models.decoder.DecoderLM`, the score bits per
  character (lower is better, :data:`~sparsegraph.experiments.compare.results.SCORES`) and the
  baseline the unigram entropy of the training bytes;
- every pattern must be causal: ``full`` means ``causal``, and a pattern with a look-ahead edge is
  refused before training, naming the edge.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

__all__ = ["TASK", "DEFAULT_PATTERNS", "config", "resolve_entry", "check_causal", "train"]

#: The task name.
TASK = "charlm"
#: The patterns compared when ``--patterns`` is not given: full causal attention, and the cpu
#: recipe's attention sinks plus a window.
DEFAULT_PATTERNS = ("full", "sink_window:window=64,sinks=4")


def config(preset: str, overrides: Sequence[str], *, name: str = "charlm", seed: int = 0,
           out_dir: str = "runs", pattern: str | None = None, backend: str = "auto") -> Any:
    """The typed charlm configuration of a run (or, without ``pattern``, of the task)."""
    from sparsegraph.experiments.text.charlm_train import resolve_charlm_config

    raw: dict[str, Any] = {"run": {"name": name, "seed": seed, "out_dir": out_dir},
                           "data": {"task": TASK, "preset": preset}}
    extra = [] if pattern is None else [f"model.attention.pattern={pattern}",
                                        f"model.attention.graph_seed={seed}",
                                        f"model.attention.backend={backend}"]
    return resolve_charlm_config(raw, [*overrides, *extra])


def resolve_entry(entry: str) -> str:
    """The spec of one ``--patterns`` entry: ``full`` is full causal attention (``causal``);
    anything else must be a spec of the registry, used as given."""
    from sparsegraph import patterns

    spec = "causal" if entry == "full" else entry
    try:
        patterns.get(spec)
    except (ValueError, TypeError, KeyError) as e:
        raise ValueError(f"pattern {entry!r}: {e}") from None
    return spec


def check_causal(spec: str, n: int, *, heads: int, layers: int, seed: int) -> None:
    """Raise ``ValueError`` naming the first look-ahead edge of any layer's graph."""
    from sparsegraph import patterns
    from sparsegraph.analysis.causal import first_future_edge

    pat = patterns.get(spec)
    for layer in range(layers):
        edge = first_future_edge(pat.build(n, heads=heads, layer=layer, seed=seed))
        if edge is not None:
            head, i, j = edge
            raise ValueError(f"pattern {spec!r} is not causal: layer {layer}, head {head} has the edge "
                             f"{i} -> {j} (a query attending a later key); the character LM needs a "
                             "causal pattern (e.g. 'causal', 'sliding_window:window=64,causal=true', "
                             "'sink_window:window=64,sinks=4')")


def train(spec: Any, run_dir: Path, *, device: str, progress: str = "") -> Any:
    """Train (or resume) the charlm run ``spec`` (a ``RunSpec``) in ``run_dir``; returns its
    :class:`~sparsegraph.experiments.train.result.RunResult`, the unigram baseline under ``extra``."""
    from sparsegraph.experiments.text.charlm_train import build_run
    from sparsegraph.experiments.train import Trainer

    cfg = config(spec.preset, spec.overrides, name=spec.name, seed=spec.seed,
                 out_dir=str(run_dir.parent), pattern=spec.spec, backend=spec.backend)
    cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, device=device))
    train_cfg = dataclasses.replace(cfg.train, progress=progress) if progress else cfg.train
    data, model, objective, phases = build_run(cfg)
    trainer = Trainer(model, objective, data, train=train_cfg, optim=cfg.optim, run=cfg.run,
                      config=spec, run_dir=run_dir, phases=phases)
    result = trainer.fit(resume=True)
    result = dataclasses.replace(result, extra={"unigram_bits": data.unigram_bits()})
    if trainer.is_main:
        result.write(run_dir)
    return result
