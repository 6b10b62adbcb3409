"""``sparsegraph pretrain``: masked-language-model pretraining of a sparse-attention encoder.

    sparsegraph pretrain --demo                       # the stdlib's own source, a tiny model
    sparsegraph pretrain --text notes/ book.txt [--config pretrain.toml] [--set train.steps=2000]
    sparsegraph pretrain --demo --resume              # continue runs/pretrain-demo after a kill

The model is :class:`experiments.models.MaskedLM` (encoder + tied-embedding MLM head) with the
attention pattern of ``[model.attention]``; the data is :class:`experiments.text.mlm.MLMData` (byte-level
by default, BERT masking); the loop is :class:`experiments.train.Trainer` (checkpoints, exact
``--resume``, ``metrics.jsonl``, best checkpoint by validation MLM loss). The encoder of
``runs/<name>/checkpoints/best.pt`` then initialises a classifier:
``sparsegraph train CONFIG.toml --init-from runs/<name>/checkpoints/best.pt``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsegraph.experiments.infra import config as cfgmod
from sparsegraph.experiments.train.config import OptimConfig, RunConfig, TrainConfig
from sparsegraph.experiments.text.mlm_config import MLMDataConfig

HELP = "masked-LM pretraining on text files (or --demo: Python's own standard library)"

#: What ``--demo`` changes from the defaults (any of it can still be set by --config / --set): a
#: tiny BigBird encoder (2 layers, width 64, rotary positions) over 128-byte windows of the stdlib,
#: 400 steps. Chosen by measurement: with learned absolute positions the same budget only learns
#: the byte frequencies (loss ~3.1); rotary positions let it use the neighbouring bytes.
DEMO: dict[str, dict[str, Any]] = {
    "run": {"name": "pretrain-demo"},
    "data": {"max_bytes": 4_000_000},
    "model": {
        "d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 256, "dropout": 0.0, "position": "rotary",
        "attention": {"pattern": "bigbird:block=16,window=3,random=1,global=1", "block_size": 16},
    },
    "optim": {"lr": 6e-3, "warmup_steps": 40},
    "train": {"steps": 400, "eval_at_start": True},
}


def _default_train() -> TrainConfig:
    return TrainConfig(steps=300, batch_size=32, eval_every=50, eval_batches=8, eval_split="val",
                       test_split="", metric="loss", mode="min", log_every=10, clip_norm=1.0)


def _default_optim() -> OptimConfig:
    return OptimConfig(lr=2e-3, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01, schedule="linear",
                       warmup_steps=30)


@dataclass
class PretrainConfig:
    """The configuration of ``sparsegraph pretrain`` (and the ``config.toml`` of its runs).

    ``model`` is an :class:`experiments.models.ModelConfig` table; its ``vocab_size`` and
    ``pad_id`` default to the tokenizer's and ``max_len`` to ``data.max_length``.
    """

    run: RunConfig = field(default_factory=lambda: RunConfig(name="pretrain"))
    data: MLMDataConfig = field(default_factory=MLMDataConfig)
    model: Any = None  # experiments.models.ModelConfig, resolved in resolve_config
    optim: OptimConfig = field(default_factory=_default_optim)
    train: TrainConfig = field(default_factory=_default_train)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--text", nargs="+", metavar="PATH",
                     help="text files or directories (searched for data.extensions) to pretrain on")
    src.add_argument("--demo", action="store_true",
                     help="pretrain a tiny model on the Python standard library's own source files")
    parser.add_argument("--config", metavar="CONFIG.toml", help="a TOML file with [run] [data] [model] [optim] [train]")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value, e.g. --set train.steps=1000 (repeatable)")
    parser.add_argument("--name", help="run name: the run directory is <run.out_dir>/<name>")
    parser.add_argument("--tokenizer", metavar="MODULE:CALLABLE",
                        help="a tokenizer factory of your own instead of bytes (see docs/training.md)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run from its newest checkpoint (exactly where it stopped)")


def _raw_config(args: argparse.Namespace) -> dict[str, Any]:
    """The TOML tables before typing: file, then the flags, then ``--set`` overrides."""
    import tomllib

    raw: dict[str, Any] = {}
    if args.config:
        p = Path(args.config)
        if not p.is_file():
            raise FileNotFoundError(f"config file {str(p)!r} does not exist")
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise cfgmod.ConfigError(f"{p}: not valid TOML: {e}") from e
    elif args.resume and args.name:
        # `--resume --name X` alone continues runs/X with the configuration saved there.
        saved = Path(RunConfig().out_dir) / args.name / "config.toml"
        if saved.is_file():
            import tomllib as _t

            raw = _t.loads(saved.read_text(encoding="utf-8"))
    data = raw.setdefault("data", {})
    if args.demo:
        data["demo"] = True
        data.pop("paths", None)
        _set_defaults(raw, DEMO)
    if args.text:
        data["paths"] = list(args.text)
        data["demo"] = False
    if args.tokenizer:
        data["tokenizer"] = args.tokenizer
    if args.name:
        raw.setdefault("run", {})["name"] = args.name
    return raw


def _set_defaults(raw: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Fill ``raw`` with ``defaults`` wherever it has no value (tables recursively)."""
    for k, v in defaults.items():
        if isinstance(v, dict):
            if isinstance(raw.setdefault(k, {}), dict):  # a non-table is reported when typed
                _set_defaults(raw[k], v)
        else:
            raw.setdefault(k, v)


