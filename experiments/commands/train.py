"""``sparsegraph train``: train a sparse-attention classifier on an LRA task or a text folder.

    sparsegraph train CONFIG.toml [--set section.key=value ...] [--name NAME] [--resume]
                      [--init-from runs/<pretrain>/checkpoints/best.pt]
    sparsegraph train --resume --name NAME          # continue runs/NAME with its saved config.toml
    torchrun --nproc_per_node=2 -m sparsegraph.experiments.cli train CONFIG.toml   # data-parallel

``CONFIG.toml`` has the tables ``[run]`` (:class:`~experiments.train.config.RunConfig`), ``[data]``
(:class:`DataConfig`), ``[model]`` (:class:`experiments.models.ModelConfig`; its ``vocab_size``,
``pad_id`` and ``max_len`` default to the data's), ``[optim]``, ``[train]`` and ``[init]``
(:class:`InitConfig`). The model is a :class:`~experiments.models.SequenceClassifier` (a
:class:`~experiments.models.DualEncoderClassifier` for pair tasks such as Retrieval) trained with
cross-entropy by :class:`experiments.train.Trainer`; everything lands in ``runs/<name>/``.

Fine-tuning: ``--init-from CKPT`` (``init.checkpoint``) copies the encoder weights of a checkpoint
(e.g. of ``sparsegraph pretrain``) into the classifier's encoder before training; the model table
then defaults to the checkpoint's, and learned position embeddings shorter than the task's length
are repeated to fill it (as Longformer did, Beltagy et al. 2020).

``--init-from DIR`` with a Hugging Face checkpoint directory (``config.json`` plus safetensors or a
``.bin``: BERT, RoBERTa, XLM-R, BigBird) starts from those pretrained weights
(:mod:`sparsegraph.hf.checkpoint`, the ``hf`` extra); the model table defaults to the
checkpoint's architecture (post-LN, first-token pooling, ...) and ``[model.attention]`` chooses
any graph. Its position table is repeated to a longer task length or cut to a shorter one. Text
must be tokenized by the checkpoint's tokenizer: ``data.tokenizer = "hf:DIR"``.

``data.task = "charlm"`` trains a decoder-only language model on bytes instead
(:mod:`sparsegraph.experiments.text.charlm_train`, docs/language_modelling.md).
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparsegraph.experiments.infra import config as cfgmod
from sparsegraph.experiments.train.config import OptimConfig, RunConfig, TrainConfig

HELP = ("train a classifier on an LRA task or a text folder, or a byte-level LM (data.task = charlm); "
        "resumable, data-parallel with torchrun")

TEXT_FOLDER = "text_folder"


@dataclass
class DataConfig:
    """The ``[data]`` table.

    ``task``: an LRA task of :func:`experiments.lra.load_task` (``listops``, ``pathfinder``,
    ``pathx``, ``image``, ``fashion_mnist``, ``text``, ``retrieval``) or ``text_folder``
    (:func:`experiments.text.folder.load_text_folder`). ``preset`` (LRA tasks): ``lra`` (the
    paper/repository settings) or ``cpu`` (minutes on 2 cores) from :mod:`sparsegraph.experiments.lra.recipes`
    supplies the defaults of ``params``, ``[model]``, ``[optim]`` and ``[train]``; the config's own
    values win. ``data_dir``: the task's files (the folder for ``text_folder``; generated tasks need
    none). ``params``: keyword parameters of ``load_task`` (e.g. ``{n_train = 2000, min_length =
    100, max_length = 500}`` for a short ListOps). ``max_length``, ``val_fraction``, ``tokenizer``:
    for ``text_folder`` only.
    """

    task: str = "listops"
    preset: str = ""
    data_dir: str = ""
    cache_dir: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    max_length: int = 512
    val_fraction: float = 0.1
    tokenizer: str = "bytes"

    def __post_init__(self) -> None:
        from sparsegraph.experiments.lra import TASKS

        valid = (*TASKS, TEXT_FOLDER)
        if self.task not in valid:
            raise ValueError(f"data.task must be one of {list(valid)}{cfgmod.suggest(self.task, valid)}, got {self.task!r}")
        if self.preset not in ("", "lra", "cpu"):
            raise ValueError(f"data.preset must be '', 'lra' or 'cpu'{cfgmod.suggest(self.preset, ('lra', 'cpu'))}, got {self.preset!r}")
        if self.preset and self.task == TEXT_FOLDER:
            raise ValueError("data.preset applies to the LRA tasks, not to data.task = 'text_folder'")
        if self.task == TEXT_FOLDER and not self.data_dir:
            raise ValueError("data.task = 'text_folder' needs data.data_dir (the folder with train/<class>/*.txt)")


@dataclass
class InitConfig:
    """The ``[init]`` table: start from pretrained weights.

    ``checkpoint``: a checkpoint file (``""``: train from scratch), or a Hugging Face checkpoint
    directory (BERT, RoBERTa, XLM-R, BigBird; see :mod:`sparsegraph.hf.checkpoint`); its tensors
    under ``prefix`` are loaded into the classifier under ``target_prefix``. ``tile`` lists (fnmatch) parameter
    names whose first dimension may be extended by repeating the pretrained rows.
    """

    checkpoint: str = ""
    prefix: str = "encoder."
    target_prefix: str = "encoder."
    tile: tuple[str, ...] = ("encoder.position.weight",)


@dataclass
class TrainCommandConfig:
    """The whole configuration of a ``sparsegraph train`` run (saved as ``runs/<name>/config.toml``)."""

    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: Any = None  # experiments.models.ModelConfig, resolved once the data is known
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    init: InitConfig = field(default_factory=InitConfig)


@dataclass
class _Schema(TrainCommandConfig):
    model: dict = field(default_factory=dict)  # typed in resolve_model, after the data is loaded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", metavar="CONFIG.toml",
                        help="the run's TOML configuration (optional with --resume --name NAME)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value, e.g. --set optim.lr=3e-4 (repeatable)")
    parser.add_argument("--name", help="run name: the run directory is <run.out_dir>/<name>")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run from its newest checkpoint (exactly where it stopped)")
    parser.add_argument("--init-from", metavar="CHECKPOINT",
                        help="initialise the encoder from a checkpoint (e.g. runs/<pretrain>/checkpoints/best.pt) "
                             "or a Hugging Face checkpoint directory (BERT, RoBERTa, XLM-R, BigBird)")


def read_raw(args: argparse.Namespace) -> dict[str, Any]:
    """The TOML tables of the run, before typing (file, then --name / --init-from)."""
    if args.config:
        path = Path(args.config)
    elif args.resume and args.name:
        path = Path(RunConfig().out_dir) / args.name / "config.toml"
        if not path.is_file():
            raise FileNotFoundError(f"--resume --name {args.name}: {str(path)!r} does not exist; give CONFIG.toml")
    else:
        raise ValueError("give CONFIG.toml (or --resume --name NAME to continue a run with its saved config)")
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise cfgmod.ConfigError(f"{path}: not valid TOML: {e}") from e
    if args.name:
        raw.setdefault("run", {})["name"] = args.name
    if args.init_from:
        raw.setdefault("init", {})["checkpoint"] = args.init_from
    return raw


def load_data(cfg: DataConfig) -> Any:
    """The task's :class:`experiments.lra.TaskData`."""
    if cfg.task == TEXT_FOLDER:
        from sparsegraph.experiments.text.folder import load_text_folder

        return load_text_folder(cfg.data_dir, max_length=cfg.max_length, val_fraction=cfg.val_fraction,
                                tokenizer=cfg.tokenizer)
    from sparsegraph.experiments.lra import load_task

    return load_task(cfg.task, data_dir=cfg.data_dir or None, cache_dir=cfg.cache_dir or None, **cfg.params)


