"""`sparsegraph generate` on a tiny staged charlm run."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from sparsegraph.experiments import cli
from sparsegraph.experiments.commands.generate import load_model
from sparsegraph.experiments.models.decoding import generate, generate_uncached

sys.path.insert(0, str(Path(__file__).resolve().parent))
import charlm_tiny  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    n = torch.get_num_threads()
    run = tmp_path_factory.mktemp("gen") / "run"
    charlm_tiny.make_trainer(run).fit()
    torch.set_num_threads(n)
    return run


def test_generate_prints_the_cached_greedy_continuation(run_dir: Path, capsys) -> None:
    assert cli.main(["generate", str(run_dir), "--greedy", "--max-new", "40", "--prompt", "The "]) == 0
    out, err = capsys.readouterr()
    model, cfg, path, step = load_model(run_dir)
    # the checkpoint was written in the last phase: its window is in force
    assert model.layer_specs() == ["sink_window:window=16,sinks=2"] * 2 and step == 12
    ids = torch.tensor([list(b"The ")])
    ref, _ = generate_uncached(model, ids, 40, greedy=True)
    text = bytes(ref[0].tolist()).decode("utf-8", errors="replace")
    assert out == text + ("" if text.endswith("\n") else "\n")
    assert out.startswith("The ") and len(ref[0]) == 44
    assert "window: 2 sink(s) + a ring of 16 keys" in err and "step 12" in err


def test_generate_samples_reproducibly(run_dir: Path, capsys) -> None:
    args = ["generate", str(run_dir), "--max-new", "30", "--temperature", "0.9", "--top-k", "8", "--prompt", "A"]
    outs = []
    for seed in ("1", "1", "2"):
        assert cli.main(args + ["--seed", seed]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] != outs[2]
    model, *_ = load_model(run_dir, "last")
    ids = generate(model, torch.tensor([[ord("A")]]), 30, temperature=0.9, top_k=8, seed=1)
    assert outs[0].rstrip("\n") == bytes(ids[0].tolist()).decode("utf-8", errors="replace").rstrip("\n")


def test_generate_errors(run_dir: Path, tmp_path: Path, capsys) -> None:
    assert cli.main(["generate", str(tmp_path)]) == 2
    assert "config.toml" in capsys.readouterr().err
    assert cli.main(["generate", str(run_dir), "--temperature", "0"]) == 2
    assert "--temperature must be > 0" in capsys.readouterr().err
    assert cli.main(["generate", str(run_dir), "--prompt", ""]) == 2
    assert "prompt is empty" in capsys.readouterr().err
