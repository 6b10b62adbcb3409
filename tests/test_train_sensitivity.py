"""The trainer's input-sensitivity check: the two numbers, the stop, and that measuring changes
nothing about the run that follows."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
import torch
from torch import nn

from sparsegraph.experiments.train import Trainer
from sparsegraph.experiments.train.config import TrainConfig
from sparsegraph.experiments.train.sensitivity import (InputIgnoredError, InputSensitivity,
                                                       measure_input_sensitivity)

import sys  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_tiny as tiny  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


class LogitsTask(tiny.ClassifyTask):
    """The tiny task with the ``logits`` method the output-spread measurement reads."""

    def logits(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(batch["tokens"])


class IgnoresInput(tiny.TinyClassifier):
    """Embeds its input and then drops it: the output is the same for every example."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.embed(tokens)) * 0.0
        return self.out(torch.relu(self.hidden(h)).mean(dim=1))


def _batch() -> dict[str, torch.Tensor]:
    return next(tiny.ToyData().batches("train", 16, seed=0))


def test_a_model_that_reads_its_input_has_spread_and_embedding_gradient() -> None:
    tiny.seed_everything(0)
    model = tiny.TinyClassifier(dropout=0.5)
    found = measure_input_sensitivity(model, LogitsTask(), _batch())
    assert found.output_spread is not None and found.output_spread > 1e-3
    assert found.embedding_grad is not None and found.embedding_grad > 1e-3
    assert not found.ignores_input(1e-6)
    # measuring leaves no gradient behind and restores the training mode
    assert all(p.grad is None for p in model.parameters())
    assert model.training


def test_a_model_that_ignores_its_input_measures_zero() -> None:
    tiny.seed_everything(0)
    found = measure_input_sensitivity(IgnoresInput(), LogitsTask(), _batch())
    assert found.output_spread == 0.0
    assert found.embedding_grad == 0.0
    assert found.ignores_input(1e-6) and not found.ignores_input(0.0)
    assert "0.00e+00" in found.describe()


def test_without_logits_or_embeddings_the_numbers_are_not_available() -> None:
    class NoEmbedding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(16, 2)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return self.lin(tokens.float())

    found = measure_input_sensitivity(NoEmbedding(), tiny.ClassifyTask(), _batch())
    assert found == InputSensitivity(None, None)
    assert not found.ignores_input(0.5)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        measure_input_sensitivity("model", tiny.ClassifyTask(), _batch())  # type: ignore[arg-type]


def test_the_trainer_stops_a_model_that_ignores_its_input_in_one_line(tmp_path: Path) -> None:
    c = tiny.TinyConfig()
    tiny.seed_everything(0)
    t = Trainer(IgnoresInput(), LogitsTask(), tiny.ToyData(), train=c.train, optim=c.optim, run=c.run,
                run_dir=tmp_path, stream=io.StringIO())
    with pytest.raises(InputIgnoredError, match=r"below train.input_check=1e-06") as err:
        t.fit()
    assert "\n" not in str(err.value)
    assert t.step == 0  # stopped before the first update
    # input_check=0 measures but trains anyway
    train = dataclasses.replace(c.train, input_check=0.0)
    tiny.seed_everything(0)
    out = io.StringIO()
    t = Trainer(IgnoresInput(), LogitsTask(), tiny.ToyData(), train=train, optim=c.optim, run=c.run,
                run_dir=tmp_path / "anyway", stream=out)
    t.fit()
    assert t.step == c.train.steps
    assert "input sensitivity at step 0" in out.getvalue()


def test_measuring_does_not_change_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dropout on: a run with the check and one without it end with identical weights."""
    c = tiny.TinyConfig()

    def train(run_dir: Path) -> dict[str, torch.Tensor]:
        tiny.seed_everything(0)
        t = Trainer(tiny.TinyClassifier(dropout=0.3), LogitsTask(), tiny.ToyData(), train=c.train,
                    optim=c.optim, run=c.run, run_dir=run_dir, stream=io.StringIO())
        t.fit()
        return {k: v.clone() for k, v in t.model.state_dict().items()}

    checked = train(tmp_path / "checked")
    monkeypatch.setattr(Trainer, "_check_input", lambda self: None)
    unchecked = train(tmp_path / "unchecked")
    assert checked.keys() == unchecked.keys()
    for k in checked:
        assert torch.equal(checked[k], unchecked[k]), k


@pytest.mark.parametrize("bad", [-1e-3, 1.0, True, "x"])
def test_input_check_values_are_checked(bad: object) -> None:
    with pytest.raises(ValueError, match="train.input_check must be a number in"):
        TrainConfig(input_check=bad)  # type: ignore[arg-type]
