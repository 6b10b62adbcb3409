"""Self-pretraining (``--set pretrain.steps=N``): masking, the pretraining phase, the encoder the
classifier starts from, exact resume, config errors, and steps=0 being today's run.

Tiny settings throughout (a 1-layer width-32 model, 64-token needles, tens of steps): the whole
file runs in seconds on one thread."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sparsegraph.experiments.compare import results as resmod
from sparsegraph.experiments.compare import worker
from sparsegraph.experiments.compare.runspec import RUN_FILE, RunSpec, read_spec, write_spec
from sparsegraph.experiments.lra import Split, TaskData, load_task
from sparsegraph.experiments.lra.recipes import SelfPretrainConfig, get_recipe
from sparsegraph.experiments.lra.self_pretrain import (PRETRAIN_DIR, TaskMLMData, mask_id_of,
                                                       model_vocab_size)
from sparsegraph.experiments.text.mlm import IGNORE_INDEX
from sparsegraph.experiments.train import Trainer
from sparsegraph.experiments.train.checkpoint import CheckpointManager, load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

# 64-token needles, half the training examples 16 tokens long (padding to mask out), 4 filler ids
# (so the inputs have structure an MLM can learn: which ids occur, and where the padding starts).
DATA = ["data.length=64", "data.short_length=16", "data.short_fraction=0.5", "data.fillers=4",
        "data.n_train=256", "data.n_val=64", "data.n_test=64"]
MODEL = ["model.d_model=32", "model.n_heads=2", "model.n_layers=1", "model.d_ff=32",
         "model.block_size=16"]
TRAIN = ["train.steps=6", "train.batch_size=16", "train.eval_every=3", "train.log_every=3",
         "train.progress=off", "train.plots=false"]
PRETRAIN = ["pretrain.steps=30", "pretrain.eval_every=10", "pretrain.lr=3e-3",
            "pretrain.warmup_steps=3"]
# a random pattern, so the graph seed matters: both phases must use the same graph
PATTERN = "bigbird:block=16,window=3,random=1,global=1"


def _spec(*overrides: str, cache: Path) -> RunSpec:
    recipe = get_recipe("needles", "cpu", [*DATA, *MODEL, *TRAIN, *overrides])
    return RunSpec(task="needles", label="bigbird", spec=PATTERN, seed=3, recipe=recipe,
                   cache_dir=str(cache))


def _run(run_dir: Path, spec: RunSpec) -> Any:
    write_spec(spec, run_dir)
    return worker.train(run_dir)


def _final_state(run_dir: Path) -> dict[str, Any]:
    manager = CheckpointManager(run_dir / "checkpoints")
    return load_checkpoint(manager.path_for(manager.steps()[-1]))["model"]


def _assert_same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One uninterrupted self-pretrained run; records the classifier's weights as the
    fine-tuning trainer receives them."""
    root = tmp_path_factory.mktemp("spt")
    spec = _spec(*PRETRAIN, cache=root / "cache")
    seen: list[dict[str, torch.Tensor]] = []
    fit = Trainer.fit

    def recording_fit(self: Trainer, resume: bool = False) -> Any:
        if hasattr(self.model, "head"):  # the classifier (the masked LM has none)
            seen.append({k: v.clone() for k, v in self.model.state_dict().items()
                         if isinstance(v, torch.Tensor)})
        return fit(self, resume)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests below run (tests/conftest.py: one_thread)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Trainer, "fit", recording_fit)
            result = _run(root / "run", spec)
    finally:
        torch.set_num_threads(threads)
    return {"root": root, "run": root / "run", "spec": spec, "result": result, "start": seen}


# ------------------------------------------------------------------------------------------------
# masking
# ------------------------------------------------------------------------------------------------

