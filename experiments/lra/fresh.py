"""Training data drawn fresh every step from a generated task, with an optional difficulty curriculum.

``load_task(name, fresh=True)`` (ListOps, Pathfinder, Path-X, recall) keeps the fixed ``val`` and
``test`` splits but replaces the fixed ``train`` split by a :class:`FreshTrain`: an endless stream
whose batch at step ``s`` holds newly drawn examples, so a long run does not cycle over a fixed set.

The contract (what the tests check):

* **Identity.** Example ``i`` of step ``s`` is a pure function of ``(data seed, batch seed, s, i)``
  (the data seed is the task's ``seed``, the batch seed the ``seed`` passed to ``batches``, i.e. the
  trainer's ``run.seed``). The batch of step ``s`` with batch size ``B`` is examples ``0 .. B-1`` of
  step ``s``, so a batch of 8 is the first 8 rows of the batch of 16 at the same step: nothing
  depends on the batch size history, on how many processes share the batch (the trainer slices the
  global batch), on how many background workers generate it, or on their timing.
* **Resume.** ``batches(B, seed=, start_step=k)`` starts at step ``k``; the trainer's data position
  (epoch 0, ``position`` = updates done) is therefore all it needs to continue bit-identically.
  The stream is one endless epoch: ``epoch`` must be 0.
* **Disjoint from val/test.** The generator is called as ``example(config, stream_seed, i)`` with
  ``stream_seed = SeedSequence([FRESH_STREAM, data seed, batch seed, s, attempt])`` folded to 64
  bits, and the tasks' example functions draw a *train* stream from it (split id 0), while val/test
  examples come from the data seed's own val/test streams (split ids 1, 2, or for ListOps the
  dataset chunks): different random streams by construction. Because two streams can still draw the
  same small example, every fresh row is also checked against a set of 64-bit digests of the val
  and test rows; a row found there is drawn again (``attempt + 1``, still a pure function of the
  identity), so no val/test example is ever trained on. (A digest collision can only cause a
  needless redraw, never a missed one.)
* **Curriculum.** With a :class:`Curriculum`, the generator config of step ``s`` ramps from the
  curriculum's ``start`` values to the task's configured values (the val/test difficulty), reached
  at ``curriculum.steps`` and kept after it. Also a pure function of ``s``.

Cost: a Pathfinder-32 image takes 2-6 ms to draw (easy to hard), a ListOps tree about 1 ms, so
generating a batch in the training process adds about 8-11% to a CPU training step of the ``cpu``
presets (docs/results.md, "Fresh generated data: what it costs per step"), more on a GPU.
``workers`` background processes therefore generate the next ``prefetch`` batches each while the
model trains, at a lower scheduling priority (:data:`WORKER_NICENESS`: on a CPU with no core to
spare the trainer comes first); the consumer takes them in step order, so the batches are the same
for any number of workers (0: generate in the caller).
"""

from __future__ import annotations

import bisect
import collections
import concurrent.futures
import dataclasses
import functools
import hashlib
import itertools
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from .parallel import mp_context

__all__ = ["Curriculum", "CurriculumField", "FreshTrain", "ExampleFn", "RAMPS", "FRESH_STREAM",
           "split_generator", "stream_seed", "row_digest"]

#: First entropy word of every fresh stream seed (keeps them apart from any other use of a seed).
FRESH_STREAM = 0x46524553  # "FRES"
#: How a curriculum moves from its start values to the configured ones.
RAMPS = ("linear", "staged")
#: Redraws of one example whose row is a val/test row before giving up (the task's distribution
#: is then too small to hold out val/test).
_MAX_REDRAWS = 100

#: ``example(config, seed, index) -> (tokens [n] with n <= width, label, needed or None)``: one
#: example of the train stream of ``seed``; a pure function, defined at module level (background
#: workers receive it pickled).
ExampleFn = Callable[[Any, int, int], tuple[np.ndarray, int, Any]]


def _train_example(generate: Callable[[Any, int, str, int], tuple[np.ndarray, int, Any]],
                   config: Any, seed: int, index: int) -> tuple[np.ndarray, int, Any]:
    return generate(config, seed, "train", index)


def split_generator(generate: Callable[[Any, int, str, int], tuple[np.ndarray, int, Any]]
                    ) -> ExampleFn:
    """The :data:`ExampleFn` of a module whose ``generate_example(config, seed, split, index)``
    returns ``(tokens, label, needed)`` (recall, ListOps, and any task written the same way): it
    draws from the ``"train"`` split's stream of the given seed. ``generate`` must be a module-level
    function (it is pickled to the background workers)."""
    return functools.partial(_train_example, generate)


