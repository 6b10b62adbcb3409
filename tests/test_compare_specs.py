"""``--patterns`` parsing, short-name resolution, run labels and the task configurations."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsegraph import patterns
from sparsegraph.experiments.compare.specs import (BUDGET_BLOCKS, SHORT_NAMES, resolve, resolve_all,
                                       run_label, split_patterns)
from sparsegraph.experiments.lra.recipes import PRESETS, TASKS, get_recipe

# ---------------------------------------------------------------------------------------------
# split_patterns
# ---------------------------------------------------------------------------------------------

_names = st.sampled_from(["full", "bigbird", "longformer", "window", "sliding_window",
                          "watts_strogatz", "erdos_renyi", "global_itc", "my_pattern"])
_keys = st.text(alphabet="abcdefghijk_", min_size=1, max_size=6)
_scalars = st.one_of(st.integers(-5, 999).map(str), st.sampled_from(["true", "false", "0.25", "itc"]))
_lists = st.lists(st.integers(0, 99), min_size=1, max_size=4).map(lambda xs: "[" + ",".join(map(str, xs)) + "]")


@st.composite
def _spec(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 3))):  # a union of up to 3 patterns
        name = draw(_names)
        params = draw(st.lists(st.tuples(_keys, st.one_of(_scalars, _lists)), max_size=4))
        parts.append(name + (":" + ",".join(f"{k}={v}" for k, v in params) if params else ""))
    return "|".join(parts)


@given(st.lists(_spec(), min_size=1, max_size=5))
@settings(max_examples=50, deadline=None)
def test_split_patterns_inverts_joining_with_commas(entries: list[str]) -> None:
    assert split_patterns(",".join(entries)) == entries


def test_split_patterns_examples() -> None:
    assert split_patterns("full,bigbird:block=32,random=2,window") == [
        "full", "bigbird:block=32,random=2", "window"]
    assert split_patterns(" full , longformer:window=65,global_indices=[0,5] ") == [
        "full", "longformer:window=65,global_indices=[0,5]"]


@pytest.mark.parametrize("text", ["full,,bigbird", "full,", "window=3,full", "full,[1", "a]"])
def test_split_patterns_rejects_malformed_lists(text: str) -> None:
    with pytest.raises(ValueError, match="--patterns"):
        split_patterns(text)


# ---------------------------------------------------------------------------------------------
# resolve
# ---------------------------------------------------------------------------------------------

@given(name=st.sampled_from(sorted(SHORT_NAMES)), block=st.sampled_from([16, 32, 64]),
       blocks=st.integers(2, 16), pooling=st.sampled_from(["cls", "mean"]), seed=st.integers(0, 3))
@settings(max_examples=30, deadline=None)
def test_short_names_build_at_the_task_length(name: str, block: int, blocks: int, pooling: str,
                                              seed: int) -> None:
    n = block * blocks
    choice = resolve(name, length=n, block=block, pooling=pooling)
    assert choice.label == name
    graph = patterns.get(choice.spec).build(n, heads=2, layer=0, seed=seed)
    assert (graph.n_q, graph.n_k) == (n, n)
    assert graph.num_global == 0
    # the sparse short names spend at most BigBird's key budget on an ordinary query of a head
    # (+1 for the odd window's centre or a self-loop, +1 for the global CLS column)
    if name not in ("full", "bigbird", "sparse_transformer"):
        budget = min(BUDGET_BLOCKS * block, n) + 2
        for h in range(graph.heads):  # per head: random patterns differ between heads
            deg = graph.adjacency(h).getnnz(axis=1)
            ordinary = deg[1:] if pooling == "cls" else deg
            assert ordinary.max() <= budget, (choice.spec, h, int(ordinary.max()))
    if pooling == "cls" and name in ("longformer", "window", "dilated"):
        adj = graph.merge_heads().adjacency(0)
        assert adj.getnnz(axis=1)[0] == n  # the CLS token is global
        assert adj.getnnz(axis=0)[0] == n
    if name == "window_only":
        # no global token: the first position sees only its half window, whatever the pooling
        adj = graph.merge_heads().adjacency(0)
        half = min(BUDGET_BLOCKS * block, n) // 2 + 1
        assert adj.getnnz(axis=1)[0] == min(half, n)


def test_specs_are_used_verbatim_and_unknown_names_fail() -> None:
    spec = "sliding_window:window=33|global_itc:indices=[0]"
    assert resolve(spec, length=256, block=32).spec == spec
    with pytest.raises(ValueError, match="no_such_pattern"):
        resolve("no_such_pattern", length=256, block=32)
    with pytest.raises(ValueError, match="bigbird"):
        resolve("bigbird:block=32,nonsense=3", length=256, block=32)


def test_resolve_all_refuses_duplicates() -> None:
    with pytest.raises(ValueError, match="twice"):
        resolve_all(["full", "full"], length=128, block=32)
    with pytest.raises(ValueError, match="twice"):
        resolve_all(["bigbird", "bigbird:block=32,window=3,random=3,global=2"], length=256, block=32)
    with pytest.raises(ValueError, match="no patterns"):
        resolve_all([], length=128, block=32)


@given(st.lists(st.text(min_size=1, max_size=30), min_size=2, max_size=6, unique=True))
@settings(max_examples=100, deadline=None)
def test_run_labels_are_safe_and_distinct(labels: list[str]) -> None:
    safe = [run_label(x) for x in labels]
    assert len(set(safe)) == len(safe)
    for s in safe:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+=-]*", s), s


# ---------------------------------------------------------------------------------------------
# task configurations
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("preset", PRESETS)
def test_every_task_config_builds_a_model_config(task: str, preset: str) -> None:
    cfg = get_recipe(task, preset)
    assert cfg.task == task and cfg.preset == preset
    assert cfg.sources, "every configuration says where its numbers come from"
    mc = cfg.model_config(vocab_size=300, pad_id=0, pattern="full", max_len=4096)
    assert mc.d_model == cfg.model.d_model and mc.n_layers == cfg.model.n_layers
    assert 16 <= mc.head_dim <= 128
    assert mc.attention.block_size == cfg.model.block_size


def test_lra_preset_follows_the_repo_configs() -> None:
    lo = get_recipe("listops", "lra")
    assert (lo.model.n_layers, lo.model.d_model, lo.model.d_ff, lo.model.n_heads) == (4, 512, 1024, 8)
    assert (lo.train.steps, lo.train.batch_size) == (5000, 32)
    assert lo.optim.schedule == "rsqrt" and lo.optim.warmup_steps == 1000
    assert lo.optim.lr == pytest.approx(0.05 / 1000 ** 0.5)
    assert lo.optim.betas == (0.9, 0.98) and lo.optim.eps == 1e-9
    assert (lo.data["min_length"], lo.data["max_length"]) == (500, 2000)
    pf = get_recipe("pathfinder", "lra")
    assert pf.data["contour_length"] == 14 and pf.model.pooling == "mean"
    assert (pf.train.steps, pf.train.batch_size) == (62_400, 512)


@given(steps=st.integers(1, 10_000), d=st.sampled_from([64, 128, 256]), n_train=st.integers(1, 5000))
@settings(max_examples=30, deadline=None)
def test_overrides_change_exactly_what_they_name(steps: int, d: int, n_train: int) -> None:
    base = get_recipe("listops", "cpu")
    cfg = get_recipe("listops", "cpu", [f"train.steps={steps}", f"model.d_model={d}",
                                         f"data.n_train={n_train}"])
    assert cfg.train.steps == steps and cfg.model.d_model == d and cfg.data["n_train"] == n_train
    assert cfg.optim == base.optim
    assert {k: v for k, v in cfg.data.items() if k != "n_train"} == {
        k: v for k, v in base.data.items() if k != "n_train"}


@pytest.mark.parametrize("args, match", [
    (("nosuchtask", "cpu", ()), "task"),
    (("listops", "gpu", ()), "preset"),
    (("listops", "cpu", ("train.stpes=3",)), "train.steps"),
    (("listops", "cpu", ("model.d_model=abc",)), "model.d_model"),
    (("listops", "cpu", ("model.n_heads=8", "model.d_model=64")), "head widths"),
])
def test_bad_task_configs_raise_value_errors(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        get_recipe(args[0], args[1], list(args[2]))
