"""Atomic checkpoint files, the checkpoint directory, and generator states."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from sparsegraph.experiments.train.checkpoint import (
    CheckpointManager, atomic_write, atomic_write_bytes, load_checkpoint, save_checkpoint,
)
from sparsegraph.experiments.train.rng import derive_seed, rng_state, seed_everything, set_rng_state

ROOT = Path(__file__).resolve().parents[1]


def test_exception_mid_write_keeps_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"w": torch.arange(5)})

    def torn(f):
        f.write(b"garbage that is half a checkpoint")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, torn)
    assert torch.equal(load_checkpoint(path)["w"], torch.arange(5))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_kill_mid_write_keeps_previous_checkpoint(tmp_path: Path) -> None:
    """A process SIGKILLed while writing a checkpoint leaves the previous one intact and loadable;
    the stray temporary file is ignored by ``latest()`` and removed by the next save."""
    mgr = CheckpointManager(tmp_path / "ck", keep_last=3)
    mgr.save(1, {"w": torch.ones(3)})
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        import torch
        from sparsegraph.experiments.train.checkpoint import atomic_write
        def write(f):
            f.write(b"x" * 1000)   # half-written checkpoint bytes...
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)   # ...and the process dies
        atomic_write({str(mgr.path_for(1))!r}, write)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    leftovers = list(mgr.dir.glob(".tmp-*"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size == 1000
    path, state = mgr.latest()
    assert path == mgr.path_for(1) and torch.equal(state["w"], torch.ones(3))
    mgr.save(2, {"w": torch.zeros(3)})
    assert not list(mgr.dir.glob(".tmp-*"))


def test_latest_skips_a_damaged_newest_file(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, keep_last=5)
    mgr.save(1, {"v": 1})
    mgr.save(2, {"v": 2})
    mgr.path_for(2).write_bytes(mgr.path_for(2).read_bytes()[:50])  # damaged by something else
    path, state = mgr.latest()
    assert path == mgr.path_for(1) and state["v"] == 1
    with pytest.raises(ValueError, match="cannot be read"):
        load_checkpoint(mgr.path_for(2))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


@settings(max_examples=25)
@given(st.lists(st.tuples(st.integers(1, 5), st.booleans()), min_size=1, max_size=12), st.integers(1, 3))
def test_manager_keeps_last_k_and_the_best(tmp_path_factory, saves, keep_last: int) -> None:
    d = tmp_path_factory.mktemp("ck")
    mgr = CheckpointManager(d, keep_last=keep_last)
    step, best = 0, None
    for inc, is_best in saves:
        step += inc
        mgr.save(step, {"step": step}, is_best=is_best)
        if is_best:
            best = step
    all_steps = []
    s = 0
    for inc, _ in saves:
        s += inc
        all_steps.append(s)
    expected = set(all_steps[-keep_last:]) | ({best} if best is not None else set())
    assert set(mgr.steps()) == expected
    if best is not None:
        assert load_checkpoint(mgr.best_path)["step"] == best
    else:
        assert not mgr.best_path.exists()
    assert mgr.latest()[1]["step"] == step


def test_files_get_normal_permissions(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "a.txt", b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_rng_state_round_trip_through_a_checkpoint(tmp_path: Path) -> None:
    seed_everything(5)
    random.random(), np.random.rand(), torch.rand(1)
    save_checkpoint(tmp_path / "r.pt", {"rng": rng_state()})
    expected = (random.random(), np.random.rand(3).tolist(), np.random.randn(), torch.rand(4).tolist())
    seed_everything(99)
    set_rng_state(load_checkpoint(tmp_path / "r.pt")["rng"])
    got = (random.random(), np.random.rand(3).tolist(), np.random.randn(), torch.rand(4).tolist())
    assert got == expected


@given(st.integers(0, 2**40), st.lists(st.integers(0, 100) | st.text(max_size=4), max_size=3))
def test_derive_seed_is_a_function_of_its_inputs(seed: int, keys) -> None:
    a = derive_seed(seed, *keys)
    assert a == derive_seed(seed, *keys) and 0 <= a < 2**63
    assert derive_seed(seed, "ab", "c") != derive_seed(seed, "a", "bc")
    assert derive_seed(seed, *keys, 1) != derive_seed(seed, *keys, 2)
