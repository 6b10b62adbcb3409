"""Pictures of LRA data: the inputs of the image tasks drawn as the images they are.

>>> from sparsegraph.experiments.lra import load_task
>>> from sparsegraph.experiments.lra.figures import example_grid
>>> task = load_task("pathfinder", difficulty="easy", n_train=100, n_val=10, n_test=10)  # doctest: +SKIP
>>> example_grid(task["train"], 12).savefig("pathfinder.png")                              # doctest: +SKIP

matplotlib is imported on first use, like every plot in the project.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from sparsegraph.experiments.lra.datasets import Split

__all__ = ["example_grid"]


def example_grid(split: Split, n: int = 12, *, columns: int = 6, start: int = 0,
                 class_names: Sequence[str] | None = None, title: str | None = None) -> Any:
    """A figure of examples ``start .. start + n - 1`` of an image task's ``split`` (Pathfinder,
    Path-X, CIFAR-10 greyscale, Fashion-MNIST), each titled with its index and label.

    The tokens of an image task are its pixels, row-major, so a sequence of ``L = side**2``
    tokens is drawn as a ``side x side`` greyscale image (0 black .. 255 white).

    Raises ``ValueError`` for a pair task (Retrieval), sequences that are not square images (or
    have padding), a bad ``n``/``columns``/``start``, or ``class_names`` shorter than a label.
    """
    import matplotlib.pyplot as plt

    if not isinstance(split, Split):
        raise TypeError(f"split must be an experiments.lra Split, got {type(split).__name__}")
    if split.is_pair:
        raise ValueError("split is a pair task (two documents per example), not images")
    for name, v, lo in (("n", n, 1), ("columns", columns, 1), ("start", start, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    if start + n > len(split):
        raise ValueError(f"start + n = {start + n} exceeds the split's {len(split)} examples")
    length = split.tokens.shape[1]
    side = math.isqrt(length)
    if side * side != length:
        raise ValueError(f"sequences of {length} tokens are not square images; an image task has "
                         f"side**2 tokens (Pathfinder 1024, Fashion-MNIST 784)")
    if np.any(split.lengths[start:start + n] != length):
        raise ValueError("padded sequences are not images: the split has sequences shorter than "
                         f"{length} tokens")
    labels = split.labels[start:start + n]
    if class_names is not None and len(class_names) <= int(labels.max()):
        raise ValueError(f"class_names has {len(class_names)} names but a label is {int(labels.max())}")
    columns = min(columns, n)
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.75 * rows + (0.3 if title else 0)),
                             squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        i = start + k
        ax.imshow(split.tokens[i].reshape(side, side), cmap="gray", vmin=0, vmax=255,
                  interpolation="nearest")
        label = int(split.labels[i])
        ax.set_title(f"#{i}: {class_names[label] if class_names else label}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
