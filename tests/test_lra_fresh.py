"""Training data drawn fresh every step (``load_task(..., fresh=True)``) and the difficulty
curriculum: the identity contract (step, index), independence from the batch size and from the
background workers, exact resume in the trainer, val/test unchanged and held out, errors."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsegraph.experiments.lra import listops, load_task
from sparsegraph.experiments.lra import recall as recall_mod
from sparsegraph.experiments.lra.fresh import Curriculum, FreshTrain, split_generator

DOCS = Path(__file__).resolve().parent.parent / "docs"

#: A short ListOps (lengths 11-39) whose val/test generate in milliseconds.
SMALL_LISTOPS = dict(n_train=64, n_val=16, n_test=16, min_length=10, max_length=40, seed=2)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _listops(cache: Path, **kw) -> object:
    return load_task("listops", cache_dir=cache, progress=False, **{**SMALL_LISTOPS, **kw})


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


# --- ListOps' per-example generator ----------------------------------------------------------

def test_listops_examples_are_pure_and_distributed_like_the_dataset() -> None:
    from scipy import stats

    cfg = listops.ListOpsConfig(min_length=64, max_length=256)
    ex = [listops.generate_example(cfg, 5, "train", i) for i in range(600)]
    again = listops.generate_example(cfg, 5, "train", 7)
    assert np.array_equal(again[0], ex[7][0]) and again[1] == ex[7][1]
    other = listops.generate_example(cfg, 5, "val", 7)
    assert not np.array_equal(other[0], ex[7][0])
    for tokens, label, needed in ex[:100]:
        assert needed is None and listops.evaluate(tokens) == label and 64 < tokens.size < 256
    splits, _ = listops.generate_listops(n_train=600, n_val=0, n_test=0, min_length=64,
                                         max_length=256, seed=1, workers=1, progress=False)
    lengths = np.array([t.size for t, _, _ in ex])
    labels = np.array([lab for _, lab, _ in ex])
    # the same distribution as the dataset's vectorised generator (fixed seeds: deterministic)
    assert stats.ks_2samp(lengths, splits["train"]["lengths"]).pvalue > 0.05
    table = [np.bincount(labels, minlength=10), np.bincount(splits["train"]["labels"], minlength=10)]
    assert stats.chi2_contingency(table).pvalue > 0.05


def test_listops_cached_splits_are_unchanged() -> None:
    """The per-example generator leaves the dataset (and GENERATOR_VERSION's caches) alone: this
    digest was taken before it was added."""
    cfg = listops.ListOpsConfig(n_train=3000, n_val=300, n_test=300, min_length=64,
                                max_length=256, seed=3)
    splits, _ = listops.generate_listops(cfg, workers=1, progress=False)
    h = hashlib.sha256()
    for k in ("train", "val", "test"):
        for a in ("tokens", "labels", "lengths"):
            h.update(np.ascontiguousarray(splits[k][a]).tobytes())
    assert h.hexdigest() == "8a1e8cae8175d286a331b0a9917c5009da1474fd6037414b91fcff5f42127c31"
    assert listops.GENERATOR_VERSION == 1


# --- the identity contract -------------------------------------------------------------------

def test_example_is_a_function_of_seed_step_index_not_of_the_batch_size(cache: Path) -> None:
    """The contract: the batch of step s with batch size B holds examples 0..B-1 of step s, so a
    batch of 8 is the first 8 rows of the batch of 16 at the same step."""
    task = _listops(cache, fresh=True, fresh_workers=0)
    f = task.fresh
    b16 = f.arrays(5, 16, seed=3)
    b8 = f.arrays(5, 8, seed=3)
    assert _equal({k: v[:8] for k, v in b16.items()}, b8)
    assert _equal(f.arrays(5, 16, seed=3), b16)                 # deterministic
    row, label, length = f.example_row(5, 11, seed=3)
    assert np.array_equal(row, b16["tokens"][11]) and label == b16["labels"][11]
    assert length == b16["lengths"][11] and (row[length:] == 0).all()
    assert not np.array_equal(f.arrays(6, 8, seed=3)["tokens"], b8["tokens"])   # another step
    assert not np.array_equal(f.arrays(5, 8, seed=4)["tokens"], b8["tokens"])   # another seed
    other = _listops(cache, fresh=True, fresh_workers=0, seed=3)                 # another data seed
    assert not np.array_equal(other.fresh.arrays(5, 8, seed=3)["tokens"], b8["tokens"])
    assert (b16["step"] == 5).all() and (b16["index"] == np.arange(16)).all()
    for tokens, lab, n in zip(b16["tokens"], b16["labels"], b16["lengths"]):
        assert listops.evaluate(tokens[:n]) == lab


def test_batches_resume_at_any_step_and_workers_do_not_change_them(cache: Path) -> None:
    inline = _listops(cache, fresh=True, fresh_workers=0)
    background = _listops(cache, fresh=True, fresh_workers=2)
    it = inline.batches("train", 6, seed=1)
    first = [next(it) for _ in range(5)]
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.int64 for v in first[0].values())
    resumed = background.batches("train", 6, seed=1, start_step=2)
    for want in first[2:]:
        assert _equal(next(resumed), want)
    resumed.close()  # stops the background workers
    with pytest.raises(ValueError, match=r"epoch=1: expected 0"):
        next(inline.batches("train", 6, seed=1, epoch=1))
    with pytest.raises(ValueError, match=r"drawn fresh every step: its one epoch never ends"):
        inline.steps_per_epoch("train", 6)


# --- val/test: unchanged, held out -----------------------------------------------------------

@pytest.mark.parametrize("name, params", [
    ("listops", SMALL_LISTOPS),
    ("pathfinder", dict(n_train=40, n_val=6, n_test=6, contour_length=6)),
    ("recall", dict(n_train=40, n_val=20, n_test=20, length=64)),
])
def test_val_and_test_are_unchanged_by_fresh(cache: Path, name: str, params: dict) -> None:
    fixed = load_task(name, cache_dir=cache, progress=False, **params)
    fresh = load_task(name, cache_dir=cache, progress=False, fresh=True, fresh_workers=0, **params)
    assert "train" not in fresh.splits and "train" in fixed.splits
    for split in ("val", "test"):
        for field in ("tokens", "labels", "lengths"):
            assert np.array_equal(getattr(fresh[split], field), getattr(fixed[split], field))
    with pytest.raises(KeyError, match="drawn fresh every step"):
        fresh["train"]
    batch = next(fresh.batches("train", 4, seed=0))
    assert batch["tokens"].shape == (4, fixed.seq_len) == (4, fresh.seq_len)
    assert "drawn fresh every step" in fresh.summary()


@pytest.mark.parametrize("name, params", [
    ("listops", SMALL_LISTOPS),
    ("needles", dict(n_train=0, n_val=2, n_test=2, length=64, short_length=16,
                     short_fraction=0.5)),
    ("pathfinder", dict(n_train=0, n_val=2, n_test=2, contour_length=6)),
])
def test_fresh_lengths_count_the_tokens_other_than_padding(cache: Path, name: str,
                                                           params: dict) -> None:
    """What the fixed splits record as ``lengths``: needles' short examples are padded inside
    their row, so their length is ``short_length``, not the row's width."""
    task = load_task(name, cache_dir=cache, progress=False, fresh=True, fresh_workers=0, **params)
    b = task.fresh.arrays(3, 16, seed=1)
    expected = (np.full(16, task.seq_len) if task.pad_id is None
                else (b["tokens"] != task.pad_id).sum(axis=1))
    assert np.array_equal(b["lengths"], expected)
    if name == "needles":
        assert set(b["lengths"].tolist()) == {16, 64}  # short and full examples both drawn


def test_fresh_rows_never_repeat_a_val_or_test_row() -> None:
    """recall with 8 possible examples: val/test hold some, and fresh rows redraw instead."""
    tiny = dict(length=6, pairs=1, keys=2, values=2, fillers=1)
    task = load_task("recall", n_train=0, n_val=3, n_test=3, fresh=True, fresh_workers=0, **tiny)
    held = {r.tobytes() for s in ("val", "test") for r in task[s].tokens}
    drawn = task.fresh.arrays(0, 64)["tokens"]
    assert not any(r.tobytes() in held for r in drawn)
    cfg = recall_mod.RecallConfig(**tiny)
    plain = FreshTrain.build("recall", split_generator(recall_mod.generate_example), cfg, seed=0,
                             width=6, dtype=np.uint8, pad_id=0, fields={}, workers=0)
    assert any(r.tobytes() in held for r in plain.arrays(0, 64)["tokens"])  # redraws happened
    full = load_task("recall", n_train=0, n_val=40, n_test=40, fresh=True, fresh_workers=0, **tiny)
    with pytest.raises(RuntimeError, match="too small to hold out val/test"):
        full.fresh.arrays(0, 4)


# --- curriculum ------------------------------------------------------------------------------

def test_listops_curriculum_ramps_length_and_stays_deterministic(cache: Path) -> None:
    ramp = {"steps": 10, "start": {"min_length": 2, "max_length": 12}}
    task = _listops(cache, fresh=True, fresh_workers=0, curriculum=ramp)
    f = task.fresh
    early, late = f.arrays(0, 16), f.arrays(10, 16)
    assert (early["lengths"] < 12).all() and (early["lengths"] > 2).all()
    assert (late["lengths"] > 10).all() and (late["lengths"] < 40).all()
    assert late["lengths"].mean() > early["lengths"].mean()
    assert f.difficulty(0) == {"min_length": 2, "max_length": 12}
    assert f.difficulty(5) == {"min_length": 6, "max_length": 26}       # halfway, rounded half up
    assert f.difficulty(10) == f.difficulty(10**6) == {"min_length": 10, "max_length": 40}
    lo = [f.difficulty(s)["max_length"] for s in range(12)]
    assert lo == sorted(lo)
    again = _listops(cache, fresh=True, fresh_workers=2, curriculum=ramp)
    it = again.batches("train", 16, seed=0, start_step=0, as_torch=False)
    assert _equal({k: v for k, v in next(it).items()}, {k: v.astype(np.int64) for k, v in early.items()})
    it.close()


def test_pathfinder_curriculum_stages_distractors_and_contour_length(cache: Path) -> None:
    ramp = {"steps": 100, "start": {"num_distractor_snakes": 0, "contour_length": 6},
            "ramp": "staged", "stages": 4}
    task = load_task("pathfinder", cache_dir=cache, progress=False, n_train=0, n_val=4,
                     n_test=4, contour_length=9, fresh=True, fresh_workers=0, curriculum=ramp)
    f = task.fresh
    # 4 levels at 0, 1/3, 2/3 and all of the way (step 100); contour lengths 7 and 8 snap to
    # the nearest of LRA's 6/9/14; the configured 6 distractors of length 3 (contour 9) at the end
    assert [(s, c.num_distractor_snakes, c.contour_length) for s, c in f.levels] == [
        (0, 0, 6), (34, 2, 6), (67, 4, 9), (100, 6, 9)]
    ink = {s: (f.arrays(s, 6)["tokens"] > 0).mean() for s in (0, 100)}
    assert ink[0] < ink[100]                   # no distractors and short paths: less ink


def test_linear_ramp_snaps_contour_length_to_the_grid() -> None:
    c = Curriculum(steps=8, start={"contour_length": 6})
    from sparsegraph.experiments.lra.fresh import CurriculumField

    grid = {"contour_length": CurriculumField(grid=(6, 9, 14))}
    got = [c.params(s, {"contour_length": 14}, grid)["contour_length"] for s in range(10)]
    assert got == [6, 6, 9, 9, 9, 9, 14, 14, 14, 14]


# --- the trainer: exact resume ---------------------------------------------------------------

class _Stop(Exception):
    pass


def _trainer(run_dir: Path, data, steps: int, callbacks=()):
    from sparsegraph.experiments.models import AttentionConfig, ModelConfig, SequenceClassifier
    from sparsegraph.experiments.train import Trainer
    from sparsegraph.experiments.train.classification import ClassificationObjective
    from sparsegraph.experiments.train.config import OptimConfig, RunConfig, TrainConfig
    from sparsegraph.experiments.train.rng import seed_everything

    seed_everything(0, "model")
    model = SequenceClassifier(ModelConfig(vocab_size=16, d_model=32, n_layers=1, n_heads=2,
                                           d_ff=32, dropout=0.1, max_len=data.seq_len, pad_id=0,
                                           attention=AttentionConfig(pattern="full", block_size=16)), 10)
    train = TrainConfig(steps=steps, batch_size=8, eval_every=3, checkpoint_every=3, log_every=3,
                        eval_batches=1, progress="off", plots=False)
    return Trainer(model, ClassificationObjective(), data, train=train,
                   optim=OptimConfig(lr=3e-3, warmup_steps=2), run=RunConfig(name="r", seed=1),
                   run_dir=run_dir, callbacks=list(callbacks))


def test_trainer_resumes_fresh_data_bit_identically(cache: Path, tmp_path: Path, one_thread) -> None:
    """A run stopped after step 4 (checkpoint at 3) and resumed equals one never stopped; the
    resumed one draws with a background worker, the reference in-process, with a curriculum."""
    from sparsegraph.experiments.train import Callback
    from sparsegraph.experiments.train.metrics import read_metrics

    class StopAfter(Callback):
        def on_step_end(self, trainer, step) -> None:
            if step == 4:
                raise _Stop

    ramp = {"steps": 6, "start": {"max_length": 20, "min_length": 4}}
    ref = _trainer(tmp_path / "ref", _listops(cache, fresh=True, fresh_workers=0, curriculum=ramp), 7)
    ref.fit()
    data = _listops(cache, fresh=True, fresh_workers=1, curriculum=ramp)
    with pytest.raises(_Stop):
        _trainer(tmp_path / "run", data, 7, [StopAfter()]).fit()
    resumed = _trainer(tmp_path / "run", data, 7)
    assert resumed.fit(resume=True).steps == 7
    a, b = ref.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)

    def timing_free(path: Path) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in read_metrics(path)]

    assert timing_free(tmp_path / "ref" / "metrics.jsonl") == timing_free(tmp_path / "run" / "metrics.jsonl")


