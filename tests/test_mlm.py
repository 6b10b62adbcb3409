"""Masked-LM data: byte tokenizer, BERT 80/10/10 masking, deterministic resumable batches."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from sparsegraph.experiments.text.mlm import (
    IGNORE_INDEX, ByteTokenizer, MLMData, MLMDataConfig, MLMObjective, find_text_files, load_tokenizer,
    mask_tokens, stdlib_text_files,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))

TOK = ByteTokenizer()


@given(st.text())
def test_byte_tokenizer_round_trip(text: str) -> None:
    ids = TOK.encode(text)
    assert ids.dtype == np.int64 and len(ids) == len(text.encode("utf-8"))
    assert ((ids >= 3) & (ids < TOK.vocab_size)).all()
    assert TOK.decode(ids) == text


@given(st.integers(1, 200), st.integers(0, 2**32 - 1), st.floats(0.01, 1.0), st.data())
def test_mask_tokens_properties(n: int, seed: int, p: float, data) -> None:
    ids = np.array(data.draw(st.lists(st.integers(3, 258), min_size=n, max_size=n)), dtype=np.int64)
    special = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    random_ids = np.arange(3, 259)
    inputs, labels = mask_tokens(ids, np.random.default_rng(seed), mask_prob=p, mask_id=1,
                                 special=special, random_ids=random_ids)
    chosen = labels != IGNORE_INDEX
    eligible = int((~special).sum())
    assert chosen.sum() == (max(1, round(p * eligible)) if eligible else 0)
    assert not (chosen & special).any()
    assert (labels[chosen] == ids[chosen]).all()
    assert (inputs[~chosen] == ids[~chosen]).all()  # only chosen positions are corrupted
    changed = inputs[chosen]
    assert ((changed == 1) | ((changed >= 3) & (changed < 259))).all()  # [MASK] or a real token
    again = mask_tokens(ids, np.random.default_rng(seed), mask_prob=p, mask_id=1, special=special,
                        random_ids=random_ids)
    assert (again[0] == inputs).all() and (again[1] == labels).all()


def test_mask_80_10_10_proportions() -> None:
    """Of ~30k chosen positions: 80% [MASK], 10% a random token, 10% unchanged (within 5 sigma)."""
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 259, size=(2000, 100))
    kinds = np.zeros(3)
    total = 0
    for row in ids:
        inp, lab = mask_tokens(row, rng, mask_prob=0.15, mask_id=1, special=np.zeros(100, bool),
                               random_ids=np.arange(3, 259))
        c = lab != IGNORE_INDEX
        total += c.sum()
        kinds += [(inp[c] == 1).sum(), ((inp[c] != 1) & (inp[c] != row[c])).sum(), (inp[c] == row[c]).sum()]
    assert total == 2000 * 15
    frac = kinds / total
    # a random replacement hits the original token with probability 1/256
    expected = np.array([0.8, 0.1 * 255 / 256, 0.1 + 0.1 / 256])
    sigma = np.sqrt(expected * (1 - expected) / total)
    assert (np.abs(frac - expected) < 5 * sigma).all(), frac


def _data(n_tokens: int = 5000, max_length: int = 32, seed: int = 1) -> MLMData:
    stream = np.random.default_rng(seed).integers(3, 259, size=n_tokens)
    return MLMData(stream, TOK, max_length=max_length, val_fraction=0.1, split_seed=seed)


@given(st.integers(2, 3000), st.integers(1, 40), st.integers(0, 5))
@settings(max_examples=30)
def test_sequences_cover_the_stream_and_splits_partition(n_tokens: int, max_length: int, split_seed: int) -> None:
    if -(-n_tokens // max_length) < 2:
        with pytest.raises(ValueError, match="need at least 2"):
            _data(n_tokens, max_length, split_seed)
        return
    stream = np.random.default_rng(split_seed).integers(3, 259, size=n_tokens)
    d = MLMData(stream, TOK, max_length=max_length, val_fraction=0.1, split_seed=split_seed)
    train, val = set(d._split_rows["train"].tolist()), set(d._split_rows["val"].tolist())
    assert not train & val and train | val == set(range(len(d._seqs))) and val and train
    real = np.concatenate([d._seqs[r, : d._lengths[r]] for r in range(len(d._seqs))])
    assert (real == stream).all()


@settings(max_examples=15)
@given(st.integers(1, 50), st.integers(0, 3), st.integers(0, 3), st.sampled_from(["train", "val"]))
def test_batches_resume_exactly_and_are_deterministic(batch_size: int, seed: int, epoch: int, split: str) -> None:
    d, d2 = _data(), _data()
    full = list(d.batches(split, batch_size, seed=seed, epoch=epoch))
    n = d.split_size(split)
    assert len(full) == -(-n // batch_size) and sum(len(b["input_ids"]) for b in full) == n
    k = len(full) // 2
    tail = list(d2.batches(split, batch_size, seed=seed, epoch=epoch, start_step=k))
    assert len(tail) == len(full) - k
    for a, b in zip(full[k:], tail):
        assert all(torch.equal(a[key], b[key]) for key in a)
    b0 = full[0]
    assert b0["input_ids"].dtype == torch.int64 and b0["padding_mask"].dtype == torch.bool
    assert ((b0["labels"] == IGNORE_INDEX) | ~b0["padding_mask"]).all()  # padding is never a target


def test_masks_change_with_epoch_but_validation_is_fixed() -> None:
    d = _data()
    e0 = d.example("train", 3, seed=0, epoch=0)
    e1 = d.example("train", 3, seed=0, epoch=1)
    assert not np.array_equal(e0["labels"], e1["labels"])
    v0 = d.example("val", 0, seed=0, epoch=0)
    v5 = d.example("val", 0, seed=0, epoch=5)
    assert np.array_equal(v0["input_ids"], v5["input_ids"]) and np.array_equal(v0["labels"], v5["labels"])
    assert not np.array_equal(d.example("train", 3, seed=1, epoch=0)["labels"], e0["labels"])


def test_mlm_task_loss_is_cross_entropy_at_the_chosen_positions() -> None:
    torch.manual_seed(0)
    d = _data()
    batch = next(d.batches("train", 4, seed=0))

    class Random(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = torch.nn.Embedding(259, 259)

        def forward(self, ids, padding_mask):
            return self.table(ids)

    m = Random()
    loss, metrics = MLMObjective().loss_and_metrics(m, batch)
    logits = m(batch["input_ids"], batch["padding_mask"])
    sel = batch["labels"] != IGNORE_INDEX
    want = torch.nn.functional.cross_entropy(logits[sel], batch["labels"][sel])
    torch.testing.assert_close(loss, want)
    assert metrics["count"] == int(sel.sum()) > 0
    assert MLMObjective().num_tokens(batch) == int((~batch["padding_mask"]).sum())


def test_text_files_and_stdlib_corpus(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("hello world " * 50)
    (tmp_path / "a" / "skip.bin").write_bytes(b"\x00")
    (tmp_path / "b.md").write_text("more text " * 50)
    files = find_text_files([tmp_path / "a", tmp_path / "b.md"], (".txt",))
    assert [f.name for f in files] == ["x.txt", "b.md"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_text_files([tmp_path / "nope.txt"], (".txt",))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no files ending in"):
        find_text_files([tmp_path / "empty"], (".txt",))
    d = MLMData.from_config(MLMDataConfig(paths=(str(tmp_path / "a"), str(tmp_path / "b.md")), max_length=16))
    assert d.num_tokens_total == 600 + 500
    std = stdlib_text_files()
    assert len(std) > 100 and all(f.suffix == ".py" for f in std)
    assert not any("test" in f.parts[:-1] or "site-packages" in f.parts for f in std)
    d = MLMData.from_config(MLMDataConfig(demo=True, max_bytes=20_000, max_length=64))
    assert d.num_tokens_total == 20_000
    with pytest.raises(ValueError, match="exclude each other"):
        MLMData.from_config(MLMDataConfig(demo=True, paths=("x",)))


def test_user_tokenizer_hook(tmp_path: Path) -> None:
    tok = load_tokenizer("train_tiny:CharTokenizer")
    (tmp_path / "t.txt").write_text("abc xyz " * 40)
    d = MLMData.from_config(MLMDataConfig(paths=(str(tmp_path / "t.txt"),), max_length=8), tok)
    b = next(d.batches("train", 2, seed=0))
    assert int(b["input_ids"].max()) < 30
    with pytest.raises(ValueError, match="'module:callable'"):
        load_tokenizer("no-colon")
    with pytest.raises(ValueError, match="cannot import module 'not_a_module_xyz'"):
        load_tokenizer("not_a_module_xyz:T")
    with pytest.raises(ValueError, match="has no callable 'Nope'"):
        load_tokenizer("train_tiny:Nope")
    with pytest.raises(ValueError, match=r"token ids must be in \[0, vocab_size=30\)"):
        MLMData(np.array([0, 40, 2, 3]), tok, max_length=2)
