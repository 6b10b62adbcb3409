"""The two-needles diagnostic task: determinism, the label's definition, the positions'
constraints, that one needle alone says nothing, and clear errors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from sparsegraph.experiments.lra import load_task
from sparsegraph.experiments.lra.needles import NeedlesConfig, generate_example, generate_split


def _decode(cfg: NeedlesConfig, tokens: np.ndarray, needed: np.ndarray) -> tuple[int, int]:
    """The needles' values read back from the tokens: (a, b)."""
    p, q = (int(x) for x in needed)
    a, b = int(tokens[p]) - 1, int(tokens[q]) - 1 - cfg.values
    assert 0 <= a < cfg.values and 0 <= b < cfg.values
    return a, b


def test_examples_are_a_function_of_seed_split_and_index() -> None:
    cfg = NeedlesConfig(length=64)
    x1, y1, n1 = generate_example(cfg, 3, "train", 5)
    x2, y2, n2 = generate_example(cfg, 3, "train", 5)
    assert np.array_equal(x1, x2) and y1 == y2 and np.array_equal(n1, n2)
    others = [generate_example(cfg, s, sp, i)[0] for s, sp, i in
              ((4, "train", 5), (3, "val", 5), (3, "train", 6))]
    assert all(not np.array_equal(x1, o) for o in others)


@pytest.mark.parametrize("cfg", [NeedlesConfig(length=64), NeedlesConfig(length=200, values=6, fillers=1),
                                 NeedlesConfig(length=128, min_distance=60, min_offset=30),
                                 NeedlesConfig(length=12, min_distance=10, min_offset=1)])
def test_label_is_the_sum_and_positions_obey_the_constraints(cfg: NeedlesConfig) -> None:
    split = generate_split(cfg, 0, "train", 300)
    fill0 = 1 + 2 * cfg.values
    for tokens, label, needed in zip(split["tokens"], split["labels"], split["needed"]):
        a, b = _decode(cfg, tokens, needed)
        assert label == a + b
        p, q = (int(x) for x in needed)
        assert p >= cfg.min_offset and q >= cfg.min_offset
        assert abs(p - q) >= max(cfg.min_distance, 1)
        rest = np.delete(tokens, [p, q])
        assert rest.min() >= fill0 and rest.max() < fill0 + cfg.fillers  # only fillers elsewhere
    assert split["tokens"].min() > 0  # no padding inside an example


def test_tight_constraints_still_cover_every_allowed_pair() -> None:
    """length 12, min_offset 1, min_distance 10: the ordered pairs (1, 11) and (11, 1) only."""
    cfg = NeedlesConfig(length=12, min_distance=10, min_offset=1)
    pairs = Counter(tuple(int(x) for x in generate_example(cfg, 0, "train", i)[2]) for i in range(200))
    assert set(pairs) == {(1, 11), (11, 1)}


def test_one_needle_alone_predicts_no_better_than_the_majority_class() -> None:
    """Knowing a (or b) leaves the sum uniform over `values` outcomes: the best guess from one
    needle is right 1/values of the time, like the majority class."""
    cfg = NeedlesConfig(length=32, values=4)
    split = generate_split(cfg, 1, "train", 4000)
    ab = np.array([_decode(cfg, t, n) for t, n in zip(split["tokens"], split["needed"])])
    labels = split["labels"]
    for col in (0, 1):
        hits = 0
        for v in range(cfg.values):
            rows = labels[ab[:, col] == v]
            hits += np.bincount(rows).max()
        assert hits / len(labels) < 1 / cfg.values + 0.04
    majority = np.bincount(labels).max() / len(labels)
    assert abs(majority - 1 / cfg.values) < 0.04  # the middle sum, values-1: 4/16 of examples


def test_load_task_needles() -> None:
    task = load_task("needles", length=96, values=3, n_train=20, n_val=6, n_test=8, seed=2)
    assert task.num_classes == 5 and task.vocab_size == 1 + 6 + 1  # one filler id by default
    assert task["test"].needed.shape == (8, 2)
    assert task.seq_len == 96 and task.pad_id == 0
    again = load_task("needles", length=96, values=3, n_train=20, n_val=6, n_test=8, seed=2)
    assert np.array_equal(task["train"].tokens, again["train"].tokens)
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['pairs'\]"):
        load_task("needles", pairs=3)
    with pytest.raises(ValueError, match="n_train=-1: expected an int >= 0"):
        load_task("needles", n_train=-1)


@pytest.mark.parametrize("kwargs, message", [
    ({"values": 1}, r"needles.values must be an int >= 2, got 1"),
    ({"length": 1}, r"needles.length must be an int >= 2, got 1"),
    ({"fillers": 2.5}, r"needles.fillers must be an int >= 1, got 2.5"),
    ({"length": 20, "min_distance": 20}, r"needles.min_distance=20 with min_offset=0 does not fit"),
    ({"length": 20, "min_offset": 19}, r"does not fit in length 20"),
])
def test_bad_configs_name_the_parameter(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NeedlesConfig(**kwargs)


def test_short_training_examples_are_padded_and_only_in_train() -> None:
    cfg = NeedlesConfig(length=256, short_fraction=0.5, short_length=32, min_offset=4)
    train = generate_split(cfg, 0, "train", 400)
    short = train["lengths"] == 32
    assert 0.4 < short.mean() < 0.6
    assert set(np.unique(train["lengths"])) == {32, 256}
    assert (train["tokens"][short][:, 32:] == 0).all() and (train["tokens"][short][:, :32] > 0).all()
    assert (train["needed"][short] < 32).all() and (train["needed"][short] >= 4).all()
    for tokens, label, needed in zip(train["tokens"], train["labels"], train["needed"]):
        assert label == sum(_decode(cfg, tokens, needed))
    # evaluation splits are full length whatever short_fraction says
    test = generate_split(cfg, 0, "test", 100)
    assert (test["lengths"] == 256).all()
    plain = generate_split(NeedlesConfig(length=256, min_offset=4), 0, "test", 100)
    assert np.array_equal(test["tokens"], plain["tokens"])
    with pytest.raises(ValueError, match=r"needles.short_fraction must be a number in \[0, 1\], got 1.5"):
        NeedlesConfig(short_fraction=1.5)
    with pytest.raises(ValueError, match=r"needles.short_length must be an int in \[2, length=64\], got 128"):
        NeedlesConfig(length=64, short_fraction=0.1)


def test_fresh_needles_with_a_length_curriculum() -> None:
    """Every training example short at step 0 (short_length 32), full length from step 10 on."""
    task = load_task("needles", length=128, short_fraction=1.0, short_length=128, n_val=8, n_test=8,
                     fresh=True, fresh_workers=0,
                     curriculum={"steps": 10, "start": {"short_length": 32}, "ramp": "staged",
                                 "stages": 2})
    first = next(task.batches("train", 8, seed=0))
    assert (first["tokens"][:, 32:] == 0).all() and (first["tokens"][:, :32] > 0).all()
    late = next(task.batches("train", 8, seed=0, start_step=10))
    assert (late["tokens"] > 0).all()
    again = next(task.batches("train", 8, seed=0, start_step=10))
    assert (late["tokens"] == again["tokens"]).all()
