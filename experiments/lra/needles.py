"""Two needles: a generated diagnostic task whose answer is a relation between two tokens at
known, random, far-apart positions.

Not one of LRA's tasks, but loaded the same way (``load_task("needles", ...)``). Each example is
``length`` tokens:

- filler tokens drawn uniformly from ``fillers`` ids;
- needle ``A`` carrying a value ``a`` (token ``A_a``) and needle ``B`` carrying ``b`` (token
  ``B_b``), ``a`` and ``b`` independent and uniform in ``0 .. values-1``, at two random positions
  at least ``min_distance`` apart, both at or after position ``min_offset``;
- the label is the sum ``a + b``, one of ``2 values - 1`` classes.

Neither needle alone decides the label: knowing ``a`` leaves ``a + b`` uniform over ``values``
sums, so the best guess from one needle is right ``1/values`` of the time, the same as the
majority class (the middle sum, ``values - 1``). A model must bring both needles to one
position: the two positions are stored per example as ``Split.needed`` ``[N, 2]``, and
:mod:`sparsegraph.analysis.routing` says before training whether a stack of layer graphs can
route them to the readout (the CLS token in front, the ETC global tokens). A model that cannot is
at ``1/values`` on that example; one that can needs only to find the needles (their ids differ
from the fillers') and add them.

Why a sum and not equality (``a == b``): with equality each needle alone carries no information
about the label, so at initialisation, when attention is spread evenly over the sequence, the
gradient gives no first-order reason to attend to either needle. With the sum, one needle
already narrows the label's distribution (the loss can fall) while the accuracy does not rise
until both arrive. Both plateaued at 1,024 tokens without the short examples below (equality
measured for 200 steps, the sum for 200-300); only the sum was carried further.

Difficulty is the distance the information must travel: ``min_offset`` from the readout in
front and ``min_distance`` between the needles.

Easy examples in training (``short_fraction``, ``short_length``): a fraction of the *training*
examples hold their needles and fillers in the first ``short_length`` tokens only, the rest being
padding (masked as keys, so it relays nothing). At initialisation attention is
spread evenly over the real tokens, so a needle's share of it is ``1/length``, and so is the
gradient that would teach the model to look for it: at 1,024 filler tokens training sits at the
prior for hundreds of steps, at 128 it does not. The short examples teach the model to find the
needles; the full-length ones, to find them anywhere. The tensors keep their length, so the model
trains on the same graph it is evaluated on, and the validation and test splits are always full
length (their ``needed`` positions are what the routing prediction is computed on).

The harder relation-binding task is associative recall (:mod:`.recall`).

Token ids: 0 padding (never used inside an example), ``1 .. values`` needle A,
``values+1 .. 2 values`` needle B, then the fillers. Every example is a function of
(seed, split, index) only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .example_splits import stack_examples

__all__ = ["NeedlesConfig", "generate_example", "generate_split", "SPLIT_IDS"]

#: The split's number in the example seed ``(seed, split id, index)``: splits never share an
#: example stream.
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
_TASK_ID = 7  # keeps these streams apart from other generators' (seed, split, index) streams


@dataclass(frozen=True)
class NeedlesConfig:
    """The task's parameters (see the module docstring).

    ``fillers`` defaults to 1, the value both presets use: with 16 random filler ids the fillers'
    random mixture in the evenly spread attention of a fresh model drowned the needles, and full
    attention stayed at the prior for 200 steps at 1,024 tokens even with short examples
    (docs/lra_tasks.md, "Two needles").
    """

    length: int = 1024
    values: int = 4
    fillers: int = 1
    min_distance: int = 0
    min_offset: int = 0
    short_fraction: float = 0.0
    short_length: int = 128

    def __post_init__(self) -> None:
        f = self.short_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f <= 1.0:
            raise ValueError(f"needles.short_fraction must be a number in [0, 1], got {f!r}")
        if f > 0 and (isinstance(self.short_length, bool) or not isinstance(self.short_length, int)
                      or not 2 <= self.short_length <= self.length):
            raise ValueError(f"needles.short_length must be an int in [2, length={self.length}], "
                             f"got {self.short_length!r}")
        for name, low in (("length", 2), ("values", 2), ("fillers", 1), ("min_distance", 0),
                          ("min_offset", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"needles.{name} must be an int >= {low}, got {v!r}")
        room = self.length - self.min_offset  # positions a needle may take
        if room < 2 or max(self.min_distance, 1) > room - 1:
            raise ValueError(
                f"needles.min_distance={self.min_distance} with min_offset={self.min_offset} does "
                f"not fit in length {self.length}: two needles need positions in "
                f"[{self.min_offset}, {self.length}) at least {max(self.min_distance, 1)} apart")

    @property
    def num_classes(self) -> int:
        """The sums ``0 .. 2 values - 2``."""
        return 2 * self.values - 1

    @property
    def vocab_size(self) -> int:
        return 1 + 2 * self.values + self.fillers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _positions(cfg: NeedlesConfig, rng: np.random.Generator) -> tuple[int, int]:
    """Two positions in ``[min_offset, length)`` at least ``max(min_distance, 1)`` apart, uniform
    over all such ordered pairs (rejection sampling; when the constraint leaves few pairs the
    first needle is drawn from the positions that have a partner, then the second among those)."""
    lo, hi, d = cfg.min_offset, cfg.length, max(cfg.min_distance, 1)
    for _ in range(64):
        p, q = (int(x) for x in rng.integers(lo, hi, 2))
        if abs(p - q) >= d:
            return p, q
    # exact fallback: enumerate the partners of a first needle drawn with the right weights
    first = np.arange(lo, hi)
    partners = np.maximum(first - d - lo + 1, 0) + np.maximum(hi - (first + d), 0)
    p = int(rng.choice(first, p=partners / partners.sum()))
    cand = np.concatenate([np.arange(lo, p - d + 1), np.arange(p + d, hi)])
    return p, int(rng.choice(cand))


def generate_example(cfg: NeedlesConfig, seed: int, split: str, index: int
                     ) -> tuple[np.ndarray, int, np.ndarray]:
    """``(tokens [length] uint8/uint16, label, needed [2])`` of one example (an easy, short one
    with probability ``short_fraction`` in the train split: padded with 0 after
    ``short_length`` tokens)."""
    if split not in SPLIT_IDS:
        raise ValueError(f"split={split!r}: expected one of {tuple(SPLIT_IDS)}")
    rng = np.random.default_rng([_TASK_ID, int(seed), SPLIT_IDS[split], int(index)])
    a_id, b_id, fill0 = 1, 1 + cfg.values, 1 + 2 * cfg.values
    tokens = rng.integers(fill0, fill0 + cfg.fillers, cfg.length)
    # drawn for every training example whatever short_fraction is, so that it shifts no other draw
    short = split == "train" and rng.random() < cfg.short_fraction
    if short:
        # an easy example: everything in the first short_length tokens, then padding (id 0);
        # min_offset and min_distance are kept where they fit
        offset = min(cfg.min_offset, cfg.short_length - 2)
        distance = min(cfg.min_distance, cfg.short_length - offset - 1)
        within = NeedlesConfig(length=cfg.short_length, values=cfg.values, fillers=cfg.fillers,
                               min_distance=distance, min_offset=offset)
        p, q = _positions(within, rng)
        tokens[cfg.short_length:] = 0
    else:
        p, q = _positions(cfg, rng)
    a, b = (int(x) for x in rng.integers(0, cfg.values, 2))
    tokens[p] = a_id + a
    tokens[q] = b_id + b
    dtype = np.uint8 if cfg.vocab_size <= 256 else np.uint16
    return tokens.astype(dtype), a + b, np.array([p, q], dtype=np.int64)


def generate_split(cfg: NeedlesConfig, seed: int, split: str, n: int) -> dict[str, np.ndarray]:
    """``n`` examples of ``split`` as the arrays of a ``Split`` (``needed`` included)."""
    return stack_examples(generate_example, cfg, seed, split, n, needed=2)
