"""ListOps generator, tokeniser and evaluator (experiments.lra.listops)."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparsegraph.experiments.lra import listops as lo
from sparsegraph.experiments.lra.listops import Node
from sparsegraph.experiments.lra.progress import Progress

SMALL = dict(n_train=300, n_val=40, n_test=40, min_length=20, max_length=120)


def _brute(tree: lo.Tree) -> int:
    """Reference semantics, written independently of the module."""
    if not isinstance(tree, Node):
        return int(tree)
    vals = [_brute(a) for a in tree.args]
    if tree.op == "[MIN":
        return min(vals)
    if tree.op == "[MAX":
        return max(vals)
    if tree.op == "[MED":
        return int(np.median(vals))
    assert tree.op == "[SM"
    return sum(vals) % 10


trees = st.recursive(
    st.integers(0, 9),
    lambda children: st.builds(Node, st.sampled_from(lo.OPERATORS),
                               st.lists(children, min_size=1, max_size=10).map(tuple)),
    max_leaves=60,
)


@given(trees)
def test_evaluator_matches_brute_force(tree: lo.Tree) -> None:
    toks = lo.tree_to_tokens(tree)
    expected = _brute(tree)
    assert lo.evaluate(toks) == expected
    assert lo.evaluate_tree(tree) == expected
    ids = lo.encode_tokens(toks)
    assert lo.evaluate(ids) == expected
    assert lo.evaluate(np.concatenate([ids, np.zeros(5, np.uint8)])) == expected  # pads ignored


@given(trees)
def test_lra_string_and_tree_round_trip(tree: lo.Tree) -> None:
    toks = lo.tree_to_tokens(tree)
    assert lo.tokens_to_tree(toks) == tree
    source = lo.to_lra_string(tree)
    assert lo.from_lra_string(source) == toks
    assert lo.to_lra_string(toks) == source
    assert source.count("(") == source.count(")")
    assert lo.decode_ids(lo.encode_tokens(toks)) == toks


def test_lra_string_format_and_median_truncation() -> None:
    assert lo.to_lra_string(Node("[MAX", (4, 3))) == "( ( ( [MAX 4 ) 3 ) ] )"
    assert lo.from_lra_string("( ( ( [MAX 4 ) 3 ) ] )") == ["[MAX", "4", "3", "X"]
    nested = Node("[SM", (Node("[MIN", (7, 2)), 9))
    assert lo.to_lra_string(nested) == "( ( ( [SM ( ( ( [MIN 7 ) 2 ) ] ) ) 9 ) ] )"
    assert lo.evaluate(["[MED", "1", "2", "X"]) == 1           # median 1.5 -> 1
    assert lo.evaluate(["[MED", "0", "9", "4", "5", "X"]) == 4  # median 4.5 -> 4
    assert lo.evaluate(["[SM", "9", "8", "X"]) == 7
    assert lo.VOCAB_SIZE == 16 and lo.PAD_ID == 0 and lo.VOCAB[0] == "<pad>"


@pytest.mark.parametrize("bad", [["[MAX", "1"], ["X"], ["[MAX", "X"], ["[FOO", "1", "X"],
                                 ["1", "2"], []])
def test_evaluate_rejects_malformed(bad: list[str]) -> None:
    with pytest.raises(ValueError):
        lo.evaluate(bad)


@pytest.fixture(scope="module")
def small() -> tuple[dict, dict]:
    return lo.generate_listops(workers=1, progress=False, seed=3, **SMALL)


def test_lengths_padding_labels_and_dedup(small: tuple[dict, dict]) -> None:
    splits, info = small
    rows = []
    for name, n in (("train", 300), ("val", 40), ("test", 40)):
        s = splits[name]
        assert s["tokens"].shape == (n, SMALL["max_length"]) and s["tokens"].dtype == np.uint8
        lengths = s["lengths"]
        assert (lengths > SMALL["min_length"]).all() and (lengths < SMALL["max_length"]).all()
        pos = np.arange(SMALL["max_length"])[None, :]
        assert (s["tokens"][pos >= lengths[:, None]] == 0).all()
        assert (s["tokens"][pos < lengths[:, None]] != 0).all()
        for row, length, label in zip(s["tokens"], lengths, s["labels"]):
            toks = lo.decode_ids(row)
            assert len(toks) == length
            assert lo.evaluate(toks) == label
            assert _brute(lo.tokens_to_tree(toks)) == label
        rows.append(s["tokens"])
    allrows = np.concatenate(rows)
    assert len(np.unique(allrows, axis=0)) == len(allrows)  # no duplicate trees across splits
    assert 0 < info["acceptance_rate"] < 1


def test_deterministic_and_independent_of_workers(small: tuple[dict, dict]) -> None:
    splits, _ = small
    again, _ = lo.generate_listops(workers=2, progress=False, seed=3, **SMALL)
    other, _ = lo.generate_listops(workers=1, progress=False, seed=4, **SMALL)
    for name in splits:
        for field in ("tokens", "lengths", "labels"):
            np.testing.assert_array_equal(splits[name][field], again[name][field])
    assert not np.array_equal(splits["train"]["tokens"], other["train"]["tokens"])


def test_test_split_does_not_depend_on_n_train(small: tuple[dict, dict]) -> None:
    splits, _ = small
    params = dict(SMALL, n_train=50)
    fewer, _ = lo.generate_listops(workers=1, progress=False, seed=3, **params)
    for name in ("val", "test"):
        np.testing.assert_array_equal(splits[name]["tokens"], fewer[name]["tokens"])
    np.testing.assert_array_equal(splits["train"]["tokens"][:50], fewer["train"]["tokens"])


def test_dedup_with_tiny_trees() -> None:
    # length 5 allows only 4,000 distinct trees ([OP d d d]): duplicates must be dropped
    splits, info = lo.generate_listops(n_train=400, n_val=0, n_test=0, min_length=4,
                                       max_length=6, seed=0, workers=1, progress=False)
    t = splits["train"]["tokens"]
    assert len(np.unique(t, axis=0)) == 400
    assert info["duplicates_dropped"] > 0


def test_impossible_request_fails_instead_of_looping() -> None:
    # max_depth=2, max_args=2 and length 4 allow only [OP d d]: 4 * 100 = 400 distinct trees
    with pytest.raises(RuntimeError, match="distinct trees"):
        lo.generate_listops(n_train=500, n_val=0, n_test=0, min_length=3, max_length=5,
                            max_depth=2, max_args=2, workers=1, progress=False)


def _naive_lengths(n: int, min_length: int, max_length: int, seed: int) -> list[int]:
    """LRA's recursive generation process in plain Python (a tree is abandoned as soon as it
    reaches max_length tokens: it would be rejected anyway, so the kept ones are unaffected)."""
    rnd = random.Random(seed)

    class TooLong(Exception):
        pass

    def gen(depth: int, budget: list[int]) -> int:
        budget[0] += 1
        if budget[0] >= max_length:
            raise TooLong
        r = rnd.random() if depth < 10 else 1.0
        if r > 0.25:
            return 1
        budget[0] += 1
        return 2 + sum(gen(depth + 1, budget) for _ in range(rnd.randint(2, 10)))

    out: list[int] = []
    while len(out) < n:
        try:
            length = gen(1, [0])
        except TooLong:
            continue
        if min_length < length < max_length:
            out.append(length)
    return out


def test_length_distribution_matches_recursive_process() -> None:
    from scipy.stats import ks_2samp

    splits, _ = lo.generate_listops(n_train=3000, n_val=0, n_test=0, min_length=50,
                                    max_length=300, seed=1, workers=1, progress=False)
    naive = _naive_lengths(1000, 50, 300, seed=1)
    assert ks_2samp(naive, splits["train"]["lengths"]).pvalue > 1e-3


def test_lra_lengths_label_distribution() -> None:
    """At LRA lengths (501..1999) labels 0 and 9 dominate: majority baseline ~17% (docs/lra_tasks.md, ListOps)."""
    splits, info = lo.generate_listops(n_train=3000, n_val=0, n_test=0, seed=0, workers=1,
                                       progress=False)
    labels = splits["train"]["labels"]
    freq = np.bincount(labels, minlength=10) / labels.size
    assert np.argmax(freq) in (0, 9)
    assert 0.14 < freq.max() < 0.21
    assert 0.14 < freq[0] < 0.21 and 0.14 < freq[9] < 0.21
    assert (freq[1:9] > 0.05).all() and (freq[1:9] < 0.12).all()
    assert 0.07 < info["acceptance_rate"] < 0.095  # reference: 8.2% (docs/lra_tasks.md, ListOps)
    lengths = splits["train"]["lengths"]
    assert 850 < np.median(lengths) < 1100 and lengths.min() > 500 and lengths.max() < 2000


@pytest.mark.parametrize("kwargs, name", [
    (dict(min_length=500, max_length=500), "min_length"),
    (dict(min_length=10, max_length=11), "min_length"),
    (dict(max_args=1), "max_args"),
    (dict(max_depth=0), "max_depth"),
    (dict(n_train=-1), "n_train"),
    (dict(n_train=0, n_val=0, n_test=0), "n_train"),
    (dict(max_depth=2, max_args=3, min_length=10, max_length=20), "min_length"),
])
def test_bad_config_values(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        lo.ListOpsConfig(**kwargs)


def test_bad_config_types() -> None:
    with pytest.raises(TypeError, match="seed"):
        lo.ListOpsConfig(seed="0")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_length"):
        lo.ListOpsConfig(max_length=2000.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="workers"):
        lo.generate_listops(workers=0, **SMALL)


def test_progress_line_only_after_delay() -> None:
    quiet = io.StringIO()
    with Progress(10, "x", stream=quiet, min_seconds=60) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""
    loud = io.StringIO()
    with Progress(10, "ListOps", stream=loud, min_seconds=0) as bar:
        bar.update(5)
        bar.update(5)
    text = loud.getvalue()
    assert "ListOps: 10/10" in text and "ETA" in text and text.endswith("\n")


def test_short_training_examples_mix_into_train_only(tmp_path) -> None:
    from sparsegraph.experiments.lra import load_task

    kw = dict(n_train=120, n_val=20, n_test=20, min_length=60, max_length=120, seed=2,
              cache_dir=tmp_path, progress=False, workers=1)
    plain = load_task("listops", **kw)
    mixed = load_task("listops", short_fraction=0.25, short_min_length=10, short_max_length=40, **kw)
    train = mixed["train"]
    short = train.lengths < 40
    assert short.sum() == 30 and ((train.lengths > 60) | short).all()
    assert train.tokens.shape == (120, plain.seq_len) == (120, 120)
    for row, length, label in zip(train.tokens, train.lengths, train.labels):
        toks = lo.decode_ids(row)
        assert len(toks) == length and lo.evaluate(toks) == label  # padded with PAD, labels right
    for split in ("val", "test"):  # the very examples of the unmixed task
        np.testing.assert_array_equal(mixed[split].tokens, plain[split].tokens)
    np.testing.assert_array_equal(train.tokens[:90], plain["train"].tokens[:90])
    with pytest.raises(ValueError, match="short_max_length=62"):
        load_task("listops", short_fraction=0.25, short_min_length=10, short_max_length=62, **kw)
    with pytest.raises(ValueError, match="short_fraction=1"):
        load_task("listops", short_fraction=1, **kw)
