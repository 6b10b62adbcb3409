"""Data parallelism: 2 processes (torchrun, gloo on CPU) train exactly like 1 process."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sparsegraph.experiments.train import Callback
from sparsegraph.experiments.train import distributed as D
from sparsegraph.experiments.train.metrics import read_metrics

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_tiny as tiny  # noqa: E402

SCRIPT = str(Path(__file__).resolve().parent / "train_tiny.py")


class GradLog(Callback):
    def __init__(self) -> None:
        self.grads: dict[int, dict[str, torch.Tensor]] = {}

    def on_before_optimizer_step(self, trainer, step) -> None:
        self.grads[step] = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters()}


def test_two_processes_equal_one(tmp_path: Path) -> None:
    """Same global batches: the all-reduced gradients of 2 processes (each on half of every batch,
    with 2 accumulation micro-batches) equal one process's on the whole batch; the weights after
    training agree; only rank 0 writes files; a model that differs between ranks is refused."""
    overrides = ["train.steps=4", "train.eval_every=2", "train.grad_accum=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", SCRIPT,
           str(tmp_path / "ddp"), "--dropout", "0", "--grads", str(tmp_path / "g"), "--out", str(tmp_path / "ddp.pt"),
           "--check-mismatch", str(tmp_path / "mismatch.txt"), *[a for o in overrides for a in ("--set", o)]]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    # Meanwhile, the single-process reference on the same global batches (no accumulation).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        from sparsegraph.experiments.infra import config as C
        cfg = C.from_dict(tiny.TinyConfig, C.apply_overrides(C.to_dict(tiny.TinyConfig()), overrides[:2], tiny.TinyConfig))
        log = GradLog()
        ref = tiny.make_trainer(tmp_path / "one", cfg, [log], model_kwargs={"dropout": 0.0})
        ref_results = ref.fit()
    finally:
        torch.set_num_threads(n)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err.decode()[-3000:]

    g0 = torch.load(tmp_path / "g.rank0.pt")
    g1 = torch.load(tmp_path / "g.rank1.pt")
    for name, g in log.grads[1].items():
        assert torch.equal(g0[name], g1[name])  # DDP leaves identical gradients on every rank
        torch.testing.assert_close(g0[name], g, rtol=1e-5, atol=1e-7)
    w_ddp = torch.load(tmp_path / "ddp.pt")
    for name, w in ref.model.state_dict().items():
        torch.testing.assert_close(w_ddp[name], w, rtol=1e-4, atol=1e-5)

    # Only rank 0 wrote: one copy of every record, the same steps as the single process.
    recs = read_metrics(tmp_path / "ddp" / "metrics.jsonl")
    assert [(r["step"], r["split"]) for r in recs] == [(r["step"], r["split"]) for r in read_metrics(tmp_path / "one" / "metrics.jsonl")]
    for r, q in zip(recs, read_metrics(tmp_path / "one" / "metrics.jsonl")):
        assert r.get("loss") == pytest.approx(q.get("loss"), rel=1e-4)
    import json
    res = json.loads((tmp_path / "ddp" / "results.json").read_text())
    assert res["world_size"] == 2 and res["steps"] == ref_results.steps
    assert res["best_eval"]["count"] == ref_results.best_eval["count"] == 40  # eval shards cover every example once
    assert (tmp_path / "mismatch.txt").read_text().startswith("the initial model (parameters, buffers, attention layouts) differs between ranks")


def test_shard_bounds_cover_every_row_once() -> None:
    for n in range(0, 30):
        for parts in range(1, 6):
            rows = [r for i in range(parts) for r in range(*D.shard_bounds(n, parts, i))]
            sizes = [D.shard_bounds(n, parts, i)[1] - D.shard_bounds(n, parts, i)[0] for i in range(parts)]
            assert rows == list(range(n)) and max(sizes) - min(sizes) <= 1
    batch = {"x": torch.arange(10).view(5, 2), "y": [1, 2, 3, 4, 5], "t": (torch.zeros(5), torch.ones(5))}
    part = D.shard(batch, 2, 1)
    assert part["x"].tolist() == [[6, 7], [8, 9]] and part["y"] == [4, 5] and len(part["t"][0]) == 2
    with pytest.raises(ValueError, match="disagree on the batch size"):
        D.batch_size_of({"x": torch.zeros(3), "y": torch.zeros(4)})


def test_fingerprint_sees_parameters_and_layouts() -> None:
    torch.manual_seed(0)
    a = tiny.TinyClassifier()
    b = tiny.TinyClassifier()
    assert D.model_fingerprint(a) != D.model_fingerprint(b)
    b.load_state_dict(a.state_dict())
    assert D.model_fingerprint(a) == D.model_fingerprint(b)
    b.layout_fingerprint = lambda: "other graphs"  # type: ignore[attr-defined]
    assert D.model_fingerprint(a) != D.model_fingerprint(b)
    assert D.model_fingerprint(a, tensors=False) != D.model_fingerprint(b, tensors=False)