def resolve_model(model_raw: dict[str, Any], data: Any, init_state: dict[str, Any] | None) -> Any:
    """The typed :class:`~experiments.models.ModelConfig`: the checkpoint's model table (when
    fine-tuning), then the config's ``[model]``, then the data's vocabulary / padding / length for
    whatever is still unset. A setting that contradicts the data is an error."""
    from sparsegraph.experiments.models import ModelConfig

    merged: dict[str, Any] = {}
    if init_state is not None:
        saved = (init_state.get("config") or {}).get("model")
        if isinstance(saved, dict):
            merged = {k: v for k, v in saved.items() if k != "max_len"}
    merged = cfgmod.merge(ModelConfig, merged, model_raw) if merged else dict(model_raw)
    facts = {"vocab_size": data.vocab_size, "max_len": data.seq_len}
    for key, value in facts.items():
        given = merged.get(key)
        if isinstance(given, cfgmod.RawValue):
            given = merged[key] = cfgmod.convert(given, int, f"model.{key}")
        if given is None:
            merged[key] = value
        elif key == "vocab_size" and given != value:
            origin = "the checkpoint's" if init_state is not None and "vocab_size" not in model_raw else "model.vocab_size"
            raise ValueError(
                f"{origin} vocabulary ({given} ids) differs from the {data.name} data's ({value} ids); "
                "a pretrained encoder must be fine-tuned on data tokenized the same way"
            )
        elif key == "max_len" and given < value:
            raise ValueError(f"model.max_len = {given} is shorter than the {data.name} sequences ({value} tokens)")
    if "pad_id" not in merged:
        merged["pad_id"] = "none" if data.pad_id is None else data.pad_id
    if merged.get("grid_width") is None:
        position = merged.get("position", ModelConfig.position)
        if isinstance(position, cfgmod.RawValue):
            position = cfgmod.convert(position, str, "model.position")
        merged["grid_width"] = data.grid_width(position)
    return cfgmod.from_dict(ModelConfig, merged, _prefix="model")


