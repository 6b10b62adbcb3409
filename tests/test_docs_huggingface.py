"""docs/huggingface.md runs: its python blocks in order (one namespace, as a reader would paste
them), then its `sparsegraph` commands, in a scratch directory, offline, on tiny models."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may touch the network

PAGE = Path(__file__).resolve().parent.parent / "docs" / "huggingface.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_page_has_an_example_for_every_part() -> None:
    code = "\n".join(_blocks("python"))
    for needle in ("sghf.apply(", "sghf.remove(", "load_encoder(", "SparseGraphAttention(", "TransformerEncoderLayer",
                   '"layer_types"', "max_len=256", "save_pretrained"):
        assert needle in code, needle
    commands = [line for block in _blocks("console") for line in block.splitlines() if line.startswith("$ ")]
    assert any("--init-from" in c for c in commands)
    assert "PARITY_TABLE" not in PAGE.read_text() and "SPEED_TABLE" not in PAGE.read_text()


def test_page_examples_run(tmp_path: Path, monkeypatch, capsys) -> None:
    from sparsegraph.experiments.cli import main

    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for i, block in enumerate(_blocks("python")):
        exec(compile(block, f"{PAGE.name}[python block {i}]", "exec"), namespace)
    out = capsys.readouterr().out
    assert "torch.Size([2, 48])" in out
    assert "['sliding_window:window=8,causal=true', 'sliding_window:window=8,causal=true']" in out
    assert "BigBirdModel cannot run sparsegraph attention" in out
    assert "bigbird_hf:block=16,random=2,max_len=4096" in out
    assert "256 torch.Size([1, 200, 32])" in out
    assert float((namespace["want"] - namespace["got"]).abs().max()) <= 1e-4
    assert out.count("True") >= 2 and "False" not in out
    commands = [line[2:] for block in _blocks("console") for line in block.splitlines() if line.startswith("$ ")]
    for line in commands:
        argv = shlex.split(line)
        assert argv[0] == "sparsegraph"
        assert main(argv[1:]) == 0, line
    err = capsys.readouterr().err
    assert "initialised 31 tensors under 'encoder.' from tiny-roberta" in err
    results = json.loads((tmp_path / "runs" / "roberta-window" / "results.json").read_text())
    assert "best" in results
