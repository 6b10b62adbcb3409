"""sparsegraph.experiments.lra.figures: image-task examples drawn as images."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from sparsegraph.experiments.lra import Split, generate_example, pathfinder_config
from sparsegraph.experiments.lra.figures import example_grid


def _split(n: int, length: int, labels=None, lengths=None) -> Split:
    rng = np.random.default_rng(0)
    return Split(tokens=rng.integers(0, 256, (n, length), dtype=np.uint8),
                 labels=np.asarray(labels if labels is not None else np.arange(n) % 2, np.int64),
                 lengths=np.asarray(lengths if lengths is not None else [length] * n, np.int64))


def test_pathfinder_examples_are_drawn_as_their_images() -> None:
    cfg = pathfinder_config(32, 6)
    imgs, labels = zip(*(generate_example(cfg, seed=0, index=i)[:2] for i in range(5)))
    split = Split(tokens=np.stack([np.asarray(im).reshape(-1) for im in imgs]).astype(np.uint8),
                  labels=np.asarray(labels, np.int64), lengths=np.full(5, 1024, np.int64))
    fig = example_grid(split, 5, columns=3, class_names=["apart", "connected"], title="easy")
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 5 and len(fig.axes) == 6  # 2 rows x 3, the last cell empty
    for i, ax in enumerate(drawn):
        assert np.array_equal(ax.images[0].get_array(), split.tokens[i].reshape(32, 32))
        assert ax.get_title() == f"#{i}: {['apart', 'connected'][labels[i]]}"


def test_example_grid_start_and_plain_labels() -> None:
    fig = example_grid(_split(10, 784, labels=[3] * 10), 4, start=6)
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["#6: 3", "#7: 3", "#8: 3", "#9: 3"]


@pytest.mark.parametrize("kwargs, match", [
    ({"n": 0}, "n must be"), ({"columns": 0}, "columns must be"), ({"start": 9}, "exceeds"),
    ({"class_names": ["a"]}, "class_names"),
])
def test_example_grid_bad_arguments(kwargs, match) -> None:
    args = {"n": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        example_grid(_split(10, 64), **args)


def test_example_grid_rejects_non_images() -> None:
    with pytest.raises(ValueError, match="not square"):
        example_grid(_split(4, 60), 2)
    with pytest.raises(ValueError, match="padded"):
        example_grid(_split(4, 64, lengths=[64, 50, 64, 64]), 2)
    pair = _split(4, 64)
    pair.tokens2, pair.lengths2 = pair.tokens, pair.lengths
    with pytest.raises(ValueError, match="pair task"):
        example_grid(pair, 2)
    with pytest.raises(TypeError, match="Split"):
        example_grid(np.zeros((4, 64)), 2)

