"""sparsegraph.experiments.measure.pathfinder_cnn: the convolutional calibration run of docs/results.md."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from sparsegraph.experiments.measure import pathfinder_cnn as pc


def test_pathfinder_cnn_cli_runs(tmp_path, capsys, one_thread) -> None:
    assert pc.main(["--n-train", "64", "--n-val", "16", "--steps", "4", "--eval-every", "2",
                    "--batch", "8", "--channels", "4", "--distractors", "0",
                    "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "train 64 fixed images" in out and "0 distractor snakes" in out
    assert "receptive field 32 px" in out
    progress = [line for line in out.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in progress] == ["2", "4"]
    assert all(" loss " in line and " val " in line for line in progress)
    assert "done: 4 steps, final val " in out


def test_receptive_field_of_the_cnn() -> None:
    # the easy target paths are about 24 px end to end; 29 px is what a working CNN needed
    assert pc.receptive_field(pc.cnn(4)) == 32 >= 29


def test_receptive_field_recurrence() -> None:
    def conv(d: int = 1, s: int = 1) -> nn.Conv2d:
        return nn.Conv2d(1, 1, 3, stride=s, dilation=d, padding=d)

    # the old network: seven stride-1 3x3 convs, 2 * 7 + 1 pixels
    assert pc.receptive_field(nn.Sequential(*[conv() for _ in range(7)])) == 15
    assert pc.receptive_field(nn.Sequential(conv(d=2), conv(d=4))) == 1 + 4 + 8
    # a stride-2 conv doubles the step of everything after it: 1 + 2 + 2*2
    assert pc.receptive_field(nn.Sequential(conv(s=2), conv())) == 7
    # nested containers, pointwise layers, and nothing counted after the global pool
    net = nn.Sequential(nn.Sequential(conv(), nn.ReLU()), nn.AvgPool2d(2), conv(),
                        nn.AdaptiveMaxPool2d(1), nn.Flatten(), conv())
    assert pc.receptive_field(net) == 3 + 1 + 2 * 2
    assert pc.receptive_field(nn.Sequential(nn.Conv2d(1, 1, (3, 5)))) == 3
    with pytest.raises(ValueError, match="Conv1d"):
        pc.receptive_field(nn.Sequential(nn.Conv1d(1, 1, 3)))


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="channels=0"):
        pc.cnn(0)
    with pytest.raises(ValueError, match="std=-1"):
        pc.Standardise(0.0, -1.0)
    x, y = torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="steps=0"):
        pc.train(pc.cnn(2), pc.epoch_batches(x, y, 2), steps=0)
    with pytest.raises(ValueError, match="len"):
        pc.epoch_batches(x, y[:3], 2)
    with pytest.raises(ValueError, match="batch=5"):
        pc.epoch_batches(x, y, 5)


def _entropy(y: torch.Tensor) -> float:
    """The lowest mean cross-entropy a model that ignores its input can reach on labels ``y``
    (it can only learn the label frequencies)."""
    p = y.float().mean().item()
    return -(p * math.log(p) + (1 - p) * math.log(1 - p)) if 0 < p < 1 else 0.0


def test_training_loss_leaves_ln2(one_thread) -> None:
    """On 256 images without distractor snakes, 120 steps of 32 (15 epochs, about 3 s on one
    core) take the training loss far below what an input-blind model can reach: the CNN fits its
    own training set, which the old instrument never did (its loss stayed at 0.692-0.694).

    Measured for seeds 0-5 (torch 2.13 CPU): the mean loss of steps 101-120 was 0.13-0.20 for
    the CNN and 0.689-0.694 for the same CNN given all-zero images; the threshold ``ln 2 - 0.25``
    (0.44) lies between them with room on both sides. The output spread across images at
    initialisation was 0.05-0.09 (the logit difference's standard deviation; the old network's
    was about 5e-5), so the threshold 0.01 is 5x below the lowest.
    """
    from sparsegraph.experiments.lra import load_task

    task = load_task("pathfinder", difficulty="easy", n_train=256, n_val=2, n_test=2,
                     num_distractor_snakes=0, use_cache=False, workers=1, progress=False)
    x, y = pc.images(task["train"])
    floor = _entropy(y)
    assert floor <= math.log(2)
    threshold = math.log(2) - 0.25
    for blind in (False, True):
        # blind: the negative control, a model that sees nothing; it must fail both checks
        xs = torch.zeros_like(x) if blind else x
        torch.manual_seed(0)
        net = pc.cnn(8, mean=xs.mean().item(), std=xs.std().item())
        with torch.no_grad():
            logits = net(xs)  # train mode, as the first steps see it
        spread = (logits[:, 1] - logits[:, 0]).std().item()
        hist = pc.train(net, pc.epoch_batches(xs, y, 32, seed=0), steps=120)
        late = float(np.mean(hist.losses[-20:]))
        if blind:
            assert spread < 1e-4 and late > floor - 0.05, (spread, late, floor)
        else:
            assert spread > 1e-2, spread
            assert late < threshold, (late, threshold)
            assert late < floor - 0.2, (late, floor)


def test_epoch_batches_cover_each_epoch_once() -> None:
    x = torch.arange(10, dtype=torch.float32).view(10, 1, 1, 1)
    y = torch.arange(10)
    it = pc.epoch_batches(x, y, 3, seed=4)
    epoch1 = [next(it) for _ in range(3)]  # 3 batches of 3, the 10th image dropped
    seen = torch.cat([b[1] for b in epoch1])
    assert len(set(seen.tolist())) == 9
    assert all(torch.equal(bx.view(-1).long(), by) for bx, by in epoch1)
    again = pc.epoch_batches(x, y, 3, seed=4)
    assert all(torch.equal(next(again)[1], b[1]) for b in epoch1)  # a function of the seed
    epoch2 = torch.cat([next(it)[1] for _ in range(3)])
    assert not torch.equal(epoch2, seen)  # a new permutation each epoch


def test_fresh_batches_are_the_stream_as_images(tmp_path) -> None:
    from sparsegraph.experiments.lra import load_task

    task = load_task("pathfinder", difficulty="easy", n_train=4, n_val=2, n_test=2,
                     num_distractor_snakes=0, fresh=True, fresh_workers=0, cache_dir=tmp_path,
                     progress=False, workers=1)
    it = pc.fresh_batches(task.fresh, 3, seed=1)
    xb, yb = next(it)
    assert xb.shape == (3, 1, 32, 32) and xb.dtype == torch.float32 and yb.shape == (3,)
    ref = task.fresh.arrays(0, 3, 1)
    assert torch.equal(xb.view(3, -1), torch.from_numpy(ref["tokens"].astype(np.float32)))
    assert torch.equal(yb, torch.from_numpy(ref["labels"]))
    xb2, _ = next(it)
    assert not torch.equal(xb, xb2)  # step 1 draws new images


def test_cli_fresh_with_a_curriculum(tmp_path, capsys, one_thread) -> None:
    assert pc.main(["--n-val", "16", "--steps", "4", "--eval-every", "2", "--batch", "4",
                    "--channels", "4", "--distractors", "2", "--fresh",
                    "--curriculum-steps", "2", "--start-distractors", "0",
                    "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "train on fresh images every step, distractor snakes 0 at step 0 rising to 2 at step 2" in out
    progress = [line for line in out.splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in progress] == ["2", "4"]
    assert progress[0].endswith("(distractors 2)")
    assert "final test " in out and "of 1000" in out


def test_cli_curriculum_ramps_the_contour_length(tmp_path, capsys, one_thread) -> None:
    assert pc.main(["--n-val", "8", "--steps", "4", "--eval-every", "1", "--batch", "2",
                    "--channels", "2", "--distractors", "0", "--difficulty", "intermediate",
                    "--fresh", "--curriculum-steps", "4", "--start-contour-length", "6",
                    "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ", contour length 6 to 9" in out
    progress = [line for line in out.splitlines() if line.startswith("step ")]
    # linear from 6 at step 0 to 9 at step 4, snapped to the grid 6 / 9 / 14
    assert [line.rsplit("contour length ", 1)[1] for line in progress] == ["6)", "9)", "9)", "9)"]
    record = pc.CnnRun.read(tmp_path / "run")
    assert record.data == ("fresh images every step, 0 to 0 distractors and contour length 6 "
                           "to 9 over 4 steps")
    assert record.difficulty == "intermediate"


def test_cli_staged_curriculum_holds_each_level(tmp_path, capsys, one_thread) -> None:
    assert pc.main(["--n-val", "8", "--steps", "4", "--eval-every", "1", "--batch", "2",
                    "--channels", "2", "--distractors", "0", "--difficulty", "intermediate",
                    "--fresh", "--curriculum-steps", "4", "--curriculum-stages", "2",
                    "--start-contour-length", "6", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "contour length 6 to 9" in out and " in 2 stages" in out
    progress = [line for line in out.splitlines() if line.startswith("step ")]
    # two stages: the start until step 4, the final difficulty from step 4 on
    assert [line.rsplit("contour length ", 1)[1] for line in progress] == ["6)", "6)", "6)", "9)"]


@pytest.mark.parametrize("argv, message", [
    (["--curriculum-steps", "10"], "--curriculum-steps 10 needs --fresh"),
    (["--fresh", "--start-contour-length", "6"], "--start-contour-length 6 needs --curriculum-steps"),
    (["--start-contour-length", "7"], "invalid choice: 7"),
    (["--fresh", "--curriculum-stages", "3"], "--curriculum-stages 3 needs --curriculum-steps"),
    (["--fresh", "--curriculum-steps", "4", "--curriculum-stages", "1"],
     "--curriculum-stages must be >= 2"),
    (["--fresh", "--curriculum-steps", "-1"], "--curriculum-steps must be >= 0, got -1"),
    (["--fresh", "--curriculum-steps", "5", "--start-distractors", "-2"],
     "--start-distractors must be >= 0, got -2"),
])
def test_cli_rejects_bad_options(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        pc.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
