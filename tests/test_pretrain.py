"""``sparsegraph pretrain``: the demo's MLM loss falls; config mistakes exit 2 with one line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from sparsegraph.experiments.cli import main
from sparsegraph.experiments.train.metrics import read_metrics

TINY = ["--set", "model.d_model=32", "--set", "model.n_heads=2", "--set", "model.d_ff=64",
        "--set", "data.max_length=64", "--set", "data.max_bytes=300000", "--set", "train.batch_size=16",
        "--set", "train.eval_every=10", "--set", "train.eval_batches=4", "--set", "train.progress=off",
        "--set", "optim.warmup_steps=5"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_demo_loss_falls(tmp_path: Path, capsys) -> None:
    """A short demo run on the stdlib's source: the validation MLM loss falls well below the
    uniform-guess loss ln(259), and the command prints the table and the best checkpoint."""
    rc = main(["pretrain", "--demo", "--name", "demo", "--set", f"run.out_dir={tmp_path}",
               "--set", "train.steps=30", *TINY])
    assert rc == 0
    out = capsys.readouterr().out
    assert "MLM loss fell" in out and "best.pt" in out
    evals = [r for r in read_metrics(tmp_path / "demo" / "metrics.jsonl") if r["split"] == "val"]
    losses = [r["loss"] for r in evals]
    assert [r["step"] for r in evals] == [0, 10, 20, 30]  # the demo also evaluates the untrained model
    assert abs(losses[0] - math.log(259)) < 0.2  # untrained: about a uniform guess
    assert losses[-1] < losses[1] < losses[0] - 0.3 and losses[-1] < math.log(259) - 1.5
    assert (tmp_path / "demo" / "checkpoints" / "best.pt").exists()
    saved = (tmp_path / "demo" / "config.toml").read_text()
    assert "demo = true" in saved and "vocab_size = 259" in saved and 'metric = "loss"' in saved


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--config", "{tmp}/missing.toml"], "config file '{tmp}/missing.toml' does not exist"),
        (["--demo", "--set", "train.stpes=3"], "unknown config key 'train.stpes' in override 'train.stpes=3' (did you mean 'train.steps'?)"),
        (["--demo", "--set", "model.d_modle=3"], "unknown config key 'model.d_modle' (did you mean 'model.d_model'?)"),
        (["--demo", "--set", "train.steps=ten"], "config key 'train.steps': expected int, got 'ten'"),
        (["--text", "{tmp}/nope.txt"], "text path '{tmp}/nope.txt' does not exist"),
        ([], "no text to pretrain on: pass --text PATH [PATH ...], --demo, or set data.paths"),
        (["--demo", "--set", "model.vocab_size=300"], "model.vocab_size = 300 but the tokenizer has vocab_size = 259"),
    ],
)
def test_config_errors_exit_2_with_one_line(tmp_path: Path, capsys, argv, message) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc = main(["pretrain", "--set", f"run.out_dir={tmp_path}", *argv])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("sparsegraph pretrain: error: ")
    assert message.replace("{tmp}", str(tmp_path)) in err


def test_bad_toml_file_exits_2(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[train]\nsteps = \n")
    assert main(["pretrain", "--demo", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "c.toml: not valid TOML" in err
