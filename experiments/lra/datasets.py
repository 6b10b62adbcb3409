"""Uniform access to the Long Range Arena tasks (LRA: Tay et al. 2021).

``load_task(name, ...)`` returns a :class:`TaskData` for

============== ======================================= ======= ====== ======= =========
name           source                                  length  vocab  classes pad id
============== ======================================= ======= ====== ======= =========
listops        generated (or released TSVs)            <=2000  16     10      0
pathfinder     generated, 32x32 (LRA "Pathfinder")     1024    256    2       None
pathx          generated, 128x128 (LRA "Path-X")       16384   256    2       None
image          CIFAR-10 files, greyscale               1024    256    10      None
fashion_mnist  Fashion-MNIST IDX files                 784     256    10      None
text           IMDB ``aclImdb`` files, bytes           4000    257    2       0
retrieval      AAN TSV files, bytes, two documents     2x4000  257    2       0
============== ======================================= ======= ====== ======= =========

Token conventions:

* ListOps / text / retrieval are padded with id 0 (``pad_id = 0``); ``lengths`` holds the
  unpadded lengths.
* Image tasks (pathfinder, pathx, image, fashion_mnist) use the raw pixel values 0..255 as
  tokens, exactly like LRA, with vocabulary 256 and **no padding** (every sequence is full
  length; ``pad_id is None``). Note: LRA's JAX encoders compute the padding mask as
  ``token > 0`` for every task, which silently masks black pixels; a trainer that wants to
  reproduce that quirk can do so explicitly.
* Token arrays are stored in the smallest unsigned dtype that holds the vocabulary (uint8,
  or uint16 for bytes + 1) to keep memory down: as int64, ListOps at LRA size would take
  1.6 GB and AAN 11.7 GB instead of 2.9 GB. :func:`batches` and
  :class:`experiments.lra.torch_data.LRADataset` hand out int64 tensors.

Generated tasks are cached on disk (see :mod:`sparsegraph.experiments.lra.cache`).

Generated tasks (:data:`FRESH_TASKS`) can also train on examples drawn fresh every step:
``load_task(name, fresh=True, curriculum=None, fresh_workers=1)`` keeps the fixed val/test splits
and replaces the train split by an endless :class:`~sparsegraph.experiments.lra.fresh.FreshTrain`
stream (``TaskData.fresh``; see :mod:`sparsegraph.experiments.lra.fresh` for its contract).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from . import cache as _cache
from . import files, listops, needles, pathfinder, recall
from .fresh import Curriculum, CurriculumField, ExampleFn, FreshTrain, split_generator

__all__ = ["Split", "TaskData", "load_task", "TASKS", "FRESH_TASKS", "batches", "batch_indices",
           "steps_per_epoch", "majority_baseline"]

#: The LRA tasks, and two generated diagnostic tasks whose answers sit at known positions:
#: ``recall`` (:mod:`.recall`) and ``needles`` (:mod:`.needles`).
TASKS = ("listops", "pathfinder", "pathx", "image", "fashion_mnist", "text", "retrieval", "recall",
         "needles")
#: The generated tasks, which can draw their training data fresh every step (``fresh=True``).
FRESH_TASKS = ("listops", "pathfinder", "pathx", "recall", "needles")
SPLITS = ("train", "val", "test")

#: The generator config fields a curriculum may ramp, per task. ListOps' ``max_length`` is the
#: padded width, so it can only start lower; Pathfinder's contour length takes LRA's three values.
_LISTOPS_RAMPS = MappingProxyType({
    "min_length": CurriculumField(), "max_length": CurriculumField(at_most_final=True),
    "max_depth": CurriculumField(), "max_args": CurriculumField()})
_PATHFINDER_RAMPS = MappingProxyType({
    "contour_length": CurriculumField(grid=pathfinder.CONTOUR_LENGTHS),
    "num_distractor_snakes": CurriculumField(), "distractor_length": CurriculumField()})
_RECALL_RAMPS = MappingProxyType({"pairs": CurriculumField(), "min_distance": CurriculumField()})
# needles: ramping short_length (with short_fraction=1) is a length curriculum on a fixed width
_NEEDLES_RAMPS = MappingProxyType({"min_distance": CurriculumField(), "min_offset": CurriculumField(),
                                   "short_length": CurriculumField(at_most_final=True)})


@dataclasses.dataclass
class Split:
    """One split: ``tokens [N, L]`` (compact unsigned dtype), ``labels [N]`` int64,
    ``lengths [N]`` int64; pair tasks also have ``tokens2`` / ``lengths2``."""

    tokens: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray
    tokens2: np.ndarray | None = None
    lengths2: np.ndarray | None = None
    #: ``[N, k]`` token positions each example's answer depends on (diagnostic tasks; else None)
    needed: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def is_pair(self) -> bool:
        return self.tokens2 is not None

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "Split":
        return cls(tokens=arrays["tokens"], labels=np.asarray(arrays["labels"], np.int64),
                   lengths=np.asarray(arrays["lengths"], np.int64),
                   tokens2=arrays.get("tokens2"),
                   lengths2=None if arrays.get("lengths2") is None
                   else np.asarray(arrays["lengths2"], np.int64),
                   needed=None if arrays.get("needed") is None
                   else np.asarray(arrays["needed"], np.int64))


def majority_baseline(split: Split) -> float:
    """Accuracy of always predicting the most frequent label of ``split``."""
    if len(split) == 0:
        raise ValueError("majority_baseline of an empty split")
    return float(np.bincount(split.labels).max() / len(split))


@dataclasses.dataclass
class TaskData:
    """A loaded LRA task: splits plus everything a model needs to know about the tokens.

    Attributes:
        name: the task's name (one of :data:`TASKS`).
        splits: the fixed splits by name (``train``, ``val``, ``test``; without ``train`` when the
            training data is drawn fresh).
        vocab_size: token ids are ``0 .. vocab_size - 1``.
        num_classes: labels are ``0 .. num_classes - 1``.
        pad_id: the padding id, or ``None`` (image tasks: every sequence is full length).
        is_pair: two documents per example (``tokens2``, ``lengths2``).
        info: where the data came from: source, cache hit, manifest, generator config.
        fresh: the endless train stream of ``load_task(..., fresh=True)``, or ``None``; when set,
            ``batches("train", ...)`` draws from it.
        group_by_length: every split's batches group examples of similar length (see
            :func:`batch_indices`): shuffled batches by windows, unshuffled ones longest first.
        image_width: the image tasks' row width: token ``p`` is pixel ``(p // image_width,
            p % image_width)``; ``None`` for sequences (ListOps, text, the diagnostics).
    """

    name: str
    splits: dict[str, Split]
    vocab_size: int
    num_classes: int
    pad_id: int | None
    is_pair: bool
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    fresh: FreshTrain | None = None
    group_by_length: bool = False
    image_width: int | None = None

    def __getitem__(self, split: str) -> Split:
        if split not in self.splits:
            if split == "train" and self.fresh is not None:
                raise KeyError(f"split='train' is drawn fresh every step (fresh=True), not a fixed "
                               f"split: use batches('train', ...) or .fresh.arrays(step, n)")
            raise KeyError(f"split={split!r}: expected one of {tuple(self.splits)}")
        return self.splits[split]

    @property
    def seq_len(self) -> int:
        """Padded sequence length (per document for pair tasks)."""
        if self.fresh is not None:
            return self.fresh.width
        return int(next(iter(self.splits.values())).tokens.shape[1])

    def grid_width(self, position: str) -> int:
        """``ModelConfig.grid_width`` for a model with ``position`` on this data: the image width
        for ``rotary_2d`` (an error on a task that is not an image), 0 for every other encoding."""
        if position != "rotary_2d":
            return 0
        if self.image_width is None:
            raise ValueError(f"model.position='rotary_2d' turns with the rows and columns of an "
                             f"image, but {self.name!r} is a sequence; use position='rotary'")
        return self.image_width

    def majority_baseline(self, split: str = "test") -> float:
        """Majority-class accuracy on ``split`` (ListOps at LRA lengths: ~17%)."""
        return majority_baseline(self[split])

    def batches(self, split: str, batch_size: int, *, seed: int = 0, epoch: int = 0,
                start_step: int = 0, shuffle: bool = True, drop_last: bool = False,
                as_torch: bool = True) -> Iterator[dict[str, Any]]:
        """See :func:`batches`; for ``"train"`` with fresh data, the endless stream of
        :meth:`FreshTrain.batches` from step ``start_step`` (``shuffle`` and ``drop_last`` do
        not apply: every batch is new and full)."""
        if split == "train" and self.fresh is not None and split not in self.splits:
            return self.fresh.batches(batch_size, seed=seed, epoch=epoch, start_step=start_step,
                                      as_torch=as_torch)
        return batches(self[split], batch_size, seed=seed, epoch=epoch, start_step=start_step,
                       shuffle=shuffle, drop_last=drop_last, as_torch=as_torch,
                       group_by_length=self.group_by_length)

    def steps_per_epoch(self, split: str, batch_size: int, drop_last: bool = False) -> int:
        """Batches of an epoch over ``split`` (fresh training data has no end: an error)."""
        if split == "train" and self.fresh is not None and split not in self.splits:
            raise ValueError("split='train' is drawn fresh every step: its one epoch never ends")
        return steps_per_epoch(len(self[split]), batch_size, drop_last)

    def summary(self) -> str:
        sizes = ", ".join(f"{k} {len(v)}" for k, v in self.splits.items())
        if self.fresh is not None:
            sizes = f"{self.fresh.describe()}, {sizes}"
        return (f"{self.name}: {sizes}; seq_len {self.seq_len}{' x2' if self.is_pair else ''}, "
                f"vocab {self.vocab_size}, classes {self.num_classes}, pad_id {self.pad_id}")


# --------------------------------------------------------------------------------------------
# Deterministic batching
# --------------------------------------------------------------------------------------------

def _check_nonneg_int(name: str, value: object, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r}: expected an int >= {minimum}")
    return int(value)


def steps_per_epoch(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Number of batches of an epoch over ``n`` examples."""
    batch_size = _check_nonneg_int("batch_size", batch_size, 1)
    return n // batch_size if drop_last else -(-n // batch_size)


