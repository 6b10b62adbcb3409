"""Self-pretraining (SPT): masked-LM pretraining on a task's own training inputs, then fine-tuning.

Amos, Berant and Gupta, "Never Train from Scratch: Fair Comparison of Long-Sequence Models
Requires Data-Driven Priors" (ICLR 2024): a model trained from random weights on an LRA task can
sit on a plateau that a short denoising pretraining on the *same* task's training inputs (no other
data, the labels unused) removes; comparisons of architectures should give each that prior. Here:

1. :class:`TaskMLMData` turns a :class:`~sparsegraph.experiments.lra.TaskData`'s train split
   into masked-LM batches (both documents of a pair task, as separate sequences);
2. :func:`self_pretrain` trains a :class:`~sparsegraph.experiments.models.MaskedLM` with the
   classifier's own :class:`~sparsegraph.experiments.models.ModelConfig` (the same attention
   pattern and graph seed, so it is pretrained on the graph it will be fine-tuned on) with the
   :class:`~sparsegraph.experiments.train.Trainer` in its own run directory (checkpoints, exact
   resume), for ``Recipe.pretrain.steps`` updates;
3. :func:`load_pretrained_encoder` copies that model's encoder into the classifier
   (:func:`~sparsegraph.experiments.train.load_model_weights`, as ``sparsegraph train
   --init-from`` does), which is then fine-tuned as usual (``sparsegraph compare``'s worker).

**The mask id.** The task's ids are ``0 .. vocab_size - 1``, and for the pixel tasks every one of
them is a real pixel value, so no existing id can stand for ``[MASK]``: it is the new id
``mask_id = vocab_size`` (:func:`mask_id_of`), and both models are built with one more embedding
row (:func:`model_vocab_size`). The classifier never sees that id; its row only keeps the encoder's
tensors the same shape as the pretrained ones. Without self-pretraining the vocabulary is the
task's, so those runs are unchanged.

**Masking** is :func:`sparsegraph.experiments.text.mlm.mask_tokens` (BERT's 80/10/10) over the
real tokens only: positions before the example's ``length`` (for pixel tasks, with no padding,
every position). A "random token" replacement draws from the task's ids other than the padding id.

**Determinism.** The order of epoch ``e`` is :func:`~sparsegraph.experiments.lra.batch_indices`'
permutation of ``(seed, e)``; the masks of sequence ``i`` in epoch ``e`` come from
``(seed, e, i)`` alone (validation: epoch 0, so its loss is comparable between evaluations). So a
resumed run sees exactly the batches and masks of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from sparsegraph.experiments.lra.datasets import TaskData, batch_indices

__all__ = ["PRETRAIN_DIR", "mask_id_of", "model_vocab_size", "TaskMLMData", "SelfPretrainResult",
           "self_pretrain", "load_pretrained_encoder"]

#: The self-pretraining's run directory inside a compare run's directory.
PRETRAIN_DIR = "pretrain"
#: Keeps the masking streams apart from every other ``(seed, epoch, index)`` stream.
_MASK_STREAM = 0x5E1F


def mask_id_of(data: TaskData) -> int:
    """The ``[MASK]`` id of ``data``: ``data.vocab_size``, one past its own ids (see the module
    docstring)."""
    return int(data.vocab_size)


def model_vocab_size(data: TaskData, pretrain_steps: int) -> int:
    """The model's vocabulary for ``data``: the task's, plus the mask id when
    ``pretrain_steps > 0`` (the pretrained and the fine-tuned model must have the same shape)."""
    if isinstance(pretrain_steps, bool) or not isinstance(pretrain_steps, int) or pretrain_steps < 0:
        raise ValueError(f"pretrain_steps must be an int >= 0, got {pretrain_steps!r}")
    return int(data.vocab_size) + (1 if pretrain_steps else 0)


class TaskMLMData:
    """Masked-LM batches over a task's inputs (a :class:`~sparsegraph.experiments.train.objective.DataSource`).

    Split ``"train"`` holds the train split's sequences (for pair tasks the first documents, then
    the second ones); ``"val"`` the validation split's, used only to measure the MLM loss. Batches
    are what :class:`~sparsegraph.experiments.text.mlm.MLMObjective` reads: ``input_ids`` (long
    ``[B, L]``, masked), ``labels`` (long ``[B, L]``, the original id at the chosen positions,
    ``-100`` elsewhere) and ``padding_mask`` (bool ``[B, L]``, True at padding).

    Args:
        data: the task; it must have fixed ``train`` and ``val`` splits (not ``fresh``).
        mask_prob: the fraction of each sequence's real tokens chosen, in (0, 1).
    """

    def __init__(self, data: TaskData, *, mask_prob: float) -> None:
        if not isinstance(data, TaskData):
            raise TypeError(f"data must be a TaskData, got {type(data).__name__}")
        if isinstance(mask_prob, bool) or not isinstance(mask_prob, (int, float)) or not 0.0 < mask_prob < 1.0:
            raise ValueError(f"mask_prob must be a number in (0, 1), got {mask_prob!r}")
        for split in ("train", "val"):
            if split not in data.splits:
                why = (" (data.fresh = true draws the training examples every step: there is no "
                       "fixed set of inputs to pretrain on)" if split == "train" and data.fresh is not None else "")
                raise ValueError(f"self-pretraining needs the {data.name} data's {split!r} split, "
                                 f"but it has {sorted(data.splits)}{why}")
            if len(data.splits[split]) == 0:
                raise ValueError(f"self-pretraining needs examples in the {data.name} data's "
                                 f"{split!r} split, but it is empty")
        self.name = data.name
        self.mask_prob = float(mask_prob)
        self.mask_id = mask_id_of(data)
        self.length = data.seq_len
        self._parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for split in ("train", "val"):
            s = data.splits[split]
            parts = [(s.tokens, s.lengths)]
            if s.tokens2 is not None:
                parts.append((s.tokens2, s.lengths2))
            self._parts[split] = parts
        ids = np.arange(data.vocab_size, dtype=np.int64)
        self._random_ids = ids if data.pad_id is None else ids[ids != data.pad_id]

    def split_size(self, split: str) -> int:
        """The number of sequences of ``split``."""
        return sum(len(t) for t, _ in self._split(split))

    def _split(self, split: str) -> list[tuple[np.ndarray, np.ndarray]]:
        if split not in self._parts:
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        return self._parts[split]

    def example(self, split: str, index: int, *, seed: int, epoch: int = 0) -> dict[str, np.ndarray]:
        """Sequence ``index`` of ``split``, masked for ``(seed, epoch)`` (validation: epoch 0)."""
        from sparsegraph.experiments.text.mlm import mask_tokens

        row = int(index)
        for tokens, lengths in self._split(split):
            if row < len(tokens):
                break
            row -= len(tokens)
        else:
            raise ValueError(f"index must be in [0, {self.split_size(split)}), got {index!r}")
        ids = np.asarray(tokens[row], dtype=np.int64)
        padding = np.arange(ids.shape[0]) >= int(lengths[row])
        mask_epoch = epoch if split == "train" else 0
        rng = np.random.default_rng([seed, mask_epoch, int(index), _MASK_STREAM])
        inputs, labels = mask_tokens(ids, rng, mask_prob=self.mask_prob, mask_id=self.mask_id,
                                     special=padding, random_ids=self._random_ids)
        return {"input_ids": inputs, "labels": labels, "padding_mask": padding}

    def batches(self, split: str, batch_size: int, *, seed: int, epoch: int = 0,
                start_step: int = 0) -> Iterator[dict[str, Any]]:
        """The batches of ``split`` in epoch ``epoch`` from batch ``start_step`` on (train:
        shuffled by ``(seed, epoch)``; validation: in order)."""
        import torch

        n = self.split_size(split)
        for idx in batch_indices(n, batch_size, seed=seed, epoch=epoch, start_step=start_step,
                                 shuffle=split == "train"):
            exs = [self.example(split, int(i), seed=seed, epoch=epoch) for i in idx]
            yield {k: torch.from_numpy(np.stack([e[k] for e in exs])) for k in exs[0]}


@dataclass(frozen=True)
class SelfPretrainResult:
    """A finished self-pretraining.

    Attributes:
        checkpoint: the checkpoint of its final weights (the classifier starts from its encoder).
        summary: what the compare results record under ``extra["self_pretrain"]``: the settings
            (``steps``, ``mask_prob``, ``mask_id``, ``lr``, ``batch_size``, ``warmup_steps``) and
            the MLM losses: ``val_mlm_loss_start`` / ``val_mlm_loss_final`` on the validation
            inputs before the first and after the last update, ``train_mlm_loss_final`` the mean
            over the last logged training updates.
    """

    checkpoint: Path
    summary: dict[str, Any]


def self_pretrain(recipe: Any, model_config: Any, data: TaskData, run_dir: str | Path, *,
                  name: str, seed: int, device: str = "auto", progress: str = "",
                  config: Any = None) -> SelfPretrainResult:
    """Pretrain (or resume, or find finished) the masked LM of ``recipe.pretrain`` in ``run_dir``.

    Args:
        recipe: the run's :class:`~sparsegraph.experiments.lra.recipes.Recipe`;
            ``recipe.pretrain.steps`` must be > 0. The pretraining uses its ``[train]`` and
            ``[optim]`` sections with the changes ``[pretrain]`` makes (steps, batch, learning
            rate, warm-up, evaluation interval), evaluates the MLM loss (metric ``loss``, lower is
            better) on the validation inputs and has no test split.
        model_config: the classifier's :class:`~sparsegraph.experiments.models.ModelConfig`; its
            ``vocab_size`` must be :func:`model_vocab_size` of the data.
        data: the task's data (fixed train and val splits).
        run_dir: the pretraining's own run directory (``metrics.jsonl``, ``checkpoints/``,
            ``results.json``); a finished one (with ``results.json``) is not trained again, an
            unfinished one resumes from its newest checkpoint.
        name: the run's name in logs; ``seed``: seeds the model initialisation, the data order,
            the masks and dropout; ``device``, ``progress``: as ``run.device`` and
            ``train.progress`` (``""`` = the recipe's); ``config``: saved as the run's
            ``config.toml`` and in its checkpoints.
    """
    from sparsegraph.experiments.models import MaskedLM
    from sparsegraph.experiments.text.mlm import MLMObjective
    from sparsegraph.experiments.train import Trainer
    from sparsegraph.experiments.train.checkpoint import CheckpointManager
    from sparsegraph.experiments.train.config import RunConfig
    from sparsegraph.experiments.train.result import RESULTS_FILE, RunResult
    from sparsegraph.experiments.train.rng import seed_everything

    p = recipe.pretrain
    if p.steps < 1:
        raise ValueError(f"self_pretrain needs recipe.pretrain.steps >= 1, got {p.steps}")
    want = model_vocab_size(data, p.steps)
    if model_config.vocab_size != want:
        raise ValueError(f"model_config.vocab_size must be {want} (the {data.name} data's "
                         f"{data.vocab_size} ids and the mask id {mask_id_of(data)}), got "
                         f"{model_config.vocab_size}")
    run_dir = Path(run_dir)
    mlm_data = TaskMLMData(data, mask_prob=p.mask_prob)
    t = recipe.train
    train_cfg = dataclasses.replace(
        t, steps=p.steps, batch_size=recipe.pretrain_batch_size,
        eval_every=t.eval_every if p.eval_every is None else p.eval_every, eval_at_start=True,
        eval_split="val", test_split="", metric="loss", mode="min", patience=0,
        progress=progress or t.progress)
    optim_cfg = dataclasses.replace(
        recipe.optim, lr=recipe.optim.lr if p.lr is None else float(p.lr),
        warmup_steps=recipe.optim.warmup_steps if p.warmup_steps is None else p.warmup_steps)
    run = RunConfig(name=f"{name}-pretrain", seed=seed, out_dir=str(run_dir.parent), device=device)
    if (run_dir / RESULTS_FILE).exists():
        steps_done = RunResult.read(run_dir).steps
    else:
        seed_everything(seed, "model")
        model = MaskedLM(model_config)
        trainer = Trainer(model, MLMObjective(), mlm_data, train=train_cfg, optim=optim_cfg, run=run,
                          config=config, run_dir=run_dir)
        steps_done = trainer.fit(resume=True).steps
    final = CheckpointManager(run_dir / "checkpoints").path_for(steps_done)
    if steps_done != p.steps or not final.is_file():
        raise ValueError(f"the self-pretraining in {str(run_dir)!r} ended at step {steps_done} "
                         f"of {p.steps} without the checkpoint {str(final)!r}; delete "
                         f"{str(run_dir)!r} to pretrain again")
    summary = {"steps": p.steps, "mask_prob": p.mask_prob, "mask_id": mask_id_of(data),
               "lr": optim_cfg.lr, "batch_size": train_cfg.batch_size,
               "warmup_steps": optim_cfg.warmup_steps, **_losses(run_dir)}
    return SelfPretrainResult(checkpoint=final, summary=summary)


def _losses(run_dir: Path) -> dict[str, float | None]:
    """The MLM losses of the finished pretraining in ``run_dir``, from its ``metrics.jsonl``."""
    from sparsegraph.experiments.train.metrics import read_metrics

    records = read_metrics(run_dir / "metrics.jsonl")
    val = [r for r in records if r.get("split") == "val" and isinstance(r.get("loss"), (int, float))]
    train = [r for r in records if r.get("split") == "train" and isinstance(r.get("loss"), (int, float))]
    if not val:
        raise ValueError(f"{run_dir / 'metrics.jsonl'} holds no validation MLM loss")
    return {"val_mlm_loss_start": float(val[0]["loss"]) if val[0]["step"] == 0 else None,
            "val_mlm_loss_final": float(val[-1]["loss"]),
            "train_mlm_loss_final": float(train[-1]["loss"]) if train else None}


def load_pretrained_encoder(model: Any, checkpoint: str | Path) -> list[str]:
    """Copy the encoder of a self-pretraining checkpoint into ``model.encoder`` (every tensor,
    same shapes: a missing or mis-shaped one is a ``ValueError``); returns the names loaded."""
    from sparsegraph.experiments.train import load_model_weights

    return load_model_weights(model, checkpoint, prefix="encoder.", target_prefix="encoder.")
