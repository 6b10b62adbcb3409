"""The character-level LM task: corpora, splits, batches, baseline, objective, staged training
with exact resume, and `sparsegraph train` on a charlm config."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsegraph.experiments.text import charlm as C
from sparsegraph.experiments.text.charlm_config import CharLMDataConfig
from sparsegraph.experiments.train.metrics import read_metrics
from sparsegraph.experiments.train.phases import Phase, PhaseSchedule

sys.path.insert(0, str(Path(__file__).resolve().parent))
import charlm_tiny  # noqa: E402

SCRIPT = str(Path(__file__).resolve().parent / "charlm_tiny.py")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


SOURCE = '''#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Module docstring.

Second paragraph."""
import os  # noqa: F401

# A comment block
# that goes on.
def f(x):
    """Return x."""
    y = x + 1  # trailing comment
    return y


class K:
    """A class."""
'''


def test_extract_prose_keeps_docstrings_and_comments_in_order() -> None:
    prose = C.extract_prose(SOURCE)
    assert prose == ("Module docstring.\n\nSecond paragraph.\n\nA comment block that goes on.\n\n"
                     "Return x.\n\ntrailing comment\n\nA class.")
    assert "import" not in prose and "return" not in prose and "noqa" not in prose
    assert C.extract_prose("def broken(:\n") == ""


def test_stdlib_prose_is_deterministic_and_budgeted() -> None:
    a, files = C.stdlib_prose(40_000)
    b, _ = C.stdlib_prose(40_000)
    assert a == b and len(a) == 40_000 and files >= 1
    text = a.decode("utf-8", errors="replace")
    assert text.count(" the ") > 50  # English prose, not code
    cfg = CharLMDataConfig(max_bytes=40_000)
    corpus = C.load_corpus(cfg)
    assert corpus.train.size + corpus.val.size + corpus.test.size == 40_000
    assert abs(corpus.val.size - 2_000) <= 400 and abs(corpus.test.size - 2_000) <= 400
    block, which = C.split_blocks(40_000, 0.05, 0.05)
    assert block == 200 and which.size == 200
    held = np.flatnonzero(which == 1)
    assert held.min() < 20 and held.max() > 180  # spread through the corpus, not a tail
    raw = np.frombuffer(a, dtype=np.uint8)
    assert corpus.val.tobytes() == b"".join(raw[k * 200:(k + 1) * 200].tobytes() for k in held)
    assert C.load_corpus(cfg).sha256 == corpus.sha256


def test_enwik8_and_text8_loaders_use_the_standard_splits_scaled(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, 1100, dtype=np.uint8).tobytes()
    (tmp_path / "enwik8").write_bytes(raw)
    train, val, test = C.load_split_file(tmp_path, "enwik8", (900, 50, 50))
    assert train.tobytes() == raw[:900] and val.tobytes() == raw[900:950] and test.tobytes() == raw[950:1000]
    with zipfile.ZipFile(tmp_path / "text8.zip", "w") as z:
        z.writestr("text8", raw)
    assert [a.tobytes() for a in C.load_split_file(tmp_path, "text8", (900, 50, 50))] == [raw[:900], raw[900:950], raw[950:1000]]
    cfg = CharLMDataConfig(corpus="enwik8", data_dir=str(tmp_path), splits=(900, 50, 50), seq_len=16)
    corpus = C.load_corpus(cfg)
    assert corpus.train.size == 900 and corpus.name == "enwik8"
    with pytest.raises(ValueError, match="fewer than the splits"):
        C.load_split_file(tmp_path, "enwik8")  # 90M + 5M + 5M
    with pytest.raises(FileNotFoundError, match="mattmahoney"):
        C.load_split_file(tmp_path / "nothing", "enwik8")
    with pytest.raises(ValueError, match="needs data.data_dir"):
        CharLMDataConfig(corpus="text8")


def test_directory_and_gcide_corpora(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_text("second file " * 50)
    (tmp_path / "a.txt").write_text("first file " * 50)
    (tmp_path / ".hidden").write_text("never")
    data, files = C.directory_text(tmp_path)
    assert files == 2 and data.startswith(b"first file") and b"never" not in data
    import gzip
    with gzip.open(tmp_path / "gcide.dict.dz", "wb") as f:
        f.write(b"A dictionary entry. " * 100)
    assert C.gcide_text(str(tmp_path), 50)[0] == (b"A dictionary entry. " * 3)[:50]
    with pytest.raises(FileNotFoundError, match="dict-gcide"):
        C.gcide_text(str(tmp_path / "none"))


def test_unigram_bits() -> None:
    assert C.unigram_bits(np.arange(256, dtype=np.uint8)) == pytest.approx(8.0)
    assert C.unigram_bits(np.zeros(10, dtype=np.uint8)) == 0.0
    data = np.frombuffer(b"aab", dtype=np.uint8)
    assert C.unigram_bits(data) == pytest.approx(-(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3))


def test_window_starts_are_a_function_of_seed_step_and_index() -> None:
    a = C.window_starts(1, 5, np.arange(8), 1000)
    assert np.array_equal(a[3:], C.window_starts(1, 5, np.arange(3, 8), 1000))  # not of the batch size
    assert not np.array_equal(a, C.window_starts(1, 6, np.arange(8), 1000))
    assert not np.array_equal(a, C.window_starts(2, 5, np.arange(8), 1000))
    many = C.window_starts(0, 0, np.arange(50_000), 10)
    assert many.min() == 0 and many.max() == 9
    counts = np.bincount(many, minlength=10)
    assert np.all(np.abs(counts - 5000) < 5 * math.sqrt(5000 * 0.9))


def corpus_of(n: int = 5000) -> C.CharLMCorpus:
    rng = np.random.default_rng(1)
    return C.CharLMCorpus("test", rng.integers(0, 256, n, dtype=np.uint8), rng.integers(0, 256, 300, dtype=np.uint8),
                          rng.integers(0, 256, 200, dtype=np.uint8))


def test_batches_train_windows_and_evaluation_windows() -> None:
    corpus = corpus_of()
    data = C.CharLMData(corpus, 32)
    it = data.batches("train", 6, seed=4)
    first = [next(it) for _ in range(4)]
    again = next(data.batches("train", 6, seed=4, start_step=3))
    assert torch.equal(again["input_ids"], first[3]["input_ids"])
    b = first[0]
    assert b["input_ids"].shape == b["targets"].shape == (6, 32)
    assert torch.equal(b["input_ids"][:, 1:], b["targets"][:, :-1])
    starts = C.window_starts(4, 0, np.arange(6), corpus.train.size - 32)
    for row, s in enumerate(starts):
        assert bytes(b["input_ids"][row].numpy().astype(np.uint8)) == corpus.train[s:s + 32].tobytes()
    val = list(data.batches("val", 4, seed=0))
    windows = torch.cat([v["input_ids"] for v in val])
    assert windows.shape == ((300 - 1) // 32, 32)
    assert windows.flatten().numpy().astype(np.uint8).tobytes() == corpus.val[: windows.numel()].tobytes()
    data.set_seq_len(64)
    assert next(data.batches("train", 2, seed=0))["input_ids"].shape == (2, 64)
    data.set_seq_len(None)
    assert data.seq_len == 32
    with pytest.raises(ValueError, match="train split has 5000"):
        data.set_seq_len(6000)
    limited = C.CharLMData(corpus, 32, eval_windows=3)
    assert sum(v["input_ids"].shape[0] for v in limited.batches("test", 2, seed=0)) == 3


def test_objective_reports_bits_per_byte() -> None:
    class Uniform(torch.nn.Module):
        def forward(self, ids):
            return torch.zeros(*ids.shape, 256)

    batch = next(C.CharLMData(corpus_of(), 16).batches("train", 3, seed=0))
    loss, metrics = C.CharLMObjective().loss_and_metrics(Uniform(), batch)
    assert loss.item() == pytest.approx(math.log(256))
    assert metrics["bpc"].item() == pytest.approx(8.0)
    assert metrics["count"] == 48
    assert C.CharLMObjective().num_tokens(batch) == 48


def test_phase_schedule() -> None:
    s = PhaseSchedule.doubling(3, [4, 5, 6], 32, {"window": 8}, lr_scale=1.0)
    assert s.total_steps == 15 and s.starts == (0, 4, 9)
    assert [s.index(k) for k in (0, 3, 4, 8, 9, 14, 100)] == [0, 0, 1, 1, 2, 2, 2]
    assert [(p.seq_len, p.params["window"], p.lr_scale) for p in s.phases] == [(32, 8, 1.0), (64, 16, 0.5), (128, 32, 0.25)]
    assert s.max_seq_len(10) == 128

    class M:
        params = None

        def set_pattern_params(self, **kw):
            self.params = kw

    class D:
        length = None

        def set_seq_len(self, n):
            self.length = n

    m, d = M(), D()
    assert s.apply(m, d, 5) == 1 and m.params == {"window": 16} and d.length == 64
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        Phase(steps=0)
    with pytest.raises(TypeError, match="no set_seq_len"):
        s.apply(m, object(), 0)
    assert "phase 1: updates 5-9, seq_len 64, lr x0.5, window=16" in s.describe()


def _weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


def test_staged_training_killed_and_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    """SIGKILL right after the checkpoint at the phase boundary (update 6, written in phase 0),
    resume, SIGKILL again after update 8 (a checkpoint written in phase 1: longer sequences, wider
    window, half the learning rate), resume to the end: bit-identical to a run never interrupted."""
    killed = subprocess.Popen([sys.executable, SCRIPT, str(tmp_path / "run"), "--kill-at", "6"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ref = charlm_tiny.make_trainer(tmp_path / "ref")
    ref.fit()
    _, err = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, err.decode()[-2000:]
    again = subprocess.run([sys.executable, SCRIPT, str(tmp_path / "run"), "--resume", "--kill-at", "8"],
                           capture_output=True, timeout=300)
    assert again.returncode == -signal.SIGKILL, again.stderr.decode()[-2000:]
    assert b"resumed from" in again.stderr and b"step 6" in again.stderr
    assert not (tmp_path / "run" / "results.json").exists()
    resumed = subprocess.run([sys.executable, SCRIPT, str(tmp_path / "run"), "--resume", "--out", str(tmp_path / "w.pt")],
                             capture_output=True)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert b"resumed from" in resumed.stderr and b"step 8" in resumed.stderr
    assert _weights_equal(torch.load(tmp_path / "w.pt", weights_only=True), ref.model.state_dict())
    strip = lambda rs: [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in rs]  # noqa: E731
    assert strip(read_metrics(tmp_path / "run" / "metrics.jsonl")) == strip(read_metrics(tmp_path / "ref" / "metrics.jsonl"))
    # the schedule took effect: window 16 and sequences of 64 in phase 1, half the learning rate
    assert ref.model.layer_specs() == ["sink_window:window=16,sinks=2"] * 2 and ref.data.seq_len == 64
    train = [r for r in read_metrics(tmp_path / "ref" / "metrics.jsonl") if r["split"] == "train"]
    from sparsegraph.experiments.train.optim import lr_factor
    cfg = charlm_tiny.resolve_charlm_config(charlm_tiny.RAW)
    for r in train:
        f = lr_factor(r["step"] - 1, schedule="cosine", warmup_steps=2, total_steps=12)
        assert r["lr"] == pytest.approx(3e-3 * f * (1.0 if r["step"] <= 6 else 0.5))
    assert cfg.model.max_len == 64
    results = json.loads((tmp_path / "ref" / "results.json").read_text())
    assert "test_at_best" in results and results["best"]["metric"] == "bpc"


def test_sparsegraph_train_runs_a_charlm_config(tmp_path: Path) -> None:
    from sparsegraph.experiments import cli

    cfg = tmp_path / "lm.toml"
    cfg.write_text(f'''
