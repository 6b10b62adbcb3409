"""The ``[data]`` section of ``sparsegraph pretrain``: :class:`MLMDataConfig`.

Its own module, free of torch, so that the command line can build its parser without loading
torch; :mod:`sparsegraph.experiments.text.mlm` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MLMDataConfig"]


@dataclass
class MLMDataConfig:
    """The ``[data]`` section of ``sparsegraph pretrain``.

    ``paths``: text files or directories (searched recursively for ``extensions``); ``demo`` uses
    the Python standard library's own source files instead. ``max_bytes`` (0 = no limit) caps the
    text read, files taken in sorted order. ``max_length`` is the length of every sequence.
    ``val_fraction`` of the sequences (at least one) form the validation split, drawn with
    ``split_seed``. ``tokenizer``: ``bytes`` or ``module:callable`` (see :func:`load_tokenizer`).
    """

    paths: tuple[str, ...] = ()
    demo: bool = False
    extensions: tuple[str, ...] = (".txt", ".md", ".rst", ".py")
    max_bytes: int = 0
    max_length: int = 128
    val_fraction: float = 0.05
    split_seed: int = 0
    mask_prob: float = 0.15
    tokenizer: str = "bytes"

    def __post_init__(self) -> None:
        if self.max_bytes < 0:
            raise ValueError(f"data.max_bytes must be >= 0 (0 = no limit), got {self.max_bytes}")
        if self.max_length < 1:
            raise ValueError(f"data.max_length must be >= 1, got {self.max_length}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        if not 0.0 < self.mask_prob <= 1.0:
            raise ValueError(f"data.mask_prob must be in (0, 1], got {self.mask_prob}")
        if self.split_seed < 0:
            raise ValueError(f"data.split_seed must be >= 0, got {self.split_seed}")
        for e in self.extensions:
            if not e.startswith("."):
                raise ValueError(f"data.extensions entries must start with '.', got {e!r}")
