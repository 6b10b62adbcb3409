"""The benchmark script runs end to end on a tiny configuration (no timing is asserted), and
``sparsegraph bench`` rejects bad options in one line."""

from __future__ import annotations

import pytest

from sparsegraph.experiments import cli
from sparsegraph.kernels.bench import BenchConfig, run


def test_tiny_bench_prints_a_row_per_implementation() -> None:
    lines: list[str] = []
    cfg = BenchConfig(patterns=("sliding_window:window=65",), ns=(200,), sparse_ns=(), repeats=1,
                      impls=("dense_sdpa", "gather_loop", "torch", "auto"), memory=False, compile_n=0)
    results = run(cfg, emit=lines.append)
    rows = [r for r in results["rows"] if r["n"] == 200]
    assert [r["impl"] for r in rows] == ["dense_sdpa", "gather_loop", "torch", "auto"]
    for r in rows:
        assert r["fwd_ms"] > 0 and r["fwd_bwd_ms"] > 0
        assert 0 < r["fwd_frac"] and 0 < r["fwd_bwd_frac"]
    table = [line for line in lines if line.startswith("| sliding_window | 200 |")]
    assert len(table) == 4
    assert any("matmul rate" in line for line in lines)
    assert any("auto chose" in line for line in table)


@pytest.mark.parametrize("argv, message", [
    (["bench", "--n", "12x", "--keep-malloc-env"], "--n must be a comma list of ints"),
    (["bench", "--impl", "nope", "--keep-malloc-env", "--quick"], "impls must be among"),
    (["bench", "--repeats", "0", "--keep-malloc-env"], "repeats must be a positive int"),
])
def test_cli_rejects_bad_options(argv, message, capsys) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