[run]
name = "lm"
out_dir = "{tmp_path / 'runs'}"

[data]
task = "charlm"
preset = "cpu"
max_bytes = 40000
seq_len = 64
eval_windows = 8

[model]
d_model = 32
n_layers = 2
n_heads = 2
d_ff = 64

[train]
steps = 6
eval_every = 3
batch_size = 4
progress = "off"
plots = false
''')
    assert cli.main(["train", str(cfg), "--set", "model.attention.pattern=window_schedule:window=8,last=32,layers=2"]) == 0
    run = tmp_path / "runs" / "lm"
    results = json.loads((run / "results.json").read_text())
    assert results["extra"]["unigram_bits"] == pytest.approx(C.unigram_bits(C.load_corpus(CharLMDataConfig(max_bytes=40000)).train))
    assert sum(results["extra"]["corpus"]["bytes"].values()) == 40000 and results["extra"]["corpus"]["bytes"]["val"] > 1000
    assert results["best"]["metric"] == "bpc" and "bpc" in results["test_at_best"]
    saved = (run / "config.toml").read_text()
    assert 'pattern = "window_schedule:window=8,last=32,layers=2"' in saved and "vocab_size = 256" in saved
    # the saved config alone continues the run (here with more steps)
    assert cli.main(["train", str(run / "config.toml"), "--resume", "--set", "train.steps=8"]) == 0
    assert json.loads((run / "results.json").read_text())["steps"] == 8
