"""The language-modelling measurement scripts on tiny budgets, and the runnable examples of
docs/language_modelling.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from sparsegraph.experiments.measure import charlm_ablation, lm_speed

DOC = Path(__file__).resolve().parent.parent / "docs" / "language_modelling.md"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_verdict_and_spread() -> None:
    assert lm_speed.spread([3.0, 1.0, 2.0], "{:.1f}") == "2.0 (1.0-3.0)"
    assert lm_speed.verdict([10, 11, 12], [5, 5.5, 6]) == "2.00x"
    assert lm_speed.verdict([10, 11, 12], [9, 10.5, 13]).startswith("not a result")
    assert lm_speed.verdict([10, 10.1], [9.9, 10.0]).startswith("not a result")


def test_ablation_variants_follow_the_paper() -> None:
    v = charlm_ablation.variants(8, 128, 4, 4)
    assert len(v) == 7 and v["full causal"] == "causal"
    assert v["increasing w"] == "window_schedule:window=8,last=128,layers=4"
    assert v["decreasing w"] == "window_schedule:window=128,last=8,layers=4"
    assert v["fixed w"] == "window_schedule:window=68,last=68,layers=4"  # the schedule's mean: same keys
    assert v["fixed w, dilation on 2 heads"].endswith(",dilation=[1,1,2,2],dilate_from=2")


def test_ablation_script_runs_and_prints_the_table(tmp_path: Path, capsys) -> None:
    argv = ["--steps", "2", "--seeds", "0,1", "--out", str(tmp_path / "abl"),
            "--variants", "fixed w;increasing w, dilation on 2 heads;full causal",
            "--set", "data.max_bytes=40000", "--set", "data.seq_len=64", "--set", "data.eval_windows=4",
            "--set", "model.d_model=32", "--set", "model.d_ff=64", "--set", "model.n_heads=2",
            "--set", "train.batch_size=4", "--set", "train.eval_every=0",
            "--set", "model.attention.block_size=16", "--windows", "4,16"]
    assert charlm_ablation.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("commit ") and "charlm_ablation" in out and "thread" in out
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert [r.split("|")[1].strip() for r in rows[2:]] == ["fixed w", "increasing w, dilation on 2 heads",
                                                           "full causal", "unigram baseline"]
    assert all(re.search(r"\d\.\d{3} ± \d\.\d{3}", r) for r in rows[2:5])
    assert (tmp_path / "abl" / "table.md").read_text().strip() == out.strip()
    assert len(list((tmp_path / "abl").glob("*-seed1"))) == 3
    assert "`window_schedule:window=4,last=16,layers=4,dilation=[2,2],dilate_from=2`" in out  # 2 heads


def test_lm_speed_train_and_decode_on_tiny_sizes() -> None:
    rows = lm_speed.train_speed([128], rounds=2, window=32, threads=1)
    assert {r["variant"] for r in rows} == {"window", "full-sdpa"}
    assert all(len(r["step_s"]) == 2 and r["peak_kib"] > 0 for r in rows)
    assert next(r for r in rows if r["variant"] == "full-sdpa")["backend"] == "sdpa is_causal"
    table = lm_speed.train_table(rows, 32)
    assert "| 128 | window 32 |" in table and "| 128 | full causal | sdpa is_causal |" in table
    rows = lm_speed.decode_speed(256, window=32, rounds=2, chunk=4, threads=1)
    by = {r["variant"]: r for r in rows}
    assert by["window-rolling"]["capacity"] == [36, 36]  # 4 sinks + 32
    assert by["window-keep-all"]["capacity"][0] > 256 and by["full"]["capacity"][0] > 256
    assert by["window-rolling"]["cache_bytes"] < by["full"]["cache_bytes"]
    assert "rolling cache" in lm_speed.decode_table(rows, 32)


def test_the_docs_python_examples_run(tmp_path: Path, monkeypatch, capsys) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out
    assert "17.0" in out and "window: 4 sink(s) + a ring of 16 keys [20, 20] 10240" in out
    assert "phase 4: updates 4001-5000, seq_len 32768, lr x0.0625, window=512" in out