def parse_config(raw: dict[str, Any], overrides: list[str]) -> tuple[_Schema, dict[str, Any]]:
    """Type every table but ``[model]`` (with ``overrides``); return them and the raw model table."""
    raw = cfgmod.apply_overrides(raw, list(overrides), _Schema)
    model_raw = raw.pop("model", {}) or {}
    if not isinstance(model_raw, dict):
        raise cfgmod.ConfigError(f"config key 'model': expected a table, got {model_raw!r}")
    data_raw = raw.get("data", {})
    if isinstance(data_raw, dict) and data_raw.get("preset"):
        model_raw = _apply_preset(raw, model_raw)
    return cfgmod.from_dict(_Schema, raw), model_raw


def _apply_preset(raw: dict[str, Any], model_raw: dict[str, Any]) -> dict[str, Any]:
    """Lay the config's tables over the defaults of ``experiments.lra.recipes.get_recipe(task,
    preset)`` (in place for ``raw``; returns the model table)."""
    from sparsegraph.experiments.lra.recipes import get_recipe
    from sparsegraph.experiments.models import ModelConfig

    data = raw["data"]
    task = cfgmod.convert(data.get("task", DataConfig.task), str, "data.task")
    preset = cfgmod.convert(data["preset"], str, "data.preset")
    DataConfig(task=task, preset=preset, data_dir=str(data.get("data_dir", "")) or "x")  # validate early
    tc = get_recipe(task, preset)
    params = data.get("params", {})
    if not isinstance(params, dict):
        raise cfgmod.ConfigError(f"config key 'data.params': expected a table, got {params!r}")
    data["params"] = {**tc.data, **params}
    raw["train"] = cfgmod.merge(TrainConfig, cfgmod.to_dict(tc.train), raw.get("train", {}))
    raw["optim"] = cfgmod.merge(OptimConfig, cfgmod.to_dict(tc.optim), raw.get("optim", {}))
    m = tc.model
    shape = {"d_model": m.d_model, "n_layers": m.n_layers, "n_heads": m.n_heads, "d_ff": m.d_ff,
             "dropout": float(m.dropout), "position": m.position, "pooling": m.pooling,
             "attention": {"block_size": m.block_size}}
    return cfgmod.merge(ModelConfig, shape, model_raw)


def resolve_config(raw: dict[str, Any], overrides: list[str]) -> tuple[TrainCommandConfig, Any, dict | None]:
    """Type the raw tables (with ``overrides``); load the data and the init checkpoint.
    Returns ``(config, data, init_state)``."""
    base, model_raw = parse_config(raw, overrides)
    init_state = _init_state(base)
    data = load_data(base.data)
    return _finish_config(base, model_raw, data, init_state), data, init_state


def _init_state(base: _Schema) -> dict | None:
    from sparsegraph.experiments.train.checkpoint import load_checkpoint

    if not base.init.checkpoint:
        return None
    if Path(base.init.checkpoint).is_dir():
        return hf_init_state(base.init.checkpoint, base.init.prefix)
    return load_checkpoint(base.init.checkpoint)


def hf_init_state(directory: str, prefix: str = "encoder.") -> dict[str, Any]:
    """A Hugging Face checkpoint directory in the shape of a sparsegraph checkpoint: ``config.model``
    (the encoder's ``ModelConfig`` table), ``model`` (its weights under ``prefix``) and
    ``source = "huggingface"``."""
    from sparsegraph.hf.checkpoint import is_checkpoint_dir, read_checkpoint

    if not is_checkpoint_dir(directory):
        raise FileNotFoundError(
            f"init.checkpoint {directory!r} is a directory without config.json; give a checkpoint file or a "
            "Hugging Face checkpoint directory"
        )
    ck = read_checkpoint(directory)
    return {"config": {"model": ck.model_fields}, "model": {prefix + k: v for k, v in ck.state.items()},
            "source": "huggingface"}


