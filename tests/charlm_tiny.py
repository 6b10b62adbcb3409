"""A tiny staged charlm run for the resume test, also runnable as a script (killed in a subprocess).

    python tests/charlm_tiny.py RUN_DIR [--kill-at STEP] [--resume] [--out weights.pt]

The run: a 2-layer, 32-wide DecoderLM with a sink window on 30 KB of stdlib prose, two phases of
6 updates (Longformer's doubling: sequence 32 -> 64, window 8 -> 16, learning rate halved),
dropout on, checkpoints every 2 updates. ``--kill-at S`` SIGKILLs the process right after the
checkpoint of update S is on disk.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparsegraph.experiments.text.charlm_train import build_run, resolve_charlm_config  # noqa: E402
from sparsegraph.experiments.train import Callback, Trainer  # noqa: E402

RAW = {
    "run": {"name": "tiny", "seed": 3},
    "data": {"task": "charlm", "corpus": "stdlib", "max_bytes": 30_000, "seq_len": 64, "eval_windows": 6},
    "model": {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64, "dropout": 0.1,
              "attention": {"pattern": "sink_window:window=8,sinks=2", "block_size": 16}},
    "optim": {"lr": 3e-3, "warmup_steps": 2, "schedule": "cosine"},
    "train": {"steps": 12, "batch_size": 4, "eval_every": 5, "checkpoint_every": 2, "metric": "bpc", "mode": "min",
              "log_every": 1, "progress": "off", "plots": False, "test_split": "test"},
    "stages": {"preset": "doubling", "phases": 2, "steps": [6], "params": {"window": 8}},
}


class Kill(Callback):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_checkpoint(self, trainer, step, path) -> None:
        if step == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


def make_trainer(run_dir: Path, kill_at: int = 0) -> Trainer:
    torch.set_num_threads(1)
    cfg = resolve_charlm_config(RAW)
    data, model, objective, phases = build_run(cfg)
    return Trainer(model, objective, data, train=cfg.train, optim=cfg.optim, run=cfg.run, config=cfg,
                   run_dir=run_dir, phases=phases, callbacks=[Kill(kill_at)] if kill_at else [])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--kill-at", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    trainer = make_trainer(Path(args.run_dir), args.kill_at)
    trainer.fit(resume=args.resume)
    if args.out:
        torch.save(trainer.model.state_dict(), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