def test_train_command_and_recipe_overrides_carry_the_options(tmp_path: Path, monkeypatch, one_thread) -> None:
    from sparsegraph.experiments.cli import main
    from sparsegraph.experiments.lra.recipes import get_recipe

    rec = get_recipe("listops", "cpu", ["data.fresh=true", "data.fresh_workers=0",
                                        "data.short_fraction=0", "data.group_by_length=false",
                                        "data.curriculum={steps=100, start={max_length=128}}"])
    assert rec.data["fresh"] is True and rec.data["curriculum"] == {"steps": 100, "start": {"max_length": 128}}
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "fresh.toml"
    cfg.write_text(f"""
[run]
name = "fr"
[data]
task = "listops"
cache_dir = "{tmp_path / 'cache'}"
params = {{n_val = 16, n_test = 16, min_length = 10, max_length = 40, fresh = true, fresh_workers = 0, curriculum = {{steps = 4, start = {{max_length = 20}}}}}}
[model]
d_model = 32
n_layers = 1
n_heads = 2
d_ff = 32
[model.attention]
pattern = "full"
block_size = 16
[train]
steps = 4
batch_size = 8
eval_every = 2
progress = "off"
""")
    assert main(["train", str(cfg)]) == 0
    assert main(["train", "--resume", "--name", "fr"]) == 0   # the saved config.toml reads back
    saved = (tmp_path / "runs" / "fr" / "config.toml").read_text()
    assert "fresh = true" in saved and "curriculum" in saved


