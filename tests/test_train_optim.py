"""AdamW parameter groups and learning-rate schedules."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from sparsegraph.experiments.train.config import OptimConfig
from sparsegraph.experiments.train.optim import build_optimizer, build_scheduler, lr_factor, param_groups


def f(step, schedule, w, t, r=0.0):
    return lr_factor(step, schedule=schedule, warmup_steps=w, total_steps=t, min_lr_ratio=r)


def test_schedule_values_at_key_steps() -> None:
    # warm-up: (s+1)/W, full rate at the last warm-up step
    assert [f(s, "linear", 4, 104) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    # linear: 1 at the end of warm-up, 1/2 half-way through the rest, r at the end
    assert f(4, "linear", 4, 104) == 1.0
    assert f(54, "linear", 4, 104) == pytest.approx(0.5)
    assert f(104, "linear", 4, 104) == 0.0
    assert f(104, "linear", 4, 104, r=0.1) == pytest.approx(0.1)
    # cosine: 1, (1+r)/2 half-way, r at the end
    assert f(4, "cosine", 4, 104) == 1.0
    assert f(54, "cosine", 4, 104, r=0.2) == pytest.approx(0.6)
    assert f(104, "cosine", 4, 104, r=0.2) == pytest.approx(0.2)
    # rsqrt: sqrt(W/(s+1)) after warm-up: 1 at s = W-1, 1/2 at s+1 = 4W
    assert f(99, "rsqrt", 100, 10) == 1.0
    assert f(399, "rsqrt", 100, 10) == pytest.approx(0.5)
    assert f(0, "rsqrt", 0, 10) == 1.0 and f(3, "rsqrt", 0, 10) == pytest.approx(0.5)
    # constant
    assert f(10**6, "constant", 3, 10) == 1.0
    # no warm-up: the first step is already at full rate
    assert f(0, "cosine", 0, 10) == 1.0


@given(st.sampled_from(["linear", "cosine", "rsqrt", "constant"]), st.integers(0, 50), st.integers(1, 300),
       st.floats(0, 1))
def test_schedule_shape(schedule: str, w: int, t: int, r: float) -> None:
    """Warm-up rises linearly to 1; afterwards the factor never rises and stays in [r, 1]
    (rsqrt: in (0, 1])."""
    vals = [f(s, schedule, w, t, r) for s in range(w + t + 5)]
    for s in range(w):
        assert vals[s] == pytest.approx((s + 1) / w)
    peak = max(w - 1, 0)  # the last warm-up update runs at the full rate
    assert vals[peak] == pytest.approx(1.0)
    if schedule != "rsqrt":
        assert vals[w] == pytest.approx(1.0)  # decay starts from 1 (rsqrt continues from its peak)
    after = vals[peak:]
    assert all(b <= a + 1e-12 for a, b in zip(after, after[1:]))
    lo = 0.0 if schedule == "rsqrt" else r
    assert all(lo - 1e-12 <= v <= 1.0 + 1e-12 for v in after)


def test_schedule_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="schedule must be one of"):
        f(5, "exp", 1, 10)
    with pytest.raises(ValueError, match="step must be an int >= 0, got -1"):
        f(-1, "linear", 1, 10)
    with pytest.raises(ValueError, match="total_steps must be >= 1, got 0"):
        f(0, "linear", 0, 0)


@settings(max_examples=30)
@given(st.sampled_from(["linear", "cosine", "rsqrt", "constant"]), st.integers(0, 5), st.integers(1, 20))
def test_scheduler_applies_the_factor_to_each_update(schedule: str, w: int, t: int) -> None:
    p = nn.Parameter(torch.zeros(2))
    cfg = OptimConfig(lr=0.1, schedule=schedule, warmup_steps=w)
    opt = torch.optim.AdamW([p], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, t)
    for s in range(t):
        assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * f(s, schedule, w, t))
        opt.step()
        sched.step()


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.lin = nn.Linear(4, 4)
        self.ln = nn.LayerNorm(4)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.emb.weight  # tied
        self.scale = nn.Parameter(torch.ones(4))


@given(st.sets(st.sampled_from(["bias", "norm", "embedding"])))
def test_param_groups_exclusions(kinds: set[str]) -> None:
    groups = param_groups(Net(), 0.1, tuple(sorted(kinds)))
    decayed = set(next((g["names"] for g in groups if g["weight_decay"] == 0.1), []))
    kept = set(next((g["names"] for g in groups if g["weight_decay"] == 0.0), []))
    expected_kept = set()
    if "bias" in kinds:
        expected_kept |= {"lin.bias", "ln.bias"}
    if "norm" in kinds:
        expected_kept |= {"ln.weight", "ln.bias"}
    if "embedding" in kinds:
        expected_kept |= {"emb.weight"}
    assert kept == expected_kept
    # every parameter exactly once (the tied embedding is one parameter)
    assert decayed | kept == {"emb.weight", "lin.weight", "lin.bias", "ln.weight", "ln.bias", "scale"}
    assert not decayed & kept


def test_no_decay_params_patterns_and_typos() -> None:
    groups = param_groups(Net(), 0.1, (), ("sca*",))
    assert [g["names"] for g in groups if g["weight_decay"] == 0.0] == [["scale"]]
    with pytest.raises(ValueError, match=r"no_decay_params: pattern\(s\) \['scael'\] match no parameter"):
        param_groups(Net(), 0.1, (), ("scael",))
    with pytest.raises(ValueError, match=r"optim.no_decay entries must be among .* \(did you mean 'norm'\?\), got 'nrom'"):
        OptimConfig(no_decay=("nrom",))


def test_build_optimizer_decays_only_the_decay_group() -> None:
    torch.manual_seed(0)
    net = Net()
    opt = build_optimizer(net, OptimConfig(lr=0.5, weight_decay=0.5))
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = torch.zeros_like(p)  # zero gradients: only weight decay moves parameters
    opt.step()
    after = dict(net.named_parameters())
    assert torch.equal(after["ln.weight"], before["ln.weight"]) and torch.equal(after["emb.weight"], before["emb.weight"])
    assert torch.allclose(after["lin.weight"], before["lin.weight"] * (1 - 0.25))
    assert math.isclose(opt.param_groups[0]["weight_decay"], 0.5)
