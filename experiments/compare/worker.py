"""Train one (task, pattern, seed) of a comparison — run as its own process.

``python -m sparsegraph.experiments.compare.worker RUN_DIR`` reads ``RUN_DIR/run.toml`` (a
:class:`~experiments.compare.runspec.RunSpec`, written by the runner), loads the task's data from
the cache, builds the classifier with the pattern and trains it with
:class:`experiments.train.Trainer`, resuming from the newest checkpoint in ``RUN_DIR`` if there is
one. The trainer writes ``metrics.jsonl``, ``checkpoints/`` and ``results.json`` there; a run that
fails writes ``failed.json`` with the error. A self-pretrained run (``--set pretrain.steps=N``)
first trains its masked LM in ``RUN_DIR/pretrain/`` (:mod:`sparsegraph.experiments.lra.self_pretrain`).

Each run is a separate process so that its peak memory (the process's peak resident set, as the
trainer reports it) belongs to that run alone, and so that a failing run does not take the others
down.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from sparsegraph.experiments.compare.runspec import RunSpec, read_spec
from sparsegraph.experiments.infra.atomic import atomic_write_bytes
from sparsegraph.experiments.infra.user_modules import import_user_modules

__all__ = ["train", "build_classifier", "main"]


def train(run_dir: Path) -> dict:
    """Train (or resume) the run in ``run_dir``; returns the trainer's :class:`RunResult`.

    With ``recipe.pretrain.steps > 0`` the run is self-pretrained first
    (:func:`~sparsegraph.experiments.lra.self_pretrain.self_pretrain`, in ``RUN_DIR/pretrain/``
    with its own checkpoints, so a kill in either phase resumes exactly), and the classifier's
    encoder starts from the pretrained one; ``results.json`` then records the pretraining under
    ``extra["self_pretrain"]``.
    """
    import torch

    from sparsegraph.experiments.train.classification import ClassificationObjective
    from sparsegraph.experiments.train.config import RunConfig
    from sparsegraph.experiments.lra import load_task
    from sparsegraph.experiments.lra.self_pretrain import PRETRAIN_DIR, model_vocab_size, self_pretrain
    from sparsegraph.experiments.train import Trainer

    spec = read_spec(run_dir)
    import_user_modules(spec.imports)
    if spec.threads:
        torch.set_num_threads(spec.threads)
    device = "cpu" if not torch.cuda.is_available() else "auto"
    # set by the runner when several runs share the terminal: plain lines, no bar
    mode = os.environ.get("SPARSEGRAPH_PROGRESS", "")
    if spec.recipe is None:
        from sparsegraph.experiments.compare import charlm

        return charlm.train(spec, run_dir, device=device, progress=mode)
    data = load_task(spec.recipe.task, data_dir=spec.data_dir or None,
                     cache_dir=spec.cache_dir or None, progress=False, **spec.recipe.data)
    steps = spec.recipe.pretrain.steps
    # the same ModelConfig (pattern, graph seed) for both phases: pretrained on the graph it is
    # fine-tuned on
    model_cfg = spec.recipe.model_config(
        vocab_size=model_vocab_size(data, steps), pad_id=data.pad_id, pattern=spec.spec,
        max_len=data.seq_len, graph_seed=spec.seed, backend=spec.backend,
        grid_width=data.grid_width(spec.recipe.model.position))
    pretrained = None
    if steps:
        pretrained = self_pretrain(spec.recipe, model_cfg, data, run_dir / PRETRAIN_DIR,
                                   name=spec.name, seed=spec.seed, device=device, progress=mode,
                                   config=spec)
    model = build_classifier(spec, data, model_cfg,
                             pretrained=None if pretrained is None else pretrained.checkpoint)
    run = RunConfig(name=spec.name, seed=spec.seed, out_dir=str(run_dir.parent), device=device)
    train_cfg = spec.recipe.train
    if mode:
        train_cfg = dataclasses.replace(train_cfg, progress=mode)
    extra = {} if pretrained is None else {"self_pretrain": pretrained.summary}
    trainer = Trainer(model, ClassificationObjective(pair=data.is_pair), data, train=train_cfg,
                      optim=spec.recipe.optim, run=run, config=spec, run_dir=run_dir, extra=extra)
    return trainer.fit(resume=True)


def build_classifier(spec: RunSpec, data: Any, model_cfg: Any, *, pretrained: Path | None = None) -> Any:
    """The run's classifier (a dual encoder for pair tasks), initialised from ``spec.seed``; with
    ``pretrained`` (a self-pretraining checkpoint) its encoder is that checkpoint's."""
    from sparsegraph.experiments.lra.self_pretrain import load_pretrained_encoder
    from sparsegraph.experiments.models import DualEncoderClassifier, SequenceClassifier
    from sparsegraph.experiments.train.rng import seed_everything

    seed_everything(spec.seed, "model")
    model = (DualEncoderClassifier(model_cfg, data.num_classes) if data.is_pair
             else SequenceClassifier(model_cfg, data.num_classes))
    if pretrained is not None:
        load_pretrained_encoder(model, pretrained)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparsegraph.experiments.compare.worker",
                                     description="train one run of a comparison (see run.toml)")
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args(argv)
    t0 = time.time()
    try:
        results = train(args.run_dir)
    except (ValueError, TypeError, FileNotFoundError, FloatingPointError) as e:
        # The runner shows this line and records the run as failed.
        print(f"run failed: {type(e).__name__}: {e}", file=sys.stderr)
        atomic_write_bytes(args.run_dir / "failed.json", (json.dumps(
            {"error": f"{type(e).__name__}: {e}", "seconds": time.time() - t0}) + "\n").encode())
        return 1
    failed = args.run_dir / "failed.json"
    if failed.exists():
        failed.unlink()
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
