"""``sparsegraph train`` for ``data.task = "charlm"``: a :class:`DecoderLM` on bytes.

    sparsegraph train charlm.toml [--set model.attention.pattern=sink_window:window=64,sinks=4]
    sparsegraph train --resume --name NAME

The tables are :class:`~experiments.text.charlm_config.CharLMRunConfig`'s: ``[run]``, ``[data]``
(:class:`CharLMDataConfig`), ``[model]`` (:class:`~experiments.models.decoder.DecoderConfig`;
``vocab_size`` is 256, ``max_len`` defaults to the longest sequence of the run), ``[optim]``,
``[train]`` and ``[stages]`` (staged training). ``data.preset = "cpu"`` supplies defaults for every
table. The run writes what every ``sparsegraph train`` run writes (``runs/<name>/``), and
``results.json`` also holds, under ``extra``, ``unigram_bits`` (the baseline) and the corpus.

The pieces are public for other runners (e.g. ``sparsegraph compare``): :func:`resolve_charlm_config`,
:func:`phases_from_config`, :func:`build_run` (data, model, objective, phases), and the recipes in
:mod:`experiments.text.charlm_config`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass, field
from typing import Any

from sparsegraph.experiments.infra import config as cfgmod
from sparsegraph.experiments.text.charlm_config import CharLMRunConfig, StagesConfig, charlm_recipe
from sparsegraph.experiments.train.config import OptimConfig, TrainConfig

__all__ = ["is_charlm", "resolve_charlm_config", "phases_from_config", "build_run", "run_charlm"]


def is_charlm(raw: dict[str, Any], overrides: list[str]) -> bool:
    """Whether a raw ``sparsegraph train`` config (with its ``--set`` overrides) is a charlm run."""
    task = (raw.get("data") or {}).get("task") if isinstance(raw.get("data"), dict) else None
    for text in overrides:
        key, _, value = text.partition("=")
        if key.strip() == "data.task":
            task = value.strip().strip("'\"")
    return task == "charlm"


@dataclass
class _Schema(CharLMRunConfig):
    model: dict = field(default_factory=dict)  # typed once the run's lengths are known


def resolve_charlm_config(raw: dict[str, Any], overrides: list[str] = ()) -> CharLMRunConfig:
    """Type the raw tables (``overrides`` first, then the preset's defaults under them)."""
    from sparsegraph.experiments.models.decoder import DecoderConfig
    from sparsegraph.experiments.text.charlm import VOCAB_SIZE

    raw = cfgmod.apply_overrides(raw, list(overrides), _Schema)
    model_raw = raw.pop("model", {}) or {}
    if not isinstance(model_raw, dict):
        raise cfgmod.ConfigError(f"config key 'model': expected a table, got {model_raw!r}")
    data = raw.get("data") or {}
    preset = data.get("preset", "") if isinstance(data, dict) else ""
    if preset:
        preset = cfgmod.convert(preset, str, "data.preset")
        rec = charlm_recipe(preset)
        raw["data"] = {**rec["data"], **data}
        raw["optim"] = cfgmod.merge(OptimConfig, rec["optim"], raw.get("optim", {}))
        raw["train"] = cfgmod.merge(TrainConfig, rec["train"], raw.get("train", {}))
        model_raw = cfgmod.merge(DecoderConfig, rec["model"], model_raw)
    base = cfgmod.from_dict(_Schema, raw)
    phases = phases_from_config(base.stages, base.data.seq_len)
    longest = phases.max_seq_len(base.data.seq_len) if phases is not None else base.data.seq_len
    model_raw = dict(model_raw)
    for key, value in (("vocab_size", VOCAB_SIZE), ("max_len", longest)):
        given = model_raw.get(key)
        if isinstance(given, cfgmod.RawValue):
            given = model_raw[key] = cfgmod.convert(given, int, f"model.{key}")
        if given is None:
            model_raw[key] = value
        elif key == "vocab_size" and given != value:
            raise ValueError(f"model.vocab_size = {given} but the byte-level data has {value} ids; leave it unset")
        elif key == "max_len" and given < value:
            raise ValueError(f"model.max_len = {given} is shorter than the run's longest sequence ({value})")
    model = cfgmod.from_dict(DecoderConfig, model_raw, _prefix="model")
    return CharLMRunConfig(run=base.run, data=base.data, model=model, optim=base.optim, train=base.train,
                           stages=base.stages)


def phases_from_config(stages: StagesConfig, seq_len: int) -> Any:
    """The :class:`~experiments.train.phases.PhaseSchedule` of a ``[stages]`` table (``None``
    when it lists no phase)."""
    from sparsegraph.experiments.train.phases import Phase, PhaseSchedule

    if not stages.enabled:
        return None
    if stages.preset == "doubling":
        k = stages.phases
        first = stages.seq_len or seq_len // 2 ** (k - 1)
        if first < 2:
            raise ValueError(f"stages: data.seq_len = {seq_len} is too short for {k} doubling phases")
        steps = list(stages.steps) or [1]
        if len(steps) == 1:
            steps = steps * k
        return PhaseSchedule.doubling(k, steps, first, dict(stages.params))
    return PhaseSchedule([Phase(steps=p.steps, seq_len=p.seq_len, lr_scale=p.lr_scale, params=dict(p.params))
                          for p in stages.schedule])


def build_run(cfg: CharLMRunConfig, corpus: Any = None) -> tuple[Any, Any, Any, Any]:
    """``(data, model, objective, phases)`` of a resolved config (the model seeded by ``run.seed``)."""
    from sparsegraph.experiments.text.charlm import CharLMData, CharLMObjective, build_decoder

    data = CharLMData.from_config(cfg.data, corpus)
    model = build_decoder(cfg.model, seed=cfg.run.seed)
    return data, model, CharLMObjective(), phases_from_config(cfg.stages, cfg.data.seq_len)


def run_charlm(raw: dict[str, Any], args: argparse.Namespace) -> int:
    """The body of ``sparsegraph train`` for a charlm config."""
    from sparsegraph.experiments.train import Trainer
    from sparsegraph.experiments.train import distributed as D

    if getattr(args, "init_from", None):
        raise ValueError("--init-from is not supported for data.task = 'charlm'")
    cfg = resolve_charlm_config(raw, args.overrides)
    dist = D.init(cfg.run.device)
    try:
        data, model, objective, phases = build_run(cfg)
        baseline = data.unigram_bits()
        if dist.is_main:
            print(f"train {cfg.run.name}: {data.summary()}; pattern {cfg.model.attention.pattern!r}; "
                  f"{sum(p.numel() for p in model.parameters()):,} parameters", file=sys.stderr)
            if phases is not None:
                print(phases.describe(), file=sys.stderr)
        for key in ("eval_split", "test_split"):
            split = getattr(cfg.train, key)
            if split and split not in data.splits:
                raise ValueError(f"train.{key} = {split!r} but the charlm data has splits {list(data.splits)}")
        trainer = Trainer(model, objective, data, train=cfg.train, optim=cfg.optim, run=cfg.run, config=cfg,
                          dist=dist, phases=phases)
        results = trainer.fit(resume=args.resume)
        results = dataclasses.replace(results, extra={
            "unigram_bits": baseline,
            "corpus": {"name": data.corpus.name, "sha256": data.corpus.sha256, "source": data.corpus.source,
                       "bytes": {k: int(v.size) for k, v in data.corpus.splits.items()}}})
        if dist.is_main:
            results.write(trainer.run_dir)
            best = results.best
            line = f"best val bpc {best.value:.4f} at step {best.step}"
            if results.test_at_best is not None:
                line += f"; test bpc {results.test_at_best['bpc']:.4f}"
            print(line + f"; unigram baseline {baseline:.4f} bits; results in {trainer.run_dir / 'results.json'}")
    finally:
        D.shutdown()
    return 0
