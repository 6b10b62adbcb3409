"""The training loop on a tiny model: exact resume after SIGKILL, accumulation, bf16, evaluation,
early stopping, results, errors."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st

from sparsegraph.experiments.train.config import OptimConfig, RunConfig, TrainConfig
from sparsegraph.experiments.train import Callback, Trainer, load_model_weights
from sparsegraph.experiments.train.result import Best, RunResult
from sparsegraph.experiments.train.checkpoint import load_checkpoint
from sparsegraph.experiments.train.metrics import read_metrics
from sparsegraph.experiments.train.progress import ProgressBar, format_duration

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_tiny as tiny  # noqa: E402

SCRIPT = str(Path(__file__).resolve().parent / "train_tiny.py")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def cfg(**train) -> tiny.TinyConfig:
    base = tiny.TinyConfig()
    return dataclasses.replace(base, train=dataclasses.replace(base.train, **train))


class GradLog(Callback):
    def __init__(self) -> None:
        self.grads: dict[int, dict[str, torch.Tensor]] = {}

    def on_before_optimizer_step(self, trainer, step) -> None:
        self.grads[step] = {n: p.grad.detach().clone() for n, p in trainer.model.named_parameters()}


def _timing_free(records):
    return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in records]


def test_kill_and_resume_equals_uninterrupted(tmp_path: Path) -> None:
    """A run SIGKILLed right after a checkpoint (mid-epoch, with dropout, accumulation, warm-up and
    an evaluation in between) and resumed reaches bit-identical weights and the same metrics log as
    a run never interrupted."""
    overrides = ["train.steps=20", "train.checkpoint_every=5", "train.grad_accum=2", "train.eval_every=4"]
    common = [a for o in overrides for a in ("--set", o)]
    killed = subprocess.Popen([sys.executable, SCRIPT, str(tmp_path / "run"), "--kill-after", "15", *common],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # The uninterrupted reference runs here meanwhile (same code, one thread, same seed).
    from sparsegraph.experiments.infra import config as C
    ref_cfg = C.from_dict(tiny.TinyConfig, C.apply_overrides(C.to_dict(tiny.TinyConfig()), overrides, tiny.TinyConfig))
    ref = tiny.make_trainer(tmp_path / "ref", ref_cfg)
    ref.fit()
    _, err = killed.communicate(timeout=600)
    assert killed.returncode == -signal.SIGKILL, err.decode()[-2000:]
    ck = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in ck.glob("step-*.pt"))[-1] == "step-000000015.pt"
    assert not (tmp_path / "run" / "results.json").exists()
    state = load_checkpoint(ck / "step-000000015.pt")
    assert (state["epoch"], state["position"]) == (1, 3)  # 12 batches per epoch: resumes mid-epoch
    resumed = subprocess.run([sys.executable, SCRIPT, str(tmp_path / "run"), "--resume", "--out",
                              str(tmp_path / "run.pt"), *common], capture_output=True)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert b"resumed from" in resumed.stderr
    a, b = ref.model.state_dict(), torch.load(tmp_path / "run.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert _timing_free(read_metrics(tmp_path / "ref" / "metrics.jsonl")) == _timing_free(
        read_metrics(tmp_path / "run" / "metrics.jsonl"))
    ra = json.loads((tmp_path / "ref" / "results.json").read_text())
    rb = json.loads((tmp_path / "run" / "results.json").read_text())
    assert ra["best"] == rb["best"] and ra["test_at_best"] == rb["test_at_best"]


@settings(max_examples=4, deadline=None)
@given(st.sampled_from([2, 4, 8]), st.integers(0, 3))
def test_gradient_accumulation_equals_one_large_batch(tmp_path_factory, accum: int, seed: int) -> None:
    runs = []
    for a in (1, accum):
        c = cfg(steps=3, grad_accum=a, eval_every=0, test_split="")
        c = dataclasses.replace(c, run=dataclasses.replace(c.run, seed=seed))
        log = GradLog()
        t = tiny.make_trainer(tmp_path_factory.mktemp("acc"), c, [log], model_kwargs={"dropout": 0.0})
        t.fit()
        runs.append((log, t.model.state_dict()))
    (g1, w1), (g2, w2) = runs
    for step in (1, 2, 3):
        for name in g1.grads[step]:
            torch.testing.assert_close(g2.grads[step][name], g1.grads[step][name], rtol=1e-5, atol=1e-7)
    for name in w1:
        torch.testing.assert_close(w2[name], w1[name], rtol=1e-4, atol=1e-5)


class DtypeTask(tiny.ClassifyTask):
    def __init__(self) -> None:
        self.dtypes: set[torch.dtype] = set()

    def loss_and_metrics(self, model, batch):
        logits = model(batch["tokens"])
        self.dtypes.add(logits.dtype)
        return super().loss_and_metrics(model, batch)


def test_bf16_autocast_runs_and_learns(tmp_path: Path) -> None:
    c = cfg(steps=60, precision="bf16", eval_every=20)
    c = dataclasses.replace(c, optim=dataclasses.replace(c.optim, lr=0.03))
    task = DtypeTask()
    tiny.seed_everything(0, "model")
    t = Trainer(tiny.TinyClassifier(), task, tiny.ToyData(), train=c.train, optim=c.optim, run=c.run,
                config=c, run_dir=tmp_path)
    first = t.evaluate("val")
    results = t.fit()
    assert task.dtypes == {torch.bfloat16}  # the forward really ran under bf16 autocast
    assert all(p.dtype == torch.float32 for p in t.model.parameters())  # master weights stay fp32
    final = results.best_eval
    assert math.isfinite(final["loss"]) and final["loss"] < 0.8 * first["loss"]
    assert final["accuracy"] > first["accuracy"]


def test_fp16_on_cpu_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"train.precision = 'fp16' needs a CUDA device"):
        tiny.make_trainer(tmp_path, cfg(precision="fp16"))


@settings(max_examples=6, deadline=None)
@given(st.lists(st.sampled_from([0.5, 0.6, 0.7, 0.8]), min_size=1, max_size=7), st.integers(0, 3),
       st.sampled_from(["max", "min"]))
def test_best_tracking_and_early_stopping(tmp_path_factory, script: list[float], patience: int, mode: str) -> None:
    """Against a scripted sequence of evaluation scores: the best step, the stop step and best.pt."""

    class Scripted(tiny.ClassifyTask):
        def __init__(self) -> None:
            self.evals = 0

        def loss_and_metrics(self, model, batch):
            loss, metrics = super().loss_and_metrics(model, batch)
            # an evaluation (eval mode, no gradients); the input check before step 1 runs in
            # eval mode with gradients and is not one
            if not model.training and not torch.is_grad_enabled():
                metrics = {"score": script[min(self.evals, len(script) - 1)]}
                self.evals += 1
            return loss, metrics

    every = 2
    c = cfg(steps=every * len(script), eval_every=every, eval_batch_size=40, patience=patience,
            metric="score", mode=mode, test_split="")
    d = tmp_path_factory.mktemp("es")
    tiny.seed_everything(0, "model")
    t = Trainer(tiny.TinyClassifier(), Scripted(), tiny.ToyData(), train=c.train, optim=c.optim,
                run=c.run, config=c, run_dir=d)
    res = t.fit()
    # reference: strict improvement, stop after `patience` evaluations in a row without one
    best, best_i, bad, stop_i = None, None, 0, len(script) - 1
    for i, v in enumerate(script):
        if best is None or (v > best if mode == "max" else v < best):
            best, best_i, bad = v, i, 0
        else:
            bad += 1
            if patience and bad >= patience:
                stop_i = i
                break
    assert res.steps == every * (stop_i + 1)
    assert res.stopped_early == (stop_i < len(script) - 1 or (patience > 0 and bad >= patience))
    assert res.best == Best(metric="score", value=best, step=every * (best_i + 1))
    assert load_checkpoint(d / "checkpoints" / "best.pt")["step"] == every * (best_i + 1)
    evals = [r for r in read_metrics(d / "metrics.jsonl") if r["split"] == "val"]
    assert [r["score"] for r in evals] == script[: stop_i + 1]


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 45))
def test_evaluation_weights_uneven_batches(tmp_path_factory, eval_batch: int) -> None:
    """The evaluation mean over batches of unequal size equals the mean over all examples."""
    t = tiny.make_trainer(tmp_path_factory.mktemp("ev"), cfg(eval_batch_size=eval_batch))
    got = t.evaluate("val")
    x, y = t.data.splits["val"]
    t.model.eval()
    with torch.no_grad():
        logits = t.model(x)
    acc = (logits.argmax(-1) == y).float().mean().item()
    loss = torch.nn.functional.cross_entropy(logits, y).item()
    assert got["count"] == len(y)
    assert got["accuracy"] == pytest.approx(acc, abs=1e-6)
    assert got["loss"] == pytest.approx(loss, rel=1e-5)


def test_results_files_and_test_at_best(tmp_path: Path) -> None:
    c = cfg(steps=12, eval_every=4, checkpoint_every=0, keep_last=1)
    c = dataclasses.replace(c, optim=dataclasses.replace(c.optim, lr=0.03))
    t = tiny.make_trainer(tmp_path, c)
    res = t.fit()
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert RunResult.read(tmp_path) == res and on_disk["steps"] == 12 and res.world_size == 1
    assert on_disk["best"] == {"metric": res.best.metric, "value": res.best.value, "step": res.best.step}
    assert (tmp_path / "config.toml").read_text().startswith("[run]")
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records if r["split"] == "train"] == [2, 4, 6, 8, 10, 12]
    assert [r["step"] for r in records if r["split"] == "val"] == [4, 8, 12]
    assert all({"loss", "accuracy", "lr", "grad_norm", "tokens_per_s"} <= r.keys() for r in records if r["split"] == "train")
    # test_at_best is the test score of the best checkpoint's weights
    final = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.model.load_state_dict(load_checkpoint(tmp_path / "checkpoints" / "best.pt")["model"])
    assert t.evaluate("test") == res.test_at_best
    t.model.load_state_dict(final)
    assert t.evaluate("test") == res.test_final
    # keep_last=1: the newest step file, plus the best one
    steps = sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*.pt"))
    assert steps[-1] == "step-000000012.pt" and len(steps) <= 2
    # the run's picture: loss and accuracy against the step
    assert (tmp_path / "curves.png").stat().st_size > 5000


def test_curves_png_redraws_and_needs_a_run_directory(tmp_path: Path) -> None:
    from sparsegraph.experiments.train.plots import plot_run

    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        plot_run(tmp_path)
    (tmp_path / "metrics.jsonl").write_text("")
    assert plot_run(tmp_path) is None  # nothing logged yet
    rows = [{"step": s, "epoch": 0, "split": "train", "loss": 2.0 / s, "accuracy": 0.1 * s} for s in (1, 2, 3)]
    rows.append({"step": 3, "split": "val", "loss": 0.9, "accuracy": 0.25, "count": 8.0})
    text = "\n".join(json.dumps(r) for r in rows) + '\n{"step": 4, "spl'  # a torn last line
    (tmp_path / "metrics.jsonl").write_text(text)
    out = plot_run(tmp_path, tmp_path / "c.png")
    assert out == tmp_path / "c.png" and out.stat().st_size > 5000


def test_refuses_to_overwrite_a_run_and_resume_without_checkpoint_starts(tmp_path: Path) -> None:
    tiny.make_trainer(tmp_path, cfg(steps=2, eval_every=0, test_split="")).fit()
    with pytest.raises(ValueError, match=r"already has checkpoints; pass --resume"):
        tiny.make_trainer(tmp_path, cfg(steps=2)).fit()
    err = io.StringIO()
    c = cfg(steps=2, eval_every=0, test_split="")
    tiny.seed_everything(0, "model")
    t = Trainer(tiny.TinyClassifier(), tiny.ClassifyTask(), tiny.ToyData(), train=c.train, optim=c.optim,
                run=c.run, run_dir=tmp_path / "fresh", stream=err)
    assert t.fit(resume=True).steps == 2
    assert "no checkpoint" in err.getvalue()
    # resuming a finished run trains no further and reports the same
    t2 = tiny.make_trainer(tmp_path, cfg(steps=2, eval_every=0, test_split=""))
    assert t2.fit(resume=True).steps == 2


def test_non_finite_loss_stops_with_a_clear_error(tmp_path: Path) -> None:
    class NaNTask(tiny.ClassifyTask):
        def loss_and_metrics(self, model, batch):
            loss, m = super().loss_and_metrics(model, batch)
            return loss * float("nan"), m

    c = cfg()
    tiny.seed_everything(0)
    t = Trainer(tiny.TinyClassifier(), NaNTask(), tiny.ToyData(), train=c.train, optim=c.optim, run=c.run, run_dir=tmp_path)
    with pytest.raises(FloatingPointError, match=r"training loss is nan at step 1"):
        t.fit()


def test_bad_batch_geometry(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"train.batch_size \(10\) must be divisible by train.grad_accum \(4\)"):
        TrainConfig(batch_size=10, grad_accum=4)
    with pytest.raises(ValueError, match=r"yields no full batch of 200 examples"):
        tiny.make_trainer(tmp_path, cfg(batch_size=200)).fit()
    with pytest.raises(TypeError, match=r"objective must have a loss_and_metrics"):
        Trainer(tiny.TinyClassifier(), object(), tiny.ToyData(), train=TrainConfig(), optim=OptimConfig(),
                run=RunConfig(device="cpu"), run_dir=tmp_path)


def test_load_model_weights_prefix_tile_and_errors(tmp_path: Path) -> None:
    torch.manual_seed(0)
    src = torch.nn.Sequential()
    src.add_module("encoder", torch.nn.Embedding(4, 3))
    src.add_module("head", torch.nn.Linear(3, 2))
    dst = torch.nn.Sequential()
    dst.add_module("encoder", torch.nn.Embedding(10, 3))
    dst.add_module("cls", torch.nn.Linear(3, 5))
    state = {"model": src.state_dict()}
    with pytest.raises(ValueError, match=r"shape mismatch: \['encoder.weight: checkpoint \(4, 3\) vs model \(10, 3\)'\]"):
        load_model_weights(dst, state, prefix="encoder.", target_prefix="encoder.")
    names = load_model_weights(dst, state, prefix="encoder.", target_prefix="encoder.", tile=["encoder.weight"])
    assert names == ["encoder.weight"]
    w = src.encoder.weight.detach()
    assert torch.equal(dst.encoder.weight.detach(), torch.cat([w, w, w])[:10])
    with pytest.raises(ValueError, match=r"no weights under prefix 'decoder.'"):
        load_model_weights(dst, state, prefix="decoder.")


def test_progress_bar_modes() -> None:
    clock = iter(range(0, 10_000, 5)).__next__
    out = io.StringIO()
    bar = ProgressBar(10, mode="lines", interval=12, stream=out, clock=lambda: clock())
    for s in range(1, 11):
        bar.update(s, loss=1.0 / s, accuracy=0.5, tokens_per_s=12_345.0)
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and 2 <= len(lines) < 10  # periodic, not every step
    assert lines[-1].startswith("train  10/10  loss 0.1000  acc 0.500  12.3k tok/s  done in")
    tty = io.StringIO()
    tty.isatty = lambda: True  # type: ignore[method-assign]
    bar = ProgressBar(4, stream=tty, clock=lambda: clock())
    bar.update(1, loss=2.0)
    assert bar.mode == "bar" and "\r" in tty.getvalue() and "[#####" in tty.getvalue() and "ETA" in tty.getvalue()
    assert format_duration(75) == "1m15s" and format_duration(3900) == "1h05m" and format_duration(float("nan")) == "?"


def test_metrics_are_mirrored_to_tensorboard_when_it_is_installed(tmp_path: Path, monkeypatch) -> None:
    """With ``torch.utils.tensorboard`` importable, every numeric field goes to TensorBoard as
    ``<split>/<name>`` at its step (a stand-in writer records the calls; tensorboard itself is an
    optional dependency)."""
    import types

    calls = []

    class FakeWriter:
        def __init__(self, log_dir):
            calls.append(("dir", log_dir))

        def add_scalar(self, tag, value, step):
            calls.append((tag, value, step))

        def flush(self):
            pass

        def close(self):
            calls.append(("closed",))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    tiny.make_trainer(tmp_path, cfg(steps=4, eval_every=2, log_every=2, test_split="")).fit()
    assert calls[0] == ("dir", str(tmp_path / "tensorboard")) and calls[-1] == ("closed",)
    tags = {(c[0], c[2]) for c in calls if len(c) == 3}
    assert {("train/loss", 2), ("train/lr", 4), ("val/accuracy", 2), ("val/loss", 4)} <= tags
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert len([c for c in calls if len(c) == 3]) == sum(
        sum(1 for k, v in r.items() if k not in ("step", "split") and isinstance(v, (int, float))) for r in records)


def test_run_result_round_trips_and_rejects_other_files(tmp_path: Path) -> None:
    res = RunResult(name="r", steps=3, epochs_started=1, stopped_early=False,
                    best=Best("accuracy", 0.5, 3), best_eval={"accuracy": 0.5}, parameters=10,
                    world_size=1, precision="fp32", train_seconds=1.5, tokens_per_s=None,
                    peak_memory_bytes=2**20, test_final={"accuracy": 0.4}, test_at_best=None)
    res.write(tmp_path)
    assert RunResult.read(tmp_path) == res
    (tmp_path / "results.json").write_text('{"steps": 3, "colour": "red"}')
    with pytest.raises(ValueError, match="unknown keys \\['colour'\\]"):
        RunResult.read(tmp_path)
    with pytest.raises(FileNotFoundError):
        RunResult.read(tmp_path / "nowhere")