def fit_positions(init_state: dict[str, Any], model: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """Cut a Hugging Face checkpoint's position tables that are longer than ``model``'s (a task
    shorter than the pretrained length); longer models get the table repeated by ``init.tile``."""
    if init_state.get("source") != "huggingface":
        return init_state
    own = model.state_dict()
    weights = dict(init_state["model"])
    for name in names:
        if name in weights and name in own and weights[name].shape[0] > own[name].shape[0]:
            weights[name] = weights[name][: own[name].shape[0]]
    return {**init_state, "model": weights}


def _finish_config(base: _Schema, model_raw: dict[str, Any], data: Any, init_state: dict | None) -> TrainCommandConfig:
    model = resolve_model(model_raw, data, init_state)
    if init_state is not None and init_state.get("source") == "huggingface" and model.pad_id != data.pad_id:
        raise ValueError(
            f"the Hugging Face checkpoint's pad id is {model.pad_id} but the {data.name} data pads with "
            f"{data.pad_id}; tokenize with the checkpoint's tokenizer (data.tokenizer = \"hf:DIR\")"
        )
    return TrainCommandConfig(run=base.run, data=base.data, model=model, optim=base.optim, train=base.train, init=base.init)


def build_classifier(cfg: TrainCommandConfig, data: Any) -> Any:
    from sparsegraph.experiments.models import DualEncoderClassifier, SequenceClassifier
    from sparsegraph.experiments.train.rng import seed_everything

    seed_everything(cfg.run.seed, "model")
    cls = DualEncoderClassifier if data.is_pair else SequenceClassifier
    return cls(cfg.model, data.num_classes)


def run(args: argparse.Namespace) -> int:
    from sparsegraph.experiments.train.classification import ClassificationObjective
    from sparsegraph.experiments.train import Trainer, load_model_weights
    from sparsegraph.experiments.train import distributed as D

    raw = read_raw(args)
    from sparsegraph.experiments.text.charlm_train import is_charlm, run_charlm

    if is_charlm(raw, args.overrides):  # a byte-level language model: experiments.text.charlm_train
        return run_charlm(raw, args)
    base, model_raw = parse_config(raw, args.overrides)
    init_state = _init_state(base)
    dist = D.init(base.run.device)
    try:
        # Rank 0 loads (and, for generated tasks, generates and caches) the data first; the other
        # processes then read it from the cache instead of generating it again at the same time.
        if not dist.is_main:
            D.barrier()
        try:
            data = load_data(base.data)
        finally:
            if dist.is_main:
                D.barrier()
        cfg = _finish_config(base, model_raw, data, init_state)
        for key in ("eval_split", "test_split"):
            split = getattr(cfg.train, key)
            if split and split not in data.splits:
                raise ValueError(f"train.{key} = {split!r} but the {data.name} data has splits {sorted(data.splits)}"
                                 + ("; set train.test_split = '' to skip the test evaluation" if key == "test_split" else ""))
        model = build_classifier(cfg, data)
        if init_state is not None and not args.resume:
            init_state = fit_positions(init_state, model, tuple(cfg.init.tile))
            names = load_model_weights(model, init_state, prefix=cfg.init.prefix, target_prefix=cfg.init.target_prefix,
                                       tile=cfg.init.tile)
            if dist.is_main:
                print(f"initialised {len(names)} tensors under {cfg.init.target_prefix!r} from {cfg.init.checkpoint}",
                      file=sys.stderr)
        if dist.is_main:
            baseline = data.majority_baseline(cfg.train.test_split) if cfg.train.test_split in data.splits else None
            print(f"train {cfg.run.name}: {data.summary()}; pattern {cfg.model.attention.pattern!r}"
                  + (f"; majority-class baseline {baseline:.3f}" if baseline is not None else ""), file=sys.stderr)
        trainer = Trainer(model, ClassificationObjective(pair=data.is_pair), data, train=cfg.train, optim=cfg.optim,
                          run=cfg.run, config=cfg, dist=dist)
        results = trainer.fit(resume=args.resume)
        if dist.is_main:
            best = results.best
            line = f"best {best.metric} {best.value:.4f} at step {best.step}"
            if results.test_at_best is not None:
                line += f"; test accuracy at the best checkpoint {results.test_at_best.get('accuracy', float('nan')):.4f}"
            print(line + f"; results in {trainer.run_dir / 'results.json'}")
    finally:
        D.shutdown()
    return 0


__all__ = ["DataConfig", "InitConfig", "TrainCommandConfig", "parse_config", "resolve_config", "resolve_model", "load_data",
           "build_classifier", "hf_init_state", "fit_positions", "HELP", "add_arguments", "run"]