def stream_seed(data_seed: int, batch_seed: int, step: int, attempt: int = 0) -> int:
    """The 64-bit seed handed to the example function for every example of step ``step``."""
    words = np.random.SeedSequence([FRESH_STREAM, data_seed, batch_seed, step, attempt]
                                   ).generate_state(2, np.uint32)
    return (int(words[0]) << 32) | int(words[1])


def row_digest(row: np.ndarray) -> int:
    """64-bit digest of one token row (its dtype and bytes), for the val/test exclusion set."""
    data = np.ascontiguousarray(row)
    h = hashlib.blake2b(data.dtype.str.encode() + data.tobytes(), digest_size=8)
    return int.from_bytes(h.digest(), "little")


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r}: expected an int >= {minimum}")
    return int(value)


# --------------------------------------------------------------------------------------------
# Curriculum
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CurriculumField:
    """A generator config field that a curriculum may ramp (declared per task).

    Attributes:
        grid: the only values the field may take, ascending (Pathfinder's contour lengths 6, 9,
            14); a ramped value snaps to the nearest of them (ties towards the start value).
            ``None``: any int the task's config accepts.
        at_most_final: the start value may not exceed the configured one, because the configured
            value fixes the shape of the data (ListOps' ``max_length`` is the padded width).
    """

    grid: tuple[int, ...] | None = None
    at_most_final: bool = False


@dataclasses.dataclass(frozen=True)
class Curriculum:
    """Difficulty parameters ramped over training steps, from ``start`` to the configured values.

    Attributes:
        steps: the step (updates done) at which the configured difficulty is reached; it is kept
            after that. An int >= 1.
        start: the values at step 0, ``{config field: int}``; fields not named keep their
            configured value throughout.
        ramp: ``"linear"``: at step ``s`` a field is ``start + (final - start) * min(s, steps) /
            steps`` rounded half up (exact rational arithmetic); ``"staged"``: the same at the
            fraction ``k / (stages - 1)`` with ``k = floor(s * (stages - 1) / steps)``, i.e.
            ``stages`` levels, the first at step 0 and the last (the configured difficulty) from
            step ``steps`` on.
        stages: the number of levels of a staged ramp, start and final included (>= 2); must be
            0 (unused) for a linear ramp.
    """

    steps: int
    start: Mapping[str, int]
    ramp: str = "linear"
    stages: int = 0

    KEYS = ("steps", "start", "ramp", "stages")

    def __post_init__(self) -> None:
        _check_int("curriculum.steps", self.steps, 1)
        if self.ramp not in RAMPS:
            raise ValueError(f"curriculum.ramp={self.ramp!r}: expected one of {RAMPS}")
        if self.ramp == "staged":
            _check_int("curriculum.stages", self.stages, 2)
        elif self.stages != 0:
            raise ValueError(f"curriculum.stages={self.stages!r}: expected 0 (or no stages) for "
                             f"ramp='linear'; stages are for ramp='staged'")
        if not isinstance(self.start, Mapping) or not self.start:
            raise ValueError(f"curriculum.start={self.start!r}: expected a non-empty table of "
                             f"difficulty parameters, e.g. {{max_length = 100}}")
        for key, value in self.start.items():
            if not isinstance(key, str):
                raise ValueError(f"curriculum.start key {key!r}: expected a field name (str)")
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"curriculum.start.{key}={value!r}: expected an int")
        # a plain dict copy: the caller's mapping may change later; ints, not numpy scalars
        object.__setattr__(self, "start", {k: int(v) for k, v in self.start.items()})

    @classmethod
    def from_options(cls, value: object) -> "Curriculum":
        """A curriculum from ``load_task``'s ``curriculum=`` option: a :class:`Curriculum` or a
        table ``{steps, start, ramp, stages}`` (a TOML inline table from ``--set``)."""
        if isinstance(value, Curriculum):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"curriculum={value!r}: expected a table with keys {cls.KEYS} "
                             f"(steps and start required)")
        unknown = sorted(set(map(str, value)) - set(cls.KEYS))
        if unknown:
            raise ValueError(f"curriculum has unknown key(s) {unknown}: expected some of {cls.KEYS}")
        missing = [k for k in ("steps", "start") if k not in value]
        if missing:
            raise ValueError(f"curriculum={dict(value)!r}: missing {missing}; expected a table "
                             f"with keys {cls.KEYS} (steps and start required)")
        return cls(**{str(k): v for k, v in value.items()})

    def fraction(self, step: int) -> Fraction:
        """How far step ``step`` is along the ramp, 0 .. 1 (exact)."""
        s = min(step, self.steps)
        if self.ramp == "linear":
            return Fraction(s, self.steps)
        k = min(s * (self.stages - 1) // self.steps, self.stages - 1)
        return Fraction(k, self.stages - 1)

    def params(self, step: int, final: Mapping[str, int],
               fields: Mapping[str, CurriculumField]) -> dict[str, int]:
        """The ramped fields' values at step ``step`` (``final``: their configured values)."""
        f = self.fraction(step)
        out = {}
        for name, start in self.start.items():
            end = int(final[name])
            value = math.floor(start + (end - start) * f + Fraction(1, 2))
            grid = fields[name].grid
            if grid is not None:
                # the nearest allowed value; on a tie the one nearer the start
                value = min(grid, key=lambda g: (abs(g - value), abs(g - start)))
            out[name] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"steps": self.steps, "start": dict(self.start), "ramp": self.ramp}
        if self.ramp == "staged":
            out["stages"] = self.stages
        return out