def test_masking_touches_only_real_tokens_and_is_deterministic(tmp_path: Path) -> None:
    data = load_task("needles", cache_dir=tmp_path, progress=False,
                     **get_recipe("needles", "cpu", DATA).data)
    mlm = TaskMLMData(data, mask_prob=0.15)
    mask_id = mask_id_of(data)
    assert mask_id == data.vocab_size and int(data["train"].tokens.max()) < mask_id
    assert model_vocab_size(data, 0) == data.vocab_size and model_vocab_size(data, 5) == mask_id + 1
    train = data["train"]
    n_padded = 0
    for batch in mlm.batches("train", 32, seed=7, epoch=0):
        ids, labels, pad = batch["input_ids"].numpy(), batch["labels"].numpy(), batch["padding_mask"].numpy()
        chosen = labels != IGNORE_INDEX
        assert not (chosen & pad).any()                       # never a padding position
        assert (ids[pad] == data.pad_id).all()                # padding left as it was
        real = (~pad).sum(1)
        assert (chosen.sum(1) == np.maximum(1, np.round(0.15 * real))).all()
        assert (ids[~chosen] < mask_id).all() and (ids == mask_id).any()
        n_padded += int(pad.any(1).sum())
    assert n_padded > 0  # the short examples' padding was there to be avoided
    # the original id is the label, and padding follows the example's length
    ex = mlm.example("train", 5, seed=7, epoch=0)
    assert (ex["padding_mask"] == (np.arange(data.seq_len) >= train.lengths[5])).all()
    chosen = ex["labels"] != IGNORE_INDEX
    assert (ex["labels"][chosen] == train.tokens[5][chosen]).all()
    assert (ex["input_ids"][~chosen] == train.tokens[5][~chosen]).all()

    def epoch(seed: int, e: int, start: int = 0) -> list[dict[str, torch.Tensor]]:
        return list(mlm.batches("train", 32, seed=seed, epoch=e, start_step=start))

    first, again = epoch(7, 0), epoch(7, 0)
    for a, b in zip(first, again, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    for a, b in zip(first[3:], epoch(7, 0, start=3), strict=True):  # resume mid-epoch: the same
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(first[0]["input_ids"], epoch(7, 1)[0]["input_ids"])
    assert not torch.equal(first[0]["input_ids"], epoch(8, 0)[0]["input_ids"])
    val = [list(mlm.batches("val", 16, seed=7, epoch=e)) for e in (0, 3)]  # val masks: fixed
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(*val, strict=True))


