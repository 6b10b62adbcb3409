"""``sparsegraph show`` / ``analyze`` / ``patterns --import``.

Each command runs as a real subprocess (concurrently, in one module-level fixture: every process
pays the CLI's start-up, about 3 s of it importing torch for other subcommands), including an
exit-status-2 error; the finer cases run in-process through ``experiments.cli.main``, the same
code path minus the interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sparsegraph import patterns
from sparsegraph.analysis import analyze

USER_PATTERN = textwrap.dedent('''
    import numpy as np
    from sparsegraph import patterns

    @patterns.register("cli_test_stripes")
    def stripes(n: int, *, stride: int = 4) -> np.ndarray:
        """Every query attends itself and every stride-th key."""
        i, j = np.ogrid[:n, :n]
        return (j % stride == 0) | (i == j)
''')


def _commands(tmp: Path) -> dict[str, list[str]]:
    (tmp / "user_patterns.py").write_text(USER_PATTERN)
    return {
        "patterns_import": ["patterns", "--import", str(tmp / "user_patterns.py")],
        "show_user_graph": ["show", "cli_test_stripes:stride=3", "--n", "24", "--draw", "graph",
                            "--import", "user_patterns", "-o", str(tmp / "graph.svg")],
        "analyze_table": ["analyze", "full", "sliding_window:window=5", "--n", "16,32",
                          "--plot", str(tmp / "metrics.png"), "--coverage", str(tmp / "coverage.png")],
        "unknown_pattern": ["analyze", "no_such_pattern", "--n", "16"],
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("cli")
    commands = _commands(tmp)

    def run(argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sparsegraph.experiments.cli", *argv], capture_output=True,
                              text=True, cwd=tmp, timeout=300)

    with ThreadPoolExecutor(max_workers=3) as pool:
        done = dict(zip(commands, pool.map(run, commands.values())))
    done["_tmp"] = tmp  # type: ignore[assignment]
    return done


def _ok(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_patterns_imports_a_file(runs) -> None:
    out = _ok(runs["patterns_import"])
    assert "cli_test_stripes" in out and "stride: int = 4" in out and "bigbird" in out


def test_show_prints_the_ascii_mask(capsys) -> None:
    from sparsegraph.experiments.cli import main

    assert main(["show", "sliding_window:window=4", "--n", "12"]) == 0
    out = capsys.readouterr().out.splitlines()
    g = patterns.build("sliding_window:window=4", 12)
    assert out[:-1] == g.to_string(0).splitlines()
    assert out[1] == "###........." and out[-1] == "('#' edge, '.' none)"


def test_show_tiles_a_long_sequence(capsys) -> None:
    from sparsegraph.experiments.cli import main

    assert main(["show", "bigbird:block=8", "--n", "256", "--seed", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    g = patterns.build("bigbird:block=8", 256, seed=3)
    assert out[:-1] == g.to_string(0, block=4).splitlines()  # 256 tokens -> 64 characters of 4x4 tiles
    assert len(out[1]) == 64 and "4x4 tiles" in out[0]


def test_show_writes_pictures(runs, capsys, tmp_path) -> None:
    tmp = runs["_tmp"]
    assert "wrote" in _ok(runs["show_user_graph"])  # --import by module name from the working directory
    assert b"<svg" in (tmp / "graph.svg").read_bytes()[:2000]
    from sparsegraph.experiments.cli import main

    for draw in ("mask", "heads", "degrees"):
        out = tmp_path / f"{draw}.png"
        assert main(["show", "watts_strogatz:k=4,p=0.3", "--n", "40", "--heads", "2", "--draw", draw,
                     "-o", str(out)]) == 0
        assert "wrote" in capsys.readouterr().out and out.read_bytes().startswith(b"\x89PNG")


def test_analyze_prints_a_table_and_plots(runs) -> None:
    out = _ok(runs["analyze_table"]).splitlines()
    header = out[0].split()
    assert header[:2] == ["pattern", "n"] and "L" in header and "gap" in header and "sigma" in header
    rows = [line.split() for line in out[2:6]]
    assert [(r[0], r[1]) for r in rows] == [("full", "16"), ("full", "32"),
                                            ("sliding_window:window=5", "16"), ("sliding_window:window=5", "32")]
    L = header.index("L")
    assert rows[0][L] == "1"  # full attention: every pair one hop apart
    expected = analyze(patterns.build("sliding_window:window=5", 32))["paths"]["mean"]
    assert float(rows[3][L]) == pytest.approx(expected, rel=1e-3)
    tmp = runs["_tmp"]
    assert (tmp / "metrics.png").stat().st_size > 5000 and (tmp / "coverage.png").stat().st_size > 5000
    assert "[1/4] full n=16" in runs["analyze_table"].stderr  # progress goes to stderr


def test_analyze_json_equals_the_library(capsys) -> None:
    from sparsegraph.experiments.cli import main

    argv = ["analyze", "bigbird:block=4,random=1", "--n", "32", "--heads", "2", "--seed", "7", "--json", "--quiet"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    g = patterns.build("bigbird:block=4,random=1", 32, heads=2, seed=7)
    ref = analyze(g, merged=True, seed=7)
    assert len(data) == 1 and data[0]["n"] == 32 and data[0]["graph"]["head"] == "merged"
    assert data[0]["paths"]["mean"] == pytest.approx(ref["paths"]["mean"])
    assert data[0]["spectral"]["gap"] == pytest.approx(ref["spectral"]["gap"])


def test_errors_are_one_line_with_status_2(runs) -> None:
    p = runs["unknown_pattern"]
    message = "sparsegraph analyze: error: unknown pattern 'no_such_pattern'"
    assert p.returncode == 2 and p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), p.stderr


@pytest.mark.parametrize("argv, message", [
    (["show", "sliding_window:window=0", "--n", "8"], "sliding_window.window"),
    (["show", "full", "--n", "8", "--head", "3"], "--head must be in [0, 1)"),
    (["show", "full", "--n", "8", "-o", "mask.jpg"], "must end in one of .png, .svg, .pdf"),
    (["show", "full", "--n", "8", "-o", "missing_dir/x.png"], "output directory 'missing_dir' does not exist"),
    (["show", "full", "--n", "200", "--block", "1"], "characters per row"),
    (["analyze", "full", "--n", "16,abc"], "--n must be a comma-separated list"),
    (["analyze", "full", "--n", "16", "--metrics", "paths,nope"], "metrics must be a non-empty list"),
    (["analyze", "full", "--n", "16", "--import", "no_such_module_xyz"], "--import 'no_such_module_xyz': no such module"),
    (["analyze", "full", "--n", "16", "--import", "missing_file.py"], "no such file 'missing_file.py'"),
    (["analyze", "full", "--n", "16", "--plot", "/no/such/dir/p.png"], "output directory '/no/such/dir'"),
])
def test_bad_input_in_process(argv: list[str], message: str, capsys, tmp_path, monkeypatch) -> None:
    from sparsegraph.experiments.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"sparsegraph {argv[0]}: error:" in err[0] and message in err[0], err
    assert not list(tmp_path.iterdir())  # nothing written
