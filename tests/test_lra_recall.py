"""The associative-recall diagnostic task and the routing column compare computes for it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsegraph import patterns
from sparsegraph.analysis import routing
from sparsegraph.experiments.compare import graphs as graphmod
from sparsegraph.experiments.lra import load_task, recall


@given(length=st.integers(8, 300), pairs=st.integers(1, 6), values=st.integers(6, 9),
       dist=st.integers(0, 40), seed=st.integers(0, 10**6), index=st.integers(0, 10**6))
@settings(max_examples=60, deadline=None)
def test_an_example_holds_its_answer_at_the_needed_positions(length, pairs, values, dist, seed, index):
    dist = min(dist, 2 * ((length - 2) // 2) - 1)
    pairs = min(pairs, (length - 2) // 2)
    cfg = recall.RecallConfig(length=length, pairs=pairs, keys=8, values=values, fillers=5,
                              min_distance=dist)
    tokens, label, needed = recall.generate_example(cfg, seed, "train", index)
    again = recall.generate_example(cfg, seed, "train", index)
    assert np.array_equal(tokens, again[0]) and label == again[1]
    query_pos, key_pos, value_pos = needed
    keys = range(2, 2 + cfg.keys)
    assert tokens[0] == recall.QUERY and query_pos == 1
    assert tokens[key_pos] == tokens[query_pos] and value_pos == key_pos + 1
    assert tokens[value_pos] - 2 - cfg.keys == label and 0 <= label < values
    assert key_pos - query_pos >= min(dist, 2 * ((length - 2) // 2) - 1)
    # the queried key is the only pair with that key; the query marker appears once
    key_slots = [i for i in range(2, length - 1, 2) if tokens[i] in keys]
    assert sum(tokens[i] == tokens[query_pos] for i in key_slots) == 1
    assert int((tokens == recall.QUERY).sum()) == 1 and tokens.min() >= 1
    values_seen = [tokens[i + 1] for i in key_slots]
    assert len(set(values_seen)) == len(values_seen)  # distinct values: no shortcut


def test_load_task_and_bad_parameters() -> None:
    task = load_task("recall", length=64, pairs=3, n_train=40, n_val=10, n_test=10, seed=3)
    assert task.seq_len == 64 and task.num_classes == 8 and task.pad_id == 0
    assert task["test"].needed.shape == (10, 3)
    other = load_task("recall", length=64, pairs=3, n_train=40, n_val=10, n_test=10, seed=4)
    assert not np.array_equal(task["train"].tokens, other["train"].tokens)
    with pytest.raises(ValueError, match="recall.pairs"):
        recall.RecallConfig(pairs=20, keys=16)
    with pytest.raises(ValueError, match="min_distance"):
        recall.RecallConfig(length=16, pairs=2, min_distance=14)
    with pytest.raises(TypeError, match="unknown parameter"):
        load_task("recall", colour=1)


def test_routing_problem_predicts_what_a_window_cannot_reach() -> None:
    task = load_task("recall", length=60, pairs=2, n_train=4, n_val=4, n_test=200, seed=0)
    needed = task["test"].needed
    n = 64  # CLS + 60 tokens, padded to the block
    prob = graphmod.routing_problem(needed, pooling="cls", global_tokens=0, layers=2)
    assert prob.readout == (0,) and prob.needed.min() >= 1
    window = [patterns.build("sliding_window:window=9", n, layer=i) for i in range(2)]
    # CLS at 0 hears 8 positions in 2 layers: only pairs within reach of the front are routable
    near = (prob.needed.max(axis=1) <= 8)
    ok = routing.routable(window, prob.needed, prob.readout)
    assert ok.tolist() == near.tolist() and 0 < near.sum() < len(near)
    full = [patterns.build("full", n)] * 2
    assert routing.routable_fraction(full, prob.needed, prob.readout) == 1.0
    glob = [patterns.build("sliding_window:window=9|global_itc:indices=[0]", n)]
    assert routing.routable_fraction(glob, prob.needed, prob.readout) == 1.0
    assert graphmod.routing_problem(needed, pooling="mean", global_tokens=0, layers=2) is None
    etc = graphmod.routing_problem(needed, pooling="global", global_tokens=2, layers=2)
    assert etc.readout == (0, 1) and etc.needed.min() >= 2