def test_pixel_and_pair_data_mask_every_position_and_both_documents() -> None:
    """``pad_id = None`` (pixels): every position is real, 0 included, and the mask id is 256;
    a pair task's second documents are sequences too."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 256, size=(6, 32)).astype(np.uint8)
    tokens[:, :8] = 0  # black pixels are tokens, not padding
    split = Split(tokens=tokens, labels=np.zeros(6, np.int64), lengths=np.full(6, 32),
                  tokens2=tokens[::-1].copy(), lengths2=np.full(6, 32))
    data = TaskData("pathfinder", {"train": split, "val": split}, 256, 2, None, True)
    mlm = TaskMLMData(data, mask_prob=0.5)
    assert mlm.mask_id == 256 and mlm.split_size("train") == 12
    chosen_any = np.zeros(32, bool)
    for i in range(12):
        ex = mlm.example("train", i, seed=0)
        assert not ex["padding_mask"].any()
        chosen = ex["labels"] != IGNORE_INDEX
        assert chosen.sum() == 16
        source = tokens[i] if i < 6 else tokens[::-1][i - 6]
        assert (ex["labels"][chosen] == source[chosen]).all()
        chosen_any |= chosen
    assert chosen_any[:8].any()


# ------------------------------------------------------------------------------------------------
# the two phases
# ------------------------------------------------------------------------------------------------

def test_pretraining_writes_its_run_dir_and_its_mlm_loss_falls(pretrained) -> None:
    run: Path = pretrained["run"]
    pre = run / PRETRAIN_DIR
    for name in ("metrics.jsonl", "results.json", "config.toml"):
        assert (pre / name).is_file(), name
    assert CheckpointManager(pre / "checkpoints").steps()[-1] == 30
    evals = [json.loads(x) for x in (pre / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in evals if r["split"] == "val"]
    assert [r["step"] for r in evals] == [0, 10, 20, 30]
    summary = pretrained["result"].extra["self_pretrain"]
    # untrained: about a uniform guess over the 14 ids; then well below it, and falling
    assert abs(summary["val_mlm_loss_start"] - np.log(14)) < 0.3
    assert summary["val_mlm_loss_final"] < summary["val_mlm_loss_start"] - 0.7
    assert evals[-1]["loss"] < evals[1]["loss"] < evals[0]["loss"]
    assert summary["steps"] == 30 and summary["mask_id"] == 13 and summary["lr"] == 3e-3
    # the classifier was fine-tuned after it, and results.json says so
    stored = json.loads((run / "results.json").read_text())
    assert stored["steps"] == 6 and stored["extra"]["self_pretrain"] == summary
    rec = resmod.read_run(run, task="needles", label="bigbird", spec=PATTERN, seed=3)
    assert rec.status == "done" and rec.pretrain_steps == 30
    assert rec.pretrain_mlm_loss == pytest.approx(summary["val_mlm_loss_final"])
    config = pretrained["spec"].recipe.to_dict()
    tr = resmod.TaskResults(task="needles", preset="cpu", config=config, length=80, seq_len=64,
                            data="", baseline={"test": 0.25}, runs=[rec],
                            patterns=[{"label": "bigbird", "spec": PATTERN}])
    md = resmod.markdown_table(tr)
    assert "self-pretrained 30 MLM steps (mask 0.15)" in md.splitlines()[0]
    assert f"Final MLM loss on the validation inputs: bigbird {summary['val_mlm_loss_final']:.4g}" in md
    assert "self-pretrained 30 MLM steps" in pretrained["spec"].recipe.describe()


def test_classifier_starts_from_the_pretrained_encoder_on_the_same_graph(pretrained) -> None:
    run: Path = pretrained["run"]
    starts = pretrained["start"]
    assert len(starts) == 1  # the fine-tuning trainer (the MLM model has no classifier head)
    ckpt = load_checkpoint(run / PRETRAIN_DIR / "checkpoints" / "step-000000030.pt")["model"]
    encoder = {k: v for k, v in ckpt.items() if k.startswith("encoder.") and isinstance(v, torch.Tensor)}
    start = {k: v for k, v in starts[0].items() if k.startswith("encoder.")}
    assert start.keys() == encoder.keys() and len(start) > 10
    for k in start:
        assert torch.equal(start[k], encoder[k]), k
    assert start["encoder.token.weight"].shape[0] == 14  # the task's 13 ids + the mask id
    # the same graph: the layouts both phases built (layout hashes in the checkpoints) are equal
    final = _final_state(run)
    graphs = [k for k in ckpt if k.endswith("_extra_state")]
    assert graphs and all(ckpt[k] == final[k] for k in graphs)
    assert ckpt[graphs[0]]["graph_seed"] == 3 and ckpt[graphs[0]]["layouts"]
    # and build_classifier itself, given the checkpoint
    spec = pretrained["spec"]
    data = load_task("needles", cache_dir=spec.cache_dir, progress=False, **spec.recipe.data)
    cfg = spec.recipe.model_config(vocab_size=model_vocab_size(data, 30), pad_id=data.pad_id,
                                   pattern=PATTERN, max_len=data.seq_len, graph_seed=spec.seed)
    model = worker.build_classifier(spec, data, cfg, pretrained=run / PRETRAIN_DIR / "checkpoints" / "step-000000030.pt")
    for k, v in model.state_dict().items():
        if k in encoder:
            assert torch.equal(v, encoder[k]), k


class _Killed(Exception):
    """Stands for a kill right after a checkpoint reached the disk."""


def test_kill_in_pretraining_resumes_to_the_same_weights(pretrained, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pretrained["spec"]
    run = tmp_path / "run"
    save = CheckpointManager.save

    def killing_save(self: CheckpointManager, step: int, state: dict, *, is_best: bool = False) -> Path:
        path = save(self, step, state, is_best=is_best)
        if self.dir.parent.name == PRETRAIN_DIR and step == 10:
            raise _Killed()
        return path

    monkeypatch.setattr(CheckpointManager, "save", killing_save)
    with pytest.raises(_Killed):
        _run(run, spec)
    assert not (run / "results.json").exists() and not (run / "checkpoints").exists()
    monkeypatch.setattr(CheckpointManager, "save", save)
    result = worker.train(run)  # resumes the pretraining at step 10, then fine-tunes
    _assert_same_state(_final_state(run / PRETRAIN_DIR), _final_state(pretrained["run"] / PRETRAIN_DIR))
    _assert_same_state(_final_state(run), _final_state(pretrained["run"]))
    assert result.extra == pretrained["result"].extra

    def losses(run_dir: Path) -> list[tuple]:
        records = [json.loads(x) for x in (run_dir / PRETRAIN_DIR / "metrics.jsonl").read_text().splitlines()]
        return [(r["step"], r["split"], r["loss"]) for r in records]

    assert losses(run) == losses(pretrained["run"])  # no step trained twice, the same losses


# ------------------------------------------------------------------------------------------------
# configuration
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("override, needle", [
    ("pretrain.steps=-1", "pretrain.steps must be an int >= 0 (0 = no self-pretraining), got -1"),
    ("pretrain.mask_prob=0", "pretrain.mask_prob must be a number in (0, 1)"),
    ("pretrain.mask_prob=1", "got 1.0"),
    ("pretrain.mask_prob=1.5", "got 1.5"),
    ("pretrain.mask_prob=-0.2", "got -0.2"),
    ("pretrain.lr=0", "pretrain.lr must be a finite number > 0 or none (= optim.lr), got 0.0"),
    ("pretrain.batch_size=0", "pretrain.batch_size must be an int >= 1 or none (= train.batch_size), got 0"),
    ("pretrain.warmup_steps=-3", "pretrain.warmup_steps must be an int >= 0 or none"),
    ("pretrain.eval_every=-1", "pretrain.eval_every must be an int >= 0 or none"),
])
def test_bad_config_values_name_the_parameter_and_value(override: str, needle: str) -> None:
    with pytest.raises(ValueError) as err:
        get_recipe("needles", "cpu", [override])
    assert needle in str(err.value)


def test_bad_combinations_and_direct_construction() -> None:
    with pytest.raises(ValueError, match=r"pretrain.mask_prob .* got 0\.0"):
        SelfPretrainConfig(steps=5, mask_prob=0.0)
    with pytest.raises(ValueError, match="pretrain.steps must be an int >= 0 .* got 2.5"):
        SelfPretrainConfig(steps=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="data.fresh = true"):
        get_recipe("needles", "cpu", ["pretrain.steps=5", "data.fresh=true"])
    with pytest.raises(ValueError, match=r"pretrain.batch_size \(6\) must be divisible by train.grad_accum \(4\)"):
        get_recipe("needles", "cpu", ["pretrain.steps=5", "train.grad_accum=4", "pretrain.batch_size=6"])
    split = Split(tokens=np.ones((4, 8), np.uint8), labels=np.zeros(4, np.int64), lengths=np.full(4, 8))
    with pytest.raises(ValueError, match="mask_prob must be a number in \\(0, 1\\), got 1.0"):
        TaskMLMData(TaskData("needles", {"train": split, "val": split}, 5, 2, 0, False), mask_prob=1.0)
    with pytest.raises(ValueError, match="needs the needles data's 'val' split"):
        TaskMLMData(TaskData("needles", {"train": split}, 5, 2, 0, False), mask_prob=0.15)
    with pytest.raises(ValueError, match="pretrain_steps must be an int >= 0, got -1"):
        model_vocab_size(TaskData("needles", {"train": split}, 5, 2, 0, False), -1)


def test_steps_zero_is_todays_run(tmp_path: Path) -> None:
    """With ``pretrain.steps = 0`` the worker trains exactly what it trained before self-pretraining
    existed (rebuilt here step by step: the task's vocabulary, the classifier, the trainer)."""
    from sparsegraph.experiments.models import SequenceClassifier
    from sparsegraph.experiments.train.classification import ClassificationObjective
    from sparsegraph.experiments.train.config import RunConfig
    from sparsegraph.experiments.train.rng import seed_everything

    spec = _spec(cache=tmp_path / "cache")
    assert spec.recipe.pretrain == SelfPretrainConfig() and spec.recipe.pretrain.steps == 0
    result = _run(tmp_path / "now", spec)
    assert not (tmp_path / "now" / PRETRAIN_DIR).exists() and result.extra == {}
    # the worker before this change
    data = load_task("needles", cache_dir=spec.cache_dir, progress=False, **spec.recipe.data)
    cfg = spec.recipe.model_config(vocab_size=data.vocab_size, pad_id=data.pad_id, pattern=PATTERN,
                                   max_len=data.seq_len, graph_seed=spec.seed)
    seed_everything(spec.seed, "model")
    model = SequenceClassifier(cfg, data.num_classes)
    before = tmp_path / "before"
    trainer = Trainer(model, ClassificationObjective(), data, train=spec.recipe.train,
                      optim=spec.recipe.optim, run=RunConfig(name=spec.name, seed=spec.seed,
                                                             out_dir=str(tmp_path), device="cpu"),
                      config=spec, run_dir=before)
    old = trainer.fit(resume=True)
    _assert_same_state(_final_state(tmp_path / "now"), _final_state(before))
    assert dataclasses.replace(result, train_seconds=0, peak_memory_bytes=0, tokens_per_s=0) == \
        dataclasses.replace(old, train_seconds=0, peak_memory_bytes=0, tokens_per_s=0)
    # a run.toml written before the [pretrain] section existed reads back as the same run, so
    # existing comparisons are resumed, not refused as "set up differently"
    text = (tmp_path / "now" / RUN_FILE).read_text()
    assert "[recipe.pretrain]" in text
    head, _, tail = text.partition("[recipe.pretrain]")
    rest = tail.split("\n[", 1)
    (tmp_path / "now" / RUN_FILE).write_text(head + ("[" + rest[1] if len(rest) > 1 else ""))
    assert "pretrain" not in (tmp_path / "now" / RUN_FILE).read_text()
    assert read_spec(tmp_path / "now") == spec
    rec = resmod.read_run(tmp_path / "now", task="needles", label="bigbird", spec=PATTERN, seed=3)
    assert rec.pretrain_steps == 0 and rec.pretrain_mlm_loss is None