#: Examples sorted together by length when batches are grouped by length: this many batches' worth.
GROUP_WINDOW_BATCHES = 64


def batch_indices(n: int, batch_size: int, *, seed: int = 0, epoch: int = 0,
                  start_step: int = 0, shuffle: bool = True,
                  drop_last: bool = False, lengths: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Example indices of each batch of epoch ``epoch``, starting at batch ``start_step``.

    The order is the permutation drawn from ``SeedSequence([seed, epoch])``, so a trainer can
    resume at an exact position: ``(seed, epoch, start_step)`` determines every later batch.

    With ``lengths`` (``int[n]``, and ``shuffle``) the batches are **grouped by length**: the
    permutation is cut into windows of :data:`GROUP_WINDOW_BATCHES` batches, each window is sorted
    by length (stable, longest first) and cut into batches, and the order of the whole batches is
    shuffled again (``SeedSequence([seed, epoch, 1])``); a smaller last batch stays last. Every
    example still appears once per epoch, and a batch holds examples of similar length, so a
    model that skips the positions every example of its batch pads (the classifiers do) runs
    short batches at a short length. The fairseq/Hugging Face "group by length" scheme.
    Without ``shuffle`` (evaluation) ``lengths`` orders the examples longest first (stable): the
    same examples and the same means, in batches of similar length.
    """
    batch_size = _check_nonneg_int("batch_size", batch_size, 1)
    seed = _check_nonneg_int("seed", seed)
    epoch = _check_nonneg_int("epoch", epoch)
    start_step = _check_nonneg_int("start_step", start_step)
    total = steps_per_epoch(n, batch_size, drop_last)
    if start_step > total:
        raise ValueError(f"start_step={start_step}: the epoch has only {total} batches "
                         f"(n={n}, batch_size={batch_size}, drop_last={drop_last})")
    if lengths is not None and np.shape(lengths) != (n,):
        raise ValueError(f"lengths has shape {np.shape(lengths)}; expected ({n},), one per example")
    if shuffle:
        order = np.random.default_rng(np.random.SeedSequence([seed, epoch])).permutation(n)
        if lengths is not None:
            order = _grouped_by_length(order, np.asarray(lengths), batch_size, seed, epoch)
    elif lengths is not None:  # evaluation: longest first, so each batch is cut to similar lengths
        order = np.argsort(-np.asarray(lengths), kind="stable")
    else:
        order = np.arange(n)
    for step in range(start_step, total):
        yield order[step * batch_size:(step + 1) * batch_size]


def _grouped_by_length(order: np.ndarray, lengths: np.ndarray, batch_size: int, seed: int,
                       epoch: int) -> np.ndarray:
    window = GROUP_WINDOW_BATCHES * batch_size
    parts = []
    for a in range(0, len(order), window):
        w = order[a:a + window]
        parts.append(w[np.argsort(-lengths[w], kind="stable")])
    order = np.concatenate(parts) if parts else order
    full = len(order) // batch_size
    shuffled = np.random.default_rng(np.random.SeedSequence([seed, epoch, 1])).permutation(full)
    head = order[:full * batch_size].reshape(full, batch_size)[shuffled].ravel()
    return np.concatenate([head, order[full * batch_size:]])


def batches(split: Split, batch_size: int, *, seed: int = 0, epoch: int = 0, start_step: int = 0,
            shuffle: bool = True, drop_last: bool = False, as_torch: bool = True,
            group_by_length: bool = False) -> Iterator[dict[str, Any]]:
    """Yield batches ``{"tokens", "labels", "lengths", "index"[, "tokens2", "lengths2"]}``.

    Arrays are int64 (torch tensors if ``as_torch``, else numpy). ``index`` holds the example
    indices. Deterministic in ``(seed, epoch)``; ``start_step`` skips the first batches of the
    epoch so that training can resume mid-epoch at the exact data position.
    ``group_by_length``: batches of examples of similar ``lengths`` (see :func:`batch_indices`).
    """
    if as_torch:
        import torch

        conv: Any = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))  # noqa: E731
    else:
        conv = lambda a: np.ascontiguousarray(a, dtype=np.int64)  # noqa: E731
    for idx in batch_indices(len(split), batch_size, seed=seed, epoch=epoch,
                             start_step=start_step, shuffle=shuffle, drop_last=drop_last,
                             lengths=split.lengths if group_by_length else None):
        out = {"tokens": conv(split.tokens[idx]), "labels": conv(split.labels[idx]),
               "lengths": conv(split.lengths[idx]), "index": conv(idx)}
        if split.tokens2 is not None:
            out["tokens2"] = conv(split.tokens2[idx])
            out["lengths2"] = conv(split.lengths2[idx])  # type: ignore[index]
        yield out


# --------------------------------------------------------------------------------------------
# load_task
# --------------------------------------------------------------------------------------------

def _take(params: dict[str, Any], allowed: dict[str, Any], task: str) -> dict[str, Any]:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TypeError(f"load_task({task!r}): unknown parameter(s) {unknown}; expected some of "
                        f"{sorted(allowed)}")
    out = dict(allowed)
    out.update(params)
    return out


def _splits(arrays: dict[str, dict[str, np.ndarray]]) -> dict[str, Split]:
    return {s: Split.from_arrays(arrays[s]) for s in SPLITS if s in arrays}


def _fresh_options(name: str, data_dir: Any, params: dict[str, Any]) -> dict[str, Any] | None:
    """Take ``fresh``, ``fresh_workers`` and ``curriculum`` out of ``params`` and check them;
    ``None`` unless ``fresh`` is true."""
    fresh = params.pop("fresh", False)
    opts = {k: params.pop(k) for k in ("curriculum", "fresh_workers") if k in params}
    if not isinstance(fresh, (bool, np.bool_)):
        raise ValueError(f"fresh={fresh!r}: expected true or false")
    if not fresh:
        if opts:
            key, value = next(iter(opts.items()))
            raise ValueError(f"{key}={value!r}: needs fresh=True (it is about the training "
                             f"examples drawn fresh every step)")
        return None
    if name not in FRESH_TASKS:
        raise ValueError(f"fresh=True: {name!r} is read from files; expected one of the "
                         f"generated tasks {FRESH_TASKS}")
    if data_dir is not None:
        raise ValueError(f"data_dir={str(data_dir)!r}: fresh=True generates the training data; "
                         f"omit data_dir")
    workers = opts.get("fresh_workers", 1)
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 0:
        raise ValueError(f"fresh_workers={workers!r}: expected an int >= 0 (background generator "
                         f"processes; 0 = generate in this process)")
    curriculum = opts.get("curriculum")
    # checked here, before any generation; the task's own fields are checked once its config is known
    return {"curriculum": None if curriculum is None else Curriculum.from_options(curriculum),
            "workers": int(workers)}


def _attach_fresh(data: TaskData, opts: dict[str, Any], example: ExampleFn, config: Any, *,
                  seed: int, width: int, dtype: Any, fields: dict[str, CurriculumField]
                  ) -> TaskData:
    """``data`` with its fresh train stream: the val/test rows are held out of it."""
    data.fresh = FreshTrain.build(data.name, example, config, seed=seed, width=width, dtype=dtype,
                                  pad_id=data.pad_id, fields=fields,
                                  curriculum=opts["curriculum"], workers=opts["workers"],
                                  eval_rows=[s.tokens for s in data.splits.values()])
    data.info["fresh"] = {"workers": data.fresh.workers,
                          "curriculum": None if data.fresh.curriculum is None
                          else data.fresh.curriculum.to_dict()}
    return data


def _pathfinder_train_example(config: pathfinder.PathfinderConfig, seed: int, index: int
                              ) -> tuple[np.ndarray, int, None]:
    """Pathfinder's :data:`~sparsegraph.experiments.lra.fresh.ExampleFn`: the image of the train
    stream of ``seed``, flattened row-major."""
    img, label = pathfinder.generate_example(config, seed, index, "train")  # type: ignore[misc]
    return img.ravel(), int(label), None


def _load_listops(data_dir: Any, cache_dir: Any, workers: int | None, progress: bool,
                  use_cache: bool, params: dict[str, Any],
                  fresh: dict[str, Any] | None = None) -> TaskData:
    if data_dir is not None:
        p = _take(params, {"max_length": 2000}, "listops")
        arrays = files.load_listops_tsv(data_dir, max_length=p["max_length"])
        info: dict[str, Any] = {"source": "files", "data_dir": str(data_dir)}
    else:
        short = _listops_short_options(params)
        fields = {f.name: f.default for f in dataclasses.fields(listops.ListOpsConfig)}
        cfg = listops.ListOpsConfig(**_take(params, fields, "listops"))
        if short is not None:
            if fresh is not None:
                raise ValueError("short_fraction: with fresh=True use a curriculum on the lengths "
                                 "instead (the fixed short examples belong to a fixed train split)")
            return _listops_with_short(cfg, short, cache_dir, workers, progress, use_cache)
        final = cfg
        if fresh is not None:
            # Val and test are taken from the pool before train (test, val, train), so without
            # train they are the very same examples (and a separate, smaller cache entry).
            if cfg.n_val + cfg.n_test == 0:
                return _attach_fresh(
                    TaskData("listops", {}, listops.VOCAB_SIZE, 10, listops.PAD_ID, False,
                             {"source": "generated", "config": cfg.to_dict()}),
                    fresh, split_generator(listops.generate_example), final, seed=cfg.seed,
                    width=cfg.max_length, dtype=np.uint8, fields=_LISTOPS_RAMPS)
            cfg = dataclasses.replace(cfg, n_train=0)
        arrays, manifest, hit = _generated_listops(cfg, cache_dir, workers, progress, use_cache)
        info = {"source": "generated", "cache_hit": hit, "manifest": manifest,
                "config": cfg.to_dict()}
        if fresh is not None:
            arrays.pop("train", None)
            data = TaskData("listops", _splits(arrays), listops.VOCAB_SIZE, 10, listops.PAD_ID,
                            False, info)
            return _attach_fresh(data, fresh, split_generator(listops.generate_example), final,
                                 seed=cfg.seed, width=cfg.max_length, dtype=np.uint8,
                                 fields=_LISTOPS_RAMPS)
    return TaskData("listops", _splits(arrays), listops.VOCAB_SIZE, 10, listops.PAD_ID,
                    False, info)


def _generated_listops(cfg: Any, cache_dir: Any, workers: int | None, progress: bool,
                       use_cache: bool) -> tuple[dict[str, dict[str, np.ndarray]], Any, bool]:
    """The splits of ``cfg`` from the cache, generated (and cached) on a miss: ``(arrays,
    manifest, cache_hit)``; the manifest records the seed and the generator's statistics."""
    stats: dict[str, Any] = {}

    def build() -> dict[str, dict[str, np.ndarray]]:
        splits, gen_info = listops.generate_listops(cfg, workers=workers, progress=progress)
        stats.update(gen_info)
        return splits

    return _cache.cached("listops", listops.GENERATOR_VERSION, cfg.to_dict(), build,
                         cache_dir=cache_dir, use_cache=use_cache,
                         extra_manifest=lambda: {"seed": cfg.seed, "stats": stats})


def _listops_short_options(params: dict[str, Any]) -> dict[str, Any] | None:
    """Take ``short_fraction``, ``short_min_length`` and ``short_max_length`` out of ``params``."""
    opts = {"short_fraction": params.pop("short_fraction", 0.0),
            "short_min_length": params.pop("short_min_length", 64),
            "short_max_length": params.pop("short_max_length", 256)}
    frac = opts["short_fraction"]
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac < 1:
        raise ValueError(f"short_fraction={frac!r}: expected a number in [0, 1) (the share of the "
                         f"training examples drawn at the short lengths)")
    for key in ("short_min_length", "short_max_length"):
        _check_nonneg_int(key, opts[key])
    return opts if frac > 0 else None


def _listops_with_short(cfg: Any, short: dict[str, Any], cache_dir: Any, workers: int | None,
                        progress: bool, use_cache: bool) -> TaskData:
    """ListOps whose train split mixes in ``short_fraction`` of examples with lengths strictly
    between ``short_min_length`` and ``short_max_length``, padded to the task's width; val and
    test are the very examples of the unmixed task. The short lengths must lie below the long
    ones, so no short example can repeat a test example."""
    if short["short_max_length"] - 1 > cfg.min_length:
        raise ValueError(f"short_max_length={short['short_max_length']}: the short lengths (< "
                         f"short_max_length) must not overlap the task's (> min_length="
                         f"{cfg.min_length}); expected short_max_length <= {cfg.min_length + 1}")
    n_short = int(round(cfg.n_train * short["short_fraction"]))
    long_cfg = dataclasses.replace(cfg, n_train=cfg.n_train - n_short)
    short_cfg = dataclasses.replace(cfg, n_train=n_short, n_val=0, n_test=0,
                                    min_length=short["short_min_length"],
                                    max_length=short["short_max_length"])
    arrays, manifest, hit = _generated_listops(long_cfg, cache_dir, workers, progress, use_cache)
    short_arrays, short_manifest, short_hit = _generated_listops(short_cfg, cache_dir, workers,
                                                                 progress, use_cache)
    train, extra = arrays["train"], short_arrays["train"]
    width = train["tokens"].shape[1]
    pad = width - extra["tokens"].shape[1]
    arrays["train"] = {
        "tokens": np.concatenate([train["tokens"], np.pad(extra["tokens"], ((0, 0), (0, pad)),
                                                          constant_values=listops.PAD_ID)]),
        "labels": np.concatenate([train["labels"], extra["labels"]]),
        "lengths": np.concatenate([train["lengths"], extra["lengths"]]),
    }
    info = {"source": "generated", "cache_hit": hit and short_hit, "manifest": manifest,
            "short_manifest": short_manifest, "config": cfg.to_dict(), **short}
    return TaskData("listops", _splits(arrays), listops.VOCAB_SIZE, 10, listops.PAD_ID, False, info)


def _load_pathfinder(name: str, cache_dir: Any, workers: int | None, progress: bool,
                     use_cache: bool, params: dict[str, Any],
                     fresh: dict[str, Any] | None = None) -> TaskData:
    base = {"resolution": 128 if name == "pathx" else 32, "contour_length": 14,
            "n_train": 160_000, "n_val": 20_000, "n_test": 20_000, "seed": 0}
    cfg_fields = {f.name for f in dataclasses.fields(pathfinder.PathfinderConfig)}
    allowed = dict(base)
    allowed.update({k: None for k in cfg_fields if k not in base})
    allowed["difficulty"] = None
    p = _take(params, allowed, name)
    if p["difficulty"] is not None:
        if p["difficulty"] not in pathfinder.DIFFICULTY:
            raise ValueError(f"difficulty={p['difficulty']!r}: expected one of "
                             f"{tuple(pathfinder.DIFFICULTY)}")
        if "contour_length" in params:
            raise TypeError("pass either difficulty or contour_length, not both")
        p["contour_length"] = pathfinder.DIFFICULTY[p["difficulty"]]
    overrides = {k: p[k] for k in cfg_fields
                 if k not in ("resolution", "contour_length") and p.get(k) is not None}
    cfg = pathfinder.pathfinder_config(p["resolution"], p["contour_length"], **overrides)
    sizes = {k: p[k] for k in ("n_train", "n_val", "n_test")}
    if fresh is not None:
        # Image i of a split is drawn from (seed, split, i) alone, so val/test generated without
        # train are the same images.
        sizes["n_train"] = 0
    seed = p["seed"]
    key_params = {"config": cfg.to_dict(), **sizes, "seed": seed}

    def build() -> dict[str, dict[str, np.ndarray]]:
        return pathfinder.generate_pathfinder(cfg, seed=seed, workers=workers,
                                              progress=progress, **sizes)

    arrays, manifest, hit = _cache.cached(
        "pathfinder", pathfinder.GENERATOR_VERSION, key_params, build, cache_dir=cache_dir,
        use_cache=use_cache, extra_manifest={"seed": seed})
    info = {"source": "generated", "cache_hit": hit, "manifest": manifest,
            "config": cfg.to_dict()}
    if fresh is not None:
        arrays.pop("train", None)
        return _attach_fresh(TaskData(name, _splits(arrays), 256, 2, None, False, info,
                                      image_width=cfg.resolution), fresh,
                             _pathfinder_train_example, cfg, seed=seed,
                             width=cfg.resolution ** 2, dtype=np.uint8, fields=_PATHFINDER_RAMPS)
    return TaskData(name, _splits(arrays), 256, 2, None, False, info, image_width=cfg.resolution)


def _load_diagnostic(name: str, data_dir: Any, params: dict[str, Any], fresh: Any) -> TaskData:
    """``recall`` or ``needles``: generated in memory (fast enough not to cache), with the answer
    positions as ``Split.needed``."""
    if data_dir is not None:
        raise ValueError(f"data_dir={str(data_dir)!r}: {name} is generated - omit data_dir")
    module: Any = recall if name == "recall" else needles
    config_cls = module.RecallConfig if name == "recall" else module.NeedlesConfig
    fields = config_cls().to_dict()
    p = _take(params, {"n_train": 8000, "n_val": 500, "n_test": 1000, "seed": 0, **fields}, name)
    cfg = config_cls(**{k: p[k] for k in fields})
    for split in SPLITS:
        _check_nonneg_int(f"n_{split}", p[f"n_{split}"])
    # Example i of a split is a function of (seed, split, i): val/test do not depend on train.
    arrays = {s: module.generate_split(cfg, p["seed"], s, p[f"n_{s}"]) for s in SPLITS
              if not (fresh is not None and s == "train")}
    classes = cfg.values if name == "recall" else cfg.num_classes
    data = TaskData(name, _splits(arrays), cfg.vocab_size, classes, 0, False,
                    {"source": "generated", "config": cfg.to_dict(), **p})
    if fresh is not None:
        _attach_fresh(data, fresh, split_generator(module.generate_example), cfg,
                      seed=p["seed"], width=cfg.length,
                      dtype=np.uint8 if cfg.vocab_size <= 256 else np.uint16,
                      fields=_RECALL_RAMPS if name == "recall" else _NEEDLES_RAMPS)
    return data


def load_task(name: str, *, data_dir: str | os.PathLike[str] | None = None,
              cache_dir: str | os.PathLike[str] | None = None, workers: int | None = None,
              progress: bool = True, use_cache: bool = True, **params: Any) -> TaskData:
    """Load (or generate and cache) the LRA task ``name``.

    Args:
        name: one of :data:`TASKS`.
        data_dir: directory with the task's files (image, fashion_mnist, text, retrieval; for
            listops, optionally the released ``basic_*.tsv`` files instead of generating).
        cache_dir: cache root for generated tasks (default ``$SPARSEGRAPH_DATA`` or
            ``~/.cache/sparsegraph/lra``).
        workers: generator processes (``None`` = all CPUs); results do not depend on it.
        progress: stderr progress line for generations longer than ~2 s.
        use_cache: read/write the on-disk cache for generated tasks.
        **params: task parameters -
            listops: ``n_train, n_val, n_test, min_length, max_length, max_depth, max_args,
            seed`` (defaults = LRA); with ``data_dir``: ``max_length``.
            pathfinder / pathx: ``n_train, n_val, n_test, seed, contour_length`` (6/9/14) or
            ``difficulty`` (easy/intermediate/hard), ``resolution`` and any
            :class:`~experiments.lra.pathfinder.PathfinderConfig` field.
            image / fashion_mnist: ``n_val``. text: ``max_length`` (4000).
            retrieval: ``max_length`` (4000), ``max_chars`` (10000).
            recall: ``n_train, n_val, n_test, seed`` and any
            :class:`~sparsegraph.experiments.lra.recall.RecallConfig` field.
            needles: ``n_train, n_val, n_test, seed`` and any
            :class:`~sparsegraph.experiments.lra.needles.NeedlesConfig` field.
            Generated tasks (:data:`FRESH_TASKS`) also take ``fresh`` (bool: draw the training
            examples fresh every step; ``n_train`` is then unused and no train split is
            generated), ``fresh_workers`` (background generator processes, default 1; 0 =
            generate in this process; the data do not depend on it) and ``curriculum`` (a
            :class:`~sparsegraph.experiments.lra.fresh.Curriculum` or its table ``{steps,
            start, ramp, stages}``: the difficulty parameters ramped from ``start`` at step 0 to
            the configured values at ``steps``). See :mod:`sparsegraph.experiments.lra.fresh`.
            Every task takes ``group_by_length`` (bool, default false): training batches of
            examples of similar length (:attr:`TaskData.group_by_length`); not with ``fresh``.
    """
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(f"name={name!r}: unknown LRA task; expected one of {TASKS}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress={progress!r}: expected a bool")
    params = dict(params)
    group = params.pop("group_by_length", False)
    if not isinstance(group, (bool, np.bool_)):
        raise ValueError(f"group_by_length={group!r}: expected true or false")
    fresh = _fresh_options(name, data_dir, params)
    if group and fresh is not None:
        raise ValueError("group_by_length=True: the training batches are drawn fresh (fresh=True), "
                         "there is no fixed split to group; set one of the two")
    data = _load(name, data_dir, cache_dir, workers, progress, use_cache, params, fresh)
    data.group_by_length = bool(group)
    return data


def _load(name: str, data_dir: Any, cache_dir: Any, workers: int | None, progress: bool,
          use_cache: bool, params: dict[str, Any], fresh: Any) -> TaskData:
    if name == "listops":
        return _load_listops(data_dir, cache_dir, workers, progress, use_cache, params, fresh)
    if name in ("pathfinder", "pathx"):
        if data_dir is not None:
            raise ValueError(f"data_dir={str(data_dir)!r}: reading LRA's released Pathfinder PNGs "
                             f"is not supported (no PNG decoder without Pillow); {name} is "
                             f"generated - omit data_dir")
        return _load_pathfinder(name, cache_dir, workers, progress, use_cache, params, fresh)
    if name in ("recall", "needles"):
        return _load_diagnostic(name, data_dir, params, fresh)
    src = {"source": "files", "data_dir": None if data_dir is None else str(Path(data_dir))}
    if name == "image":
        p = _take(params, {"n_val": 5000}, name)
        arrays = files.load_cifar10(data_dir, n_val=p["n_val"])  # type: ignore[arg-type]
        return TaskData(name, _splits(arrays), 256, 10, None, False, src, image_width=32)
    if name == "fashion_mnist":
        p = _take(params, {"n_val": 6000}, name)
        arrays = files.load_fashion_mnist(data_dir, n_val=p["n_val"])
        src["data_dir"] = src["data_dir"] or str(files.FASHION_MNIST_DEBIAN_DIR)
        return TaskData(name, _splits(arrays), 256, 10, None, False, src, image_width=28)
    if name == "text":
        p = _take(params, {"max_length": 4000}, name)
        arrays = files.load_imdb(data_dir, max_length=p["max_length"])  # type: ignore[arg-type]
        return TaskData(name, _splits(arrays), 257, 2, 0, False, src)
    p = _take(params, {"max_length": 4000, "max_chars": 10_000}, name)
    arrays = files.load_aan(data_dir, max_length=p["max_length"],  # type: ignore[arg-type]
                            max_chars=p["max_chars"])
    return TaskData(name, _splits(arrays), 257, 2, 0, True, src)
