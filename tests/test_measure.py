"""sparsegraph.kernels.measure: interleaved timings with their spread, and the memory probe."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparsegraph.kernels import measure
from sparsegraph.kernels.measure import Timing, time_interleaved


def test_timing_quotes_the_median_with_its_range() -> None:
    t = Timing((0.010, 0.011, 0.012, 0.011, 0.010))
    assert t.median == 0.011 and (t.low, t.high) == (0.010, 0.012)
    assert t.reliable and t.format() == "11.0 ms (10.0-12.0)"
    d = t.to_dict()
    assert d["median"] == pytest.approx(11.0) and d["repeats"] == 5 and d["reliable"]


def test_a_noisy_timing_is_marked_unreliable() -> None:
    # scheduler slices: half the calls took 96 ms instead of 1 ms
    t = Timing((0.001, 0.096, 0.001, 0.096, 0.001, 0.096))
    assert t.spread > measure.UNRELIABLE_SPREAD and not t.reliable
    assert t.format().endswith("unreliable")
    assert not Timing((0.01, 0.01)).reliable  # too few samples to say


@given(st.lists(st.floats(1e-6, 10.0), min_size=1, max_size=30))
def test_timing_statistics_are_ordered(samples: list[float]) -> None:
    t = Timing(tuple(samples))
    assert t.low <= t.median <= t.high and t.spread >= 0


@pytest.mark.parametrize("bad", [(), (-1.0,), (float("nan"),), (float("inf"),)])
def test_bad_samples_raise(bad: tuple) -> None:
    with pytest.raises(ValueError, match="Timing"):
        Timing(bad)


def test_time_interleaved_rotates_the_order_every_round() -> None:
    calls: list[str] = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    out = time_interleaved(fns, repeats=3, warmup=1)
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert all(len(t.samples) == 3 for t in out.values())


@pytest.mark.parametrize("kw,words", [({"repeats": 0}, "repeats"), ({"warmup": -1}, "warmup")])
def test_time_interleaved_rejects_bad_arguments(kw: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        time_interleaved({"a": lambda: None}, **kw)
    with pytest.raises(ValueError, match="nothing to time"):
        time_interleaved({})


def test_peak_growth_sees_an_allocation() -> None:
    import numpy as np

    grown = measure.peak_growth_mib(lambda: np.ones(64 * 2**20 // 8))  # 64 MiB touched
    assert grown is None or grown >= 48  # None only where /proc cannot say (not Linux)
    assert measure.status_kib("VmRSS") is None or measure.status_kib("VmRSS") > 0
    assert "MALLOC_MMAP_THRESHOLD_=65536" in measure.malloc_settings({"MALLOC_MMAP_THRESHOLD_": "65536"})
