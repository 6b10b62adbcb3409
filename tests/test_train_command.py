"""``sparsegraph train``: LRA task and text-folder classifiers, resume by name, fine-tuning from a
``sparsegraph pretrain`` checkpoint, and one-line errors."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pytest
import torch

from sparsegraph.experiments.cli import main
from sparsegraph.experiments.commands import train as train_cmd
from sparsegraph.experiments.train import load_model_weights
from sparsegraph.experiments.train.checkpoint import load_checkpoint

TINY_MODEL = """
[model]
d_model = 32
n_layers = 1
n_heads = 2
d_ff = 64
[model.attention]
pattern = "bigbird:block=16,window=3,random=1,global=1"
block_size = 16
"""


@pytest.fixture(autouse=True)
def one_thread(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # runs/ lands in the test's directory
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _listops_config(tmp_path: Path) -> Path:
    p = tmp_path / "listops.toml"
    p.write_text(f"""
[run]
name = "lo"
[data]
task = "listops"
cache_dir = "{tmp_path / 'cache'}"
params = {{n_train = 96, n_val = 24, n_test = 24, min_length = 20, max_length = 60, seed = 1}}
{TINY_MODEL}
[train]
steps = 6
batch_size = 8
eval_every = 3
log_every = 3
progress = "off"
""")
    return p


def test_listops_run_resume_by_name(tmp_path: Path, capsys) -> None:
    assert main(["train", str(_listops_config(tmp_path))]) == 0
    out = capsys.readouterr()
    assert "majority-class baseline" in out.err and "test accuracy at the best checkpoint" in out.out
    run = tmp_path / "runs" / "lo"
    res = json.loads((run / "results.json").read_text())
    assert res["steps"] == 6 and res["best"]["step"] in (3, 6)
    saved = (run / "config.toml").read_text()
    assert "vocab_size = 16" in saved and "max_len = 60" in saved and "pad_id = 0" in saved
    # `--resume --name` continues with the saved config; the run is finished, so nothing changes
    assert main(["train", "--resume", "--name", "lo"]) == 0
    again = json.loads((run / "results.json").read_text())
    assert again["best"] == res["best"] and again["test_at_best"] == res["test_at_best"]


def _text_folder(root: Path, with_test: bool = True) -> None:
    rng = random.Random(0)
    words = {"neg": ["bad", "awful", "poor"], "pos": ["good", "great", "fine"]}
    for split, n in (("train", 20), ("test", 4)) if with_test else (("train", 20),):
        for c, ws in words.items():
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(n):
                (d / f"{i}.txt").write_text(" ".join(rng.choice(ws + ["the", "film", "was"]) for _ in range(20)))


def test_fine_tune_text_folder_from_pretrained_encoder(tmp_path: Path) -> None:
    """The pretrained encoder's tensors land in the classifier (positions repeated to the longer
    length); the head starts fresh; training then runs from there."""
    assert main(["pretrain", "--demo", "--name", "pre", "--set", "data.max_bytes=60000", "--set", "data.max_length=32",
                 "--set", "model.d_model=32", "--set", "model.n_heads=2", "--set", "model.d_ff=64",
                 "--set", "train.steps=4", "--set", "train.batch_size=8", "--set", "train.progress=off"]) == 0
    ckpt = tmp_path / "runs" / "pre" / "checkpoints" / "best.pt"
    _text_folder(tmp_path / "tf")
    cfg = tmp_path / "ft.toml"
    cfg.write_text('[run]\nname = "ft"\n[data]\ntask = "text_folder"\ndata_dir = "tf"\nmax_length = 80\n'
                   '[train]\nsteps = 4\nbatch_size = 8\neval_every = 2\nprogress = "off"\n')
    args = argparse.Namespace(config=str(cfg), name=None, resume=False, init_from=str(ckpt), overrides=[])
    c, data, state = train_cmd.resolve_config(train_cmd.read_raw(args), [])
    assert (c.model.d_model, c.model.n_heads, c.model.max_len, c.model.vocab_size) == (32, 2, 80, 259)  # from the checkpoint + data
    model = train_cmd.build_classifier(c, data)
    names = load_model_weights(model, state, prefix="encoder.", target_prefix="encoder.", tile=c.init.tile)
    pre = load_checkpoint(ckpt)["model"]
    own = model.state_dict()
    assert names and all(n.startswith("encoder.") for n in names)
    for n in names:
        if n == "encoder.position.weight":
            rows = pre[n].shape[0]  # 33 = 32 positions + CLS, repeated to fill 81
            assert torch.equal(own[n][:rows], pre[n]) and torch.equal(own[n][rows:2 * rows], pre[n])
        else:
            assert torch.equal(own[n], pre[n])
    assert main(["train", str(cfg), "--init-from", str(ckpt)]) == 0
    res = json.loads((tmp_path / "runs" / "ft" / "results.json").read_text())
    assert res["steps"] == 4 and "test_at_best" in res


@pytest.mark.parametrize(
    "setup, argv, message",
    [
        ("", ["missing.toml"], "config file 'missing.toml' does not exist"),
        ("", [], "give CONFIG.toml"),
        ('[data]\ntask = "listop"\n', ["c.toml"], "data.task must be one of"),
        ('[data]\ntask = "listop"\n', ["c.toml"], "(did you mean 'listops'?)"),
        ('[train]\nstesp = 3\n', ["c.toml"], "unknown config key 'train.stesp' (did you mean 'train.steps'?)"),
        ('[data]\ntask = "text_folder"\ndata_dir = "nowhere"\n', ["c.toml"], "has no 'train' directory"),
        ('[data]\ntask = "text_folder"\ndata_dir = "tf"\n', ["c.toml"], "train.test_split = 'test' but the text_folder data has splits ['train', 'val']"),
        ("", ["c.toml", "--init-from", "nope.pt"], "checkpoint 'nope.pt' does not exist"),
    ],
)
def test_errors_exit_2_with_one_line(tmp_path: Path, capsys, setup: str, argv: list[str], message: str) -> None:
    (tmp_path / "c.toml").write_text(setup)
    _text_folder(tmp_path / "tf", with_test=False)
    assert main(["train", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sparsegraph train: error: ") and message in err, err


def test_fine_tuning_needs_the_same_vocabulary(tmp_path: Path, capsys) -> None:
    from sparsegraph.experiments.train.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "pre.pt", {"model": {"encoder.token.weight": torch.zeros(259, 32)},
                                          "config": {"model": {"vocab_size": 259, "d_model": 32, "n_heads": 2}}})
    rc = main(["train", str(_listops_config(tmp_path)), "--init-from", str(tmp_path / "pre.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and "the checkpoint's vocabulary (259 ids) differs from the listops data's (16 ids)" in err


def test_lra_preset_supplies_defaults_and_the_config_wins() -> None:
    from sparsegraph.experiments.lra.recipes import get_recipe

    tc = get_recipe("listops", "cpu")
    raw = {"data": {"task": "listops", "preset": "cpu", "params": {"n_train": 50}}, "train": {"steps": 7},
           "model": {"n_layers": 1}}
    base, model_raw = train_cmd.parse_config(raw, ["optim.lr=0.5"])
    assert base.train.steps == 7 and base.train.batch_size == tc.train.batch_size
    assert base.train.eval_every == tc.train.eval_every
    assert base.optim.lr == 0.5 and base.optim.schedule == tc.optim.schedule and base.optim.betas == tc.optim.betas
    assert base.data.params == {**tc.data, "n_train": 50}
    assert model_raw["n_layers"] == 1 and model_raw["d_model"] == tc.model.d_model
    assert model_raw["attention"]["block_size"] == tc.model.block_size
    with pytest.raises(ValueError, match=r"data.preset must be '', 'lra' or 'cpu' \(did you mean 'cpu'\?\), got 'cpuu'"):
        train_cmd.parse_config({"data": {"task": "listops", "preset": "cpuu"}}, [])
