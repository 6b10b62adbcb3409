"""The max-length search of ``experiments.measure.throughput`` against synthetic memory curves.

The script itself measures (it is not a test); its search logic is checked here: whatever the
memory curve ``peak(n) = a + b n + c n^2``, the search must bracket the true limit to the asked
resolution, in few trials, and say when it stopped at the cap.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sparsegraph.experiments.measure.throughput import (BLOCK, GIB, Search, Trial, _fit_limit, maxlen_ratios, maxlen_table,
                                   search_max_len)


@given(
    a=st.floats(0.1, 2.0), b=st.floats(1e-6, 1e-3), c=st.sampled_from([0.0, 1e-9, 5e-8]),
    budget=st.floats(4.0, 32.0),
)
def test_fit_limit_solves_exact_curves(a, b, c, budget):
    # memory in GiB-scaled units, lengths in tokens
    points = [(n, a + b * n + c * n * n) for n in (1024, 3000, 8192)]
    root = _fit_limit(points, budget)
    assert root is not None  # budget > a: the curve reaches it
    assert abs((a + b * root + c * root * root) - budget) <= 1e-6 * budget


@given(
    base=st.floats(0.3, 1.0), per_token=st.floats(1e-6, 2e-4), per_entry=st.sampled_from([0.0, 2e-9, 5e-8]),
    budget_gib=st.sampled_from([1.0, 4.0, 16.0]), start=st.sampled_from([1024, 4096, 8192]),
    resolution=st.sampled_from([0.02, 0.05, 0.1]), max_n=st.sampled_from([65536, 262144, 1 << 20]),
)
@settings(max_examples=60)
def test_search_brackets_the_true_limit(base, per_token, per_entry, budget_gib, start, resolution, max_n):
    budget = int(budget_gib * GIB)

    def peak(n: int) -> int:
        return int(GIB * (base + per_token * n + per_entry * n * n))

    def run(n: int) -> Trial:
        assert n % BLOCK == 0 and 0 < n <= max_n
        p = peak(n)
        # the parent kills an over-budget trial just past the budget: the peak it saw
        return Trial("x", n, False, status="ok" if p <= budget else "over budget", peak=min(p, budget + 1))

    s = search_max_len("x", False, budget, start=start, max_n=max_n, resolution=resolution, run=run)
    ok = [t.n for t in s.trials if t.ok]
    over = [t.n for t in s.trials if not t.ok]
    assert s.longest_ok == max(ok, default=0)
    assert s.shortest_over == (min(over) if over else None)
    assert len(s.trials) <= 25
    if s.capped:
        assert s.longest_ok == max_n and peak(max_n) <= budget
        return
    if s.longest_ok == 0:  # nothing fits: halved down to a block
        assert peak(BLOCK) > budget or min(over) == BLOCK
        return
    lo, hi = s.longest_ok, s.shortest_over
    assert hi is not None and peak(lo) <= budget < peak(hi)
    assert hi - lo <= max(BLOCK, resolution * lo)


def _search(pattern: str, checkpoint: bool, longest: int, over: int | None, *, capped: bool = False,
            timeout: bool = False) -> Search:
    trials = [Trial(pattern, longest, checkpoint, peak=GIB)]
    if over is not None:
        trials.append(Trial(pattern, over, checkpoint, status="timeout" if timeout else "over budget"))
    return Search(pattern, checkpoint, longest_ok=longest, shortest_over=over, capped=capped,
                  trials=trials)


def test_maxlen_ratios_against_both_full_baselines():
    searches = [
        _search("full-eager", False, 12288, 12800),
        _search("full", False, 32768, 40960, timeout=True),
        _search("bigbird", False, 131072, 135168),
        _search("full-eager", True, 16384, 16896),
        _search("bigbird", True, 262144, None, capped=True),
    ]
    lines = maxlen_ratios(searches)
    assert lines == [
        "- checkpointing off: bigbird / full-eager = 131072 / 12288 = 10.7x",
        "- checkpointing off: bigbird / full = 131072 / 32768 = 4.0x (upper bound: full stopped by a timeout)",
        "- checkpointing on: bigbird / full-eager = 262144 / 16384 = 16.0x (lower bound: bigbird capped at --max-n)",
        "- full-eager: checkpointing on / off = 16384 / 12288 = 1.3x",
        "- bigbird: checkpointing on / off = 262144 / 131072 = 2.0x (lower bound: on capped at --max-n)",
    ]
    table = maxlen_table(searches, 16 * GIB)
    assert table.endswith("\n".join(lines))
    assert "| bigbird | on | >= 262144 (cap) | - |" in table


def test_maxlen_ratios_when_both_searches_stopped_early_print_no_ratio():
    # bigbird capped (its limit may be higher) against a baseline stopped by a timeout (its limit
    # may be higher too): 4.0 would bound the true ratio in neither direction
    searches = [_search("full", True, 32768, 40960, timeout=True),
                _search("bigbird", True, 131072, None, capped=True),
                _search("bigbird", False, 65536, 73728, timeout=True)]
    assert maxlen_ratios(searches) == [
        "- checkpointing on: bigbird / full = 131072 / 32768: no ratio (neither search reached its "
        "limit: bigbird capped at --max-n, full stopped by a timeout)",
        "- bigbird: checkpointing on / off = 131072 / 65536: no ratio (neither search reached its "
        "limit: on capped at --max-n, off stopped by a timeout)",
    ]


def test_maxlen_ratios_need_a_baseline():
    # no full-attention search (or one where nothing trained): no sparse-vs-full ratio is made up
    assert maxlen_ratios([_search("bigbird", False, 131072, 135168)]) == []
    lines = maxlen_ratios([_search("full-eager", False, 0, 4096), _search("bigbird", False, 8192, 8256)])
    assert lines == []