def resolve_config(raw: dict[str, Any], overrides: list[str] = ()) -> tuple[PretrainConfig, Any]:
    """Type the raw tables (with ``overrides``) into a :class:`PretrainConfig`; returns it and the
    tokenizer. The model's vocabulary, padding id and length come from the tokenizer and the data
    unless the config sets them (a conflicting setting is an error)."""
    from sparsegraph.experiments.text.mlm import load_tokenizer
    from sparsegraph.experiments.models import ModelConfig

    @dataclass
    class _Schema(PretrainConfig):
        model: dict = field(default_factory=dict)  # typed below, once the tokenizer is known

    raw = cfgmod.apply_overrides(raw, list(overrides), _Schema)
    model_raw = raw.pop("model", {}) or {}
    if not isinstance(model_raw, dict):
        raise cfgmod.ConfigError(f"config key 'model': expected a table, got {model_raw!r}")
    base = cfgmod.from_dict(_Schema, raw)
    if not base.data.paths and not base.data.demo:
        raise ValueError("no text to pretrain on: pass --text PATH [PATH ...], --demo, or set data.paths")
    tok = load_tokenizer(base.data.tokenizer)
    model_raw = dict(model_raw)
    for key, value in (("vocab_size", tok.vocab_size), ("pad_id", tok.pad_id), ("max_len", base.data.max_length)):
        given = model_raw.get(key)
        if isinstance(given, cfgmod.RawValue):
            given = cfgmod.convert(given, int, f"model.{key}")
            model_raw[key] = given
        if given is None:
            model_raw[key] = value
        elif key != "max_len" and given != value:
            raise ValueError(f"model.{key} = {given} but the tokenizer has {key} = {value}; leave model.{key} unset")
        elif key == "max_len" and given < value:
            raise ValueError(f"model.max_len = {given} is shorter than data.max_length = {value}")
    model = cfgmod.from_dict(ModelConfig, model_raw, _prefix="model")
    cfg = PretrainConfig(run=base.run, data=base.data, model=model, optim=base.optim, train=base.train)
    return cfg, tok


def run(args: argparse.Namespace) -> int:
    from sparsegraph.experiments.text.mlm import MLMData, MLMObjective
    from sparsegraph.experiments.models import MaskedLM
    from sparsegraph.experiments.train import Trainer
    from sparsegraph.experiments.train import distributed as D
    from sparsegraph.experiments.train.metrics import read_metrics
    from sparsegraph.experiments.train.rng import seed_everything

    cfg, tok = resolve_config(_raw_config(args), args.overrides)
    dist = D.init(cfg.run.device)
    try:
        data = MLMData.from_config(cfg.data, tok)
        if dist.is_main:
            src = "the Python standard library" if cfg.data.demo else f"{len(data.files)} file(s)"
            print(f"pretrain {cfg.run.name}: {data.num_tokens_total:,} tokens from {src}; "
                  f"{data.split_size('train'):,} train / {data.split_size('val'):,} val sequences of "
                  f"{cfg.data.max_length}; vocab {tok.vocab_size}; pattern {cfg.model.attention.pattern!r}",
                  file=sys.stderr)
        seed_everything(cfg.run.seed, "model")
        model = MaskedLM(cfg.model)
        trainer = Trainer(model, MLMObjective(), data, train=cfg.train, optim=cfg.optim, run=cfg.run,
                          config=cfg, dist=dist)
        results = trainer.fit(resume=args.resume)
        if dist.is_main:
            evals = [r for r in read_metrics(trainer.run_dir / "metrics.jsonl") if r.get("split") == cfg.train.eval_split]
            print(_loss_table(evals, cfg.train.eval_split, tok.vocab_size))
            print(f"best checkpoint: {trainer.checkpoints.best_path} (step {results.best.step}); "
                  f"fine-tune with: sparsegraph train CONFIG.toml --init-from {trainer.checkpoints.best_path}")
    finally:
        D.shutdown()
    return 0


def _loss_table(evals: list[dict[str, Any]], split: str, vocab_size: int) -> str:
    """The validation MLM loss over training, as a small text table."""
    if not evals:
        return "(no evaluation recorded)"
    lines = [f"{'step':>6}  {split + ' MLM loss':>14}  {'perplexity':>10}  {'masked acc':>10}"]
    for r in evals:
        loss = float(r["loss"])
        lines.append(f"{r['step']:>6}  {loss:>14.4f}  {math.exp(min(loss, 50.0)):>10.2f}  {r.get('accuracy', float('nan')):>10.3f}")
    first, last = float(evals[0]["loss"]), float(evals[-1]["loss"])
    if len(evals) == 1:
        lines.append(f"one evaluation (set train.eval_every to see the loss fall); ln({vocab_size}) = {math.log(vocab_size):.4f}")
        return "\n".join(lines)
    lines.append(f"MLM loss {'fell' if last < first else 'did not fall'}: {first:.4f} -> {last:.4f} "
                 f"(a uniform guess over the {vocab_size} ids scores {math.log(vocab_size):.4f})")
    return "\n".join(lines)