# --- errors ----------------------------------------------------------------------------------

BAD = [
    (dict(fresh="yes"), "fresh='yes': expected true or false"),
    (dict(fresh=True, fresh_workers=-1), "fresh_workers=-1: expected an int >= 0"),
    (dict(curriculum={"steps": 5, "start": {"max_length": 20}}), "needs fresh=True"),
    (dict(fresh=True, curriculum={"steps": 0, "start": {"max_length": 20}}),
     "curriculum.steps=0: expected an int >= 1"),
    (dict(fresh=True, curriculum={"steps": 5, "begin": {}}), r"unknown key\(s\) \['begin'\]"),
    (dict(fresh=True, curriculum={"steps": 5}), r"missing \['start'\]"),
    (dict(fresh=True, curriculum=[5]), "curriculum=[5]: expected a table"),
    (dict(fresh=True, curriculum={"steps": 5, "start": {"n_train": 5}}),
     "curriculum.start.n_train=5: listops cannot ramp 'n_train'; expected some of"),
    (dict(fresh=True, curriculum={"steps": 5, "start": {"max_length": 30.5}}),
     "curriculum.start.max_length=30.5: expected an int"),
    (dict(fresh=True, curriculum={"steps": 5, "start": {"max_length": 60}}),
     "curriculum.start.max_length=60: expected <= 40, the configured max_length"),
    (dict(fresh=True, curriculum={"steps": 5, "start": {"max_length": 20}, "ramp": "cubic"}),
     r"curriculum.ramp='cubic': expected one of \('linear', 'staged'\)"),
    (dict(fresh=True, curriculum={"steps": 5, "start": {"max_length": 20}, "ramp": "staged"}),
     "curriculum.stages=0: expected an int >= 2"),
    (dict(fresh=True, curriculum={"steps": 5, "start": {"max_length": 20}, "stages": 3}),
     "curriculum.stages=3: expected 0"),
    (dict(fresh=True, curriculum={"steps": 5, "start": {"max_length": 11}}),
     r"at step 0 it sets .* which listops refuses: min_length=10 and max_length=11"),
]


@pytest.mark.parametrize("kw, message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_options_name_the_parameter_value_and_expectation(cache: Path, kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message if "\\" in message or ".*" in message else re.escape(message)):
        _listops(cache, **kw)


def test_fresh_needs_a_generated_task_and_pathfinder_contours_on_the_grid(cache: Path) -> None:
    with pytest.raises(ValueError, match=r"fresh=True: 'image' is read from files; expected one of"):
        load_task("image", fresh=True)
    with pytest.raises(ValueError, match=r"curriculum.start.contour_length=7: expected one of \(6, 9, 14\)"):
        load_task("pathfinder", cache_dir=cache, progress=False, n_train=0, n_val=2, n_test=2,
                  fresh=True, curriculum={"steps": 5, "start": {"contour_length": 7}})


# --- docs ------------------------------------------------------------------------------------

def test_the_docs_example_runs(tmp_path: Path, monkeypatch) -> None:
    text = (DOCS / "lra_data.md").read_text()
    section = text[text.index("## Fresh training data"):]
    code = re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]
    monkeypatch.setenv("SPARSEGRAPH_DATA", str(tmp_path))
    exec(compile(code, "docs/lra_data.md", "exec"), {})
