"""2-D rotary positions on the image tasks: the image width is a fact of the data
(``TaskData.image_width``), and every way of building a model (``sparsegraph compare``'s worker,
``sparsegraph train``, a recipe) takes ``ModelConfig.grid_width`` from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from sparsegraph.experiments.commands import train as train_cmd
from sparsegraph.experiments.lra import load_task
from sparsegraph.experiments.lra.recipes import get_recipe
from sparsegraph.experiments.models import SequenceClassifier

PATHFINDER = dict(n_train=8, n_val=2, n_test=2, contour_length=6, num_distractor_snakes=0)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("fresh", [False, True])
def test_pathfinder_knows_its_image_width(cache: Path, fresh: bool) -> None:
    extra = dict(fresh=True, fresh_workers=0) if fresh else {}
    data = load_task("pathfinder", cache_dir=cache, progress=False, **PATHFINDER, **extra)
    assert data.image_width == 32 and data.image_width ** 2 == data.seq_len
    assert data.grid_width("rotary_2d") == 32
    assert data.grid_width("rotary") == 0 and data.grid_width("learned") == 0


def test_a_sequence_task_refuses_2d_positions(cache: Path) -> None:
    data = load_task("listops", cache_dir=cache, progress=False, n_train=4, n_val=2, n_test=2,
                     min_length=10, max_length=40)
    assert data.image_width is None and data.grid_width("rotary") == 0
    with pytest.raises(ValueError, match=r"position='rotary_2d' .* 'listops' is a sequence; "
                                         r"use position='rotary'"):
        data.grid_width("rotary_2d")


def test_recipe_and_train_command_build_the_grid_model(cache: Path) -> None:
    data = load_task("pathfinder", cache_dir=cache, progress=False, **PATHFINDER)
    base = get_recipe("pathfinder", "cpu")
    recipe = dataclasses.replace(base, model=dataclasses.replace(base.model, position="rotary_2d"))
    cfg = recipe.model_config(vocab_size=data.vocab_size, pad_id=data.pad_id, pattern="full",
                              max_len=data.seq_len,
                              grid_width=data.grid_width(recipe.model.position))
    assert cfg.position == "rotary_2d" and cfg.grid_width == 32
    # sparsegraph train: the [model] table says rotary_2d, the data gives the width
    raw = {"data": {"task": "pathfinder", "preset": "cpu", "params": PATHFINDER},
           "model": {"position": "rotary_2d"}}
    _, model_raw = train_cmd.parse_config(raw, [])
    model_cfg = train_cmd.resolve_model(model_raw, data, None)
    assert model_cfg.position == "rotary_2d" and model_cfg.grid_width == 32
    batch = next(data.batches("val", 2, shuffle=False))
    logits = SequenceClassifier(model_cfg, data.num_classes)(batch["tokens"])
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()
    # the 1-D default needs no width, and a width given with it is an error naming the field
    _, plain = train_cmd.parse_config({**raw, "model": {"position": "rotary"}}, [])
    assert train_cmd.resolve_model(plain, data, None).grid_width == 0
    with pytest.raises(ValueError, match=r"grid_width must be 0: only position='rotary_2d'"):
        train_cmd.resolve_model({**plain, "grid_width": 32}, data, None)
