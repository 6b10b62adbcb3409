"""A tiny model, task and data source for the trainer tests, also runnable as a script.

The toy task: sequences of ``length`` tokens from ``vocab`` symbols; the label says whether token 1
occurs more often than token 2 (ties: label 0). A one-layer model with dropout learns it quickly.

As a script (used by the kill-and-resume and DDP tests in subprocesses)::

    python tests/train_tiny.py RUN_DIR --steps 12 [--resume] [--kill-after 5] [--out weights.pt]
        [--grads PREFIX] [--dropout 0.0] [--check-mismatch FILE] [--set train.grad_accum=2 ...]

Under ``torchrun --nproc_per_node=N`` it trains data-parallel (the DDP test).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsegraph.experiments.infra import config as cfgmod  # noqa: E402
from sparsegraph.experiments.train.config import OptimConfig, RunConfig, TrainConfig  # noqa: E402
from sparsegraph.experiments.train import Callback, Trainer  # noqa: E402
from sparsegraph.experiments.train.rng import seed_everything  # noqa: E402


class TinyClassifier(nn.Module):
    def __init__(self, vocab: int = 12, dim: int = 16, classes: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.norm = nn.LayerNorm(dim)
        self.hidden = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(dim, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.embed(tokens))
        h = self.drop(torch.relu(self.hidden(h)))
        return self.out(h.mean(dim=1))


class ClassifyTask:
    def loss_and_metrics(self, model: nn.Module, batch: dict[str, torch.Tensor]):
        logits = model(batch["tokens"])
        loss = nn.functional.cross_entropy(logits.float(), batch["label"])
        acc = (logits.argmax(-1) == batch["label"]).float().mean()
        return loss, {"accuracy": acc}

    def num_tokens(self, batch: dict[str, torch.Tensor]) -> int:
        return batch["tokens"].numel()


class ToyData:
    """Deterministic toy splits; the train order is a permutation drawn from (seed, epoch)."""

    def __init__(self, n_train: int = 96, n_eval: int = 40, length: int = 16, vocab: int = 12, data_seed: int = 123) -> None:
        rng = np.random.default_rng(data_seed)
        self.splits = {}
        for name, n in (("train", n_train), ("val", n_eval), ("test", n_eval)):
            x = rng.integers(0, vocab, size=(n, length))
            y = ((x == 1).sum(1) > (x == 2).sum(1)).astype(np.int64)
            self.splits[name] = (torch.from_numpy(x), torch.from_numpy(y))

    def batches(self, split: str, batch_size: int, *, seed: int, epoch: int = 0, start_step: int = 0) -> Iterator[dict[str, Any]]:
        x, y = self.splits[split]
        n = len(y)
        order = np.random.default_rng([seed, epoch]).permutation(n) if split == "train" else np.arange(n)
        for b in range(start_step, (n + batch_size - 1) // batch_size):
            idx = torch.from_numpy(order[b * batch_size:(b + 1) * batch_size])
            yield {"tokens": x[idx], "label": y[idx]}


@dataclass
class TinyConfig:
    run: RunConfig = field(default_factory=lambda: RunConfig(name="tiny", device="cpu"))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=3e-3, warmup_steps=2))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=12, batch_size=8, eval_every=4, log_every=2, keep_last=2, progress="off"))


def make_trainer(run_dir: str | os.PathLike[str], cfg: TinyConfig, callbacks=(), model_kwargs=None, data=None) -> Trainer:
    seed_everything(cfg.run.seed, "model")
    model = TinyClassifier(**(model_kwargs or {}))
    return Trainer(model, ClassifyTask(), data or ToyData(), train=cfg.train, optim=cfg.optim, run=cfg.run,
                   config=cfg, run_dir=run_dir, callbacks=callbacks)


class KillAfter(Callback):
    """SIGKILL this process right after the checkpoint of ``step`` is on disk."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_checkpoint(self, trainer: Trainer, step: int, path) -> None:
        if step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class SaveGrads(Callback):
    """Save each rank's gradients of update ``step`` to ``<prefix>.rank<r>.pt``."""

    def __init__(self, prefix: str, step: int = 1) -> None:
        self.prefix, self.step = prefix, step

    def on_before_optimizer_step(self, trainer: Trainer, step: int) -> None:
        if step == self.step:
            grads = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters()}
            torch.save(grads, f"{self.prefix}.rank{trainer.dist.rank}.pt")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--kill-after", type=int, default=0)
    ap.add_argument("--out", default="")
    ap.add_argument("--grads", default="")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--check-mismatch", default="",
                    help="first build a model whose init depends on the rank, expect the trainer to "
                         "refuse it, and write the error to this file")
    args = ap.parse_args(argv)
    # One thread: the same reduction order in every process (bit-exact comparisons), and no
    # oversubscription on a shared 2-core machine.
    torch.set_num_threads(1)
    cfg = cfgmod.from_dict(TinyConfig, cfgmod.apply_overrides(cfgmod.to_dict(TinyConfig()), args.overrides, TinyConfig))
    cbs: list[Callback] = []
    if args.kill_after:
        cbs.append(KillAfter(args.kill_after))
    if args.grads:
        cbs.append(SaveGrads(args.grads))
    if args.check_mismatch:
        from sparsegraph.experiments.train import distributed as D

        rank = int(os.environ.get("RANK", "0"))
        seed_everything(cfg.run.seed, "model", rank)  # wrong on purpose: a different model per rank
        bad = Trainer(TinyClassifier(dropout=args.dropout), ClassifyTask(), ToyData(), train=cfg.train,
                      optim=cfg.optim, run=cfg.run, run_dir=args.run_dir + "-mismatch")
        try:
            bad.fit()
        except RuntimeError as e:
            if rank == 0:
                Path(args.check_mismatch).write_text(str(e))
    trainer = make_trainer(args.run_dir, cfg, cbs, model_kwargs={"dropout": args.dropout})
    trainer.fit(resume=args.resume)
    if args.out and trainer.is_main:
        torch.save(trainer.model.state_dict(), args.out)
    from sparsegraph.experiments.train import distributed as D

    D.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())


class CharTokenizer:
    """A user tokenizer for the tokenizer-hook test: lowercase letters a..z -> 3..28, anything else
    -> 29; pad 0, mask 1, cls 2."""

    vocab_size = 30
    pad_id, mask_id, cls_id = 0, 1, 2

    def encode(self, text: str) -> list[int]:
        return [ord(c) - ord("a") + 3 if "a" <= c <= "z" else 29 for c in text]