def _change_points(f: Callable[[int], Any], lo: int, hi: int) -> list[int]:
    """The steps in ``(lo, hi]`` where the piecewise constant, componentwise monotone ``f``
    changes value. Bisection: ``f(lo) == f(hi)`` means no change in between (monotone), so this
    costs O(changes x log(hi - lo)) calls, however long the ramp."""
    out: list[int] = []
    stack = [(lo, f(lo), hi, f(hi))]
    while stack:
        a, fa, b, fb = stack.pop()
        if fa == fb:
            continue
        if b == a + 1:
            out.append(b)
            continue
        m = (a + b) // 2
        fm = f(m)
        stack.append((m, fm, b, fb))
        stack.append((a, fa, m, fm))
    return sorted(out)


# --------------------------------------------------------------------------------------------
# The fresh train stream
# --------------------------------------------------------------------------------------------

#: Niceness added to the background workers: on a busy CPU the training process comes first,
#: and a worker then takes what the trainer leaves (it runs whenever the trainer waits for it).
WORKER_NICENESS = 10


def _lower_priority() -> None:
    """Initializer of the background workers: lower their scheduling priority."""
    try:
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):  # no os.nice (Windows), or not permitted: run as is
        pass


def _batch_arrays(source: "FreshTrain", step: int, batch_size: int, seed: int
                  ) -> dict[str, np.ndarray]:
    # module level: the background workers receive it (and the source) pickled
    return source.arrays(step, batch_size, seed)


