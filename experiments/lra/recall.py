"""Associative recall: a generated diagnostic task whose answer sits at known, far-apart positions.

Not one of LRA's tasks, but loaded the same way (``load_task("recall", ...)``); it is the
classification form of multi-query associative recall (MQAR: Arora et al. 2023, "Zoology"). Each
example is ``length`` tokens:

- filler tokens drawn uniformly from ``fillers`` ids;
- ``pairs`` key-value pairs, each a key token immediately followed by a value token, at random
  non-overlapping places; the keys of one example are distinct, and so are its values;
- first, the ``QUERY`` marker and one of the example's keys (positions 0 and 1), next to where a
  CLS token reads: the distance the information must travel is from the queried pair to the front.

The label is the value (``0 .. values-1``) paired with the queried key. Local detection cannot
answer it (the value is far from the query) and neither can pooling local features (the answer
depends on which value is bound to which key, and on the query). With ``pairs == values`` (the
default) every value occurs exactly once in every example, so not even which values occur says
anything about the answer: a model that cannot bring the query to its pair is at chance,
``1 / values``. What the model must bring
together are the positions of the queried key, its value and the query key, stored per example as
``Split.needed`` ``[N, 3]`` (query key, pair key, pair value), so that ``sparsegraph.analysis.routing`` can say, before training,
whether a stack of layer graphs can route them to the readout. The queried pair's key lies at
least ``min_distance`` tokens after the query key: the distance the information must travel;
``pairs`` sets how much the model must tell apart.

Token ids: 0 padding (never used inside an example), 1 ``QUERY``, then the keys, the values and
the fillers. Every example is a function of (seed, split, index) only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .example_splits import stack_examples

__all__ = ["RecallConfig", "QUERY", "generate_example", "generate_split", "SPLIT_IDS"]

QUERY = 1
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


@dataclass(frozen=True)
class RecallConfig:
    """The task's parameters (see the module docstring)."""

    length: int = 1024
    pairs: int = 8
    keys: int = 16
    values: int = 8
    fillers: int = 16
    min_distance: int = 0

    def __post_init__(self) -> None:
        for name, low in (("length", 4), ("pairs", 1), ("keys", 1), ("values", 2), ("fillers", 1),
                          ("min_distance", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"recall.{name} must be an int >= {low}, got {v!r}")
        for name in ("keys", "values"):
            if self.pairs > getattr(self, name):
                raise ValueError(f"recall.pairs ({self.pairs}) must be <= recall.{name} "
                                 f"({getattr(self, name)}): the {name} of one example are distinct")
        slots = (self.length - 2) // 2
        if self.pairs > slots:
            raise ValueError(f"recall.pairs ({self.pairs}) does not fit in length {self.length} "
                             f"({slots} two-token slots after the query)")
        if self.min_distance > 2 * slots - 1:
            raise ValueError(f"recall.min_distance ({self.min_distance}) must be <= "
                             f"{2 * slots - 1}, the farthest key from the query in length {self.length}")

    @property
    def vocab_size(self) -> int:
        return 2 + self.keys + self.values + self.fillers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def generate_example(cfg: RecallConfig, seed: int, split: str, index: int
                     ) -> tuple[np.ndarray, int, np.ndarray]:
    """``(tokens [length] uint8/uint16, label, needed [3])`` of one example."""
    if split not in SPLIT_IDS:
        raise ValueError(f"split={split!r}: expected one of {tuple(SPLIT_IDS)}")
    rng = np.random.default_rng([int(seed), SPLIT_IDS[split], int(index)])
    L = cfg.length
    key0, val0, fill0 = 2, 2 + cfg.keys, 2 + cfg.keys + cfg.values
    tokens = rng.integers(fill0, fill0 + cfg.fillers, L)
    # The query first (positions 0, 1), then the pairs in two-token slots at even offsets 2, 4, ...
    slots = (L - 2) // 2
    # the queried pair's slot: its key at least min_distance after the query key
    first_ok = -(-max(0, cfg.min_distance - 1) // 2)  # slot s has its key at 2 + 2s
    queried = int(rng.integers(min(first_ok, slots - 1), slots))
    others = rng.choice(np.setdiff1d(np.arange(slots), [queried]), cfg.pairs - 1, replace=False)
    where = 2 + np.concatenate([[queried], others]) * 2
    keys = rng.choice(cfg.keys, cfg.pairs, replace=False)
    values = rng.choice(cfg.values, cfg.pairs, replace=False)
    tokens[where] = key0 + keys
    tokens[where + 1] = val0 + values
    tokens[0] = QUERY
    tokens[1] = key0 + keys[0]
    dtype = np.uint8 if cfg.vocab_size <= 256 else np.uint16
    needed = np.array([1, where[0], where[0] + 1], dtype=np.int64)
    return tokens.astype(dtype), int(values[0]), needed


def generate_split(cfg: RecallConfig, seed: int, split: str, n: int) -> dict[str, np.ndarray]:
    """``n`` examples of ``split`` as the arrays of a ``Split`` (``needed`` included)."""
    return stack_examples(generate_example, cfg, seed, split, n, needed=3)