@dataclasses.dataclass(frozen=True)
class FreshTrain:
    """The train split of a generated task as an endless stream of fresh examples.

    Build it with :meth:`build` (which validates the options and the curriculum); ``load_task(...,
    fresh=True)`` does. See the module docstring for the contract.

    Attributes:
        task: the task's name (for messages).
        example: the task's :data:`ExampleFn`.
        config: the generator config at the configured (val/test) difficulty.
        seed: the task's data seed.
        width: tokens per row; shorter examples are padded with ``pad_id``.
        dtype: numpy dtype of the token rows (the fixed splits' dtype, so that rows compare).
        pad_id: the padding id (``None`` for tasks whose examples are always ``width`` long).
        curriculum: the difficulty ramp, or ``None`` (every step at the configured difficulty).
        fields: the config fields a curriculum may ramp, and their constraints.
        exclude: 64-bit digests (:func:`row_digest`) of the val and test rows; a fresh row found
            here is drawn again.
        workers: background processes that generate batches ahead (0: in the caller, when the
            batch is asked for). The batches do not depend on it.
        prefetch: batches each worker generates ahead of the consumer (>= 1).
        levels: ``(first step, generator config)`` of each distinct difficulty level in step
            order (one level without a curriculum); filled in by :meth:`build`.
    """

    task: str
    example: ExampleFn
    config: Any
    seed: int
    width: int
    dtype: np.dtype
    pad_id: int | None
    curriculum: Curriculum | None = None
    fields: Mapping[str, CurriculumField] = dataclasses.field(default_factory=dict)
    exclude: frozenset[int] = frozenset()
    workers: int = 1
    prefetch: int = 2
    levels: tuple[tuple[int, Any], ...] = ()

    @classmethod
    def build(cls, task: str, example: ExampleFn, config: Any, *, seed: int, width: int,
              dtype: Any, pad_id: int | None, fields: Mapping[str, CurriculumField],
              curriculum: object = None, eval_rows: Iterable[np.ndarray] = (),
              workers: object = 1, prefetch: object = 2) -> "FreshTrain":
        """Validate the options, compute and check every curriculum level, digest the val/test
        rows. ``curriculum``: ``None``, a :class:`Curriculum` or its table; ``eval_rows``: the
        token arrays ``[N, width]`` of the splits to keep out of training."""
        seed = _check_int("seed", seed, 0)
        width = _check_int("width", width, 1)
        workers = _check_int("fresh_workers", workers, 0)
        prefetch = _check_int("fresh_prefetch", prefetch, 1)
        ramp = None if curriculum is None else Curriculum.from_options(curriculum)
        if ramp is not None:
            final = dataclasses.asdict(config)
            for name, start in ramp.start.items():
                if name not in fields:
                    raise ValueError(f"curriculum.start.{name}={start!r}: {task} cannot ramp "
                                     f"{name!r}; expected some of {sorted(fields)}")
                spec = fields[name]
                if spec.grid is not None and start not in spec.grid:
                    raise ValueError(f"curriculum.start.{name}={start!r}: expected one of "
                                     f"{spec.grid}")
                if spec.at_most_final and start > final[name]:
                    raise ValueError(f"curriculum.start.{name}={start!r}: expected <= "
                                     f"{final[name]}, the configured {name} (it sets the data's "
                                     f"shape)")
        digests = frozenset(row_digest(np.asarray(r, dtype=dtype)) for rows in eval_rows
                            for r in rows)
        out = cls(task, example, config, seed, width, np.dtype(dtype), pad_id, ramp,
                  dict(fields), digests, workers, prefetch)
        object.__setattr__(out, "levels", out._compute_levels())
        return out

    # -- difficulty ------------------------------------------------------------------------

    def _params(self, step: int) -> tuple[tuple[str, int], ...]:
        if self.curriculum is None:
            return ()
        final = dataclasses.asdict(self.config)
        return tuple(sorted(self.curriculum.params(step, final, self.fields).items()))

    def _compute_levels(self) -> tuple[tuple[int, Any], ...]:
        if self.curriculum is None:
            return ((0, self.config),)
        starts = [0, *_change_points(self._params, 0, self.curriculum.steps)]
        levels = []
        for step in starts:
            params = dict(self._params(step))
            try:
                cfg = dataclasses.replace(self.config, **params)
            except (ValueError, TypeError) as e:
                raise ValueError(f"curriculum={self.curriculum.to_dict()}: at step {step} it sets "
                                 f"{params}, which {self.task} refuses: {e}") from None
            levels.append((step, cfg))
        return tuple(levels)

    def config_at(self, step: int) -> Any:
        """The generator config of the examples of step ``step``."""
        step = _check_int("step", step, 0)
        return self.levels[bisect.bisect_right(self.levels, step, key=lambda lv: lv[0]) - 1][1]

    def difficulty(self, step: int) -> dict[str, int]:
        """The ramped fields' values at step ``step`` (empty without a curriculum)."""
        cfg = self.config_at(step)
        return {} if self.curriculum is None else {k: getattr(cfg, k) for k in self.curriculum.start}

    # -- examples --------------------------------------------------------------------------

    def example_row(self, step: int, index: int, seed: int = 0) -> tuple[np.ndarray, int, int]:
        """Example ``index`` of step ``step`` for batch seed ``seed``: ``(row [width], label,
        length)``."""
        step = _check_int("step", step, 0)
        index = _check_int("index", index, 0)
        seed = _check_int("seed", seed, 0)
        return self._row(self.config_at(step), step, index, seed, stream_seed(self.seed, seed, step))

    def _row(self, cfg: Any, step: int, index: int, seed: int, first_seed: int
             ) -> tuple[np.ndarray, int, int]:
        for attempt in range(_MAX_REDRAWS):
            s = first_seed if attempt == 0 else stream_seed(self.seed, seed, step, attempt)
            tokens, label, _ = self.example(cfg, s, index)
            tokens = np.asarray(tokens)
            n = int(tokens.shape[0])
            if tokens.ndim != 1 or n > self.width:
                raise ValueError(f"{self.task}: the example function returned tokens of shape "
                                 f"{tokens.shape}; expected one row of at most {self.width}")
            row = np.full(self.width, self.pad_id or 0, dtype=self.dtype)
            row[:n] = tokens
            if not self.exclude or row_digest(row) not in self.exclude:
                # the length the fixed splits record: the tokens other than padding (an example
                # function may pad inside its row, as needles' short examples do)
                length = n if self.pad_id is None else int(np.count_nonzero(row != self.pad_id))
                return row, int(label), length
        raise RuntimeError(f"{self.task}: {_MAX_REDRAWS} draws of example {index} of step {step} "
                           f"were all val/test examples; the task's distribution is too small to "
                           f"hold out val/test (make it larger, or val/test smaller)")

    def arrays(self, step: int, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
        """The batch of step ``step`` as numpy arrays: ``tokens [B, width]`` (``dtype``),
        ``labels``, ``lengths``, ``index`` (0 .. B-1, the example numbers within the step) and
        ``step`` (all ``step``), int64 ``[B]``."""
        step = _check_int("step", step, 0)
        batch_size = _check_int("batch_size", batch_size, 1)
        seed = _check_int("seed", seed, 0)
        cfg = self.config_at(step)
        first = stream_seed(self.seed, seed, step)
        tokens = np.empty((batch_size, self.width), dtype=self.dtype)
        labels = np.empty(batch_size, np.int64)
        lengths = np.empty(batch_size, np.int64)
        for i in range(batch_size):
            tokens[i], labels[i], lengths[i] = self._row(cfg, step, i, seed, first)
        return {"tokens": tokens, "labels": labels, "lengths": lengths,
                "index": np.arange(batch_size, dtype=np.int64),
                "step": np.full(batch_size, step, np.int64)}

    def batches(self, batch_size: int, *, seed: int = 0, epoch: int = 0, start_step: int = 0,
                as_torch: bool = True) -> Iterator[dict[str, Any]]:
        """Endless batches of steps ``start_step, start_step + 1, ...`` (see :meth:`arrays`;
        int64 torch tensors if ``as_torch``). With ``workers > 0`` the next batches are generated
        in background processes, which stop when the iterator is closed or garbage collected."""
        batch_size = _check_int("batch_size", batch_size, 1)
        seed = _check_int("seed", seed, 0)
        start_step = _check_int("start_step", start_step, 0)
        if isinstance(epoch, bool) or epoch != 0:
            raise ValueError(f"epoch={epoch!r}: expected 0; fresh training data is one endless "
                             f"epoch (a run trained on the fixed split cannot be resumed with "
                             f"fresh=True)")
        return self._iterate(batch_size, seed, start_step, as_torch)

    def _iterate(self, batch_size: int, seed: int, start_step: int, as_torch: bool
                 ) -> Iterator[dict[str, Any]]:
        if as_torch:
            import torch

            def conv(a: np.ndarray) -> Any:
                return torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
        else:
            def conv(a: np.ndarray) -> Any:
                return np.ascontiguousarray(a, dtype=np.int64)
        if self.workers == 0:
            for step in itertools.count(start_step):
                yield {k: conv(v) for k, v in self.arrays(step, batch_size, seed).items()}
            return
        ahead = self.workers * self.prefetch
        pool = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=mp_context(),
                                                      initializer=_lower_priority)
        try:
            # Futures are consumed in step order, whatever order the workers finish in: the
            # batches never depend on timing.
            pending: collections.deque[concurrent.futures.Future] = collections.deque(
                pool.submit(_batch_arrays, self, s, batch_size, seed)
                for s in range(start_step, start_step + ahead))
            for step in itertools.count(start_step + ahead):
                arrays = pending.popleft().result()
                pending.append(pool.submit(_batch_arrays, self, step, batch_size, seed))
                yield {k: conv(v) for k, v in arrays.items()}
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def describe(self) -> str:
        """One line for logs and ``TaskData.summary``."""
        text = f"train drawn fresh every step ({self.workers} background worker(s))"
        if self.curriculum is not None:
            c = self.curriculum
            ramp = c.ramp if c.ramp == "linear" else f"{c.stages} stages"
            final = {k: getattr(self.config, k) for k in c.start}
            text += f", curriculum {dict(c.start)} -> {final} over {c.steps} steps ({ramp})"
        return text
