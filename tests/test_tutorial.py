"""The docs run: the "define your own pattern" tutorial in docs/patterns.md (its code blocks and
commands; the pattern it registers is removed afterwards), and every command in docs/analysis.md."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _tutorial() -> str:
    text = (DOCS / "patterns.md").read_text()
    start = text.index("## Define your own pattern in ten lines")
    return text[start:]


def test_tutorial_pattern_fits_in_ten_lines() -> None:
    module = _blocks(_tutorial(), "python")[0]
    assert module.startswith("# my_patterns.py")
    code = [line for line in module.splitlines()[1:] if line.strip()]
    assert len(code) <= 10, code


def test_tutorial_code_and_commands_run(tmp_path: Path, monkeypatch, capsys) -> None:
    """Run the tutorial's module, its usage code and its commands in this process, in a scratch
    directory; the pattern it registers is unregistered afterwards."""
    import runpy

    from sparsegraph import patterns
    from sparsegraph.experiments.cli import main
    from sparsegraph.analysis import flow_depth

    tut = _tutorial()
    module, usage = _blocks(tut, "python")[:2]
    commands = [line[2:] for block in _blocks(tut, "console") for line in block.splitlines() if line.startswith("$ ")]
    assert commands and all(c.startswith("sparsegraph ") for c in commands)
    (tmp_path / "my_patterns.py").write_text(module)
    (tmp_path / "usage.py").write_text(usage)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        runpy.run_path("usage.py")
        out = capsys.readouterr().out
        assert "pattern" in out and "stripes:window=16,stride=32" in out
        assert (tmp_path / "stripes.png").read_bytes().startswith(b"\x89PNG")
        # the tutorial's claim: the stripes' flow depth is 5 at every n
        for n in (256, 1024, 2048):
            assert flow_depth(patterns.build("stripes:window=16,stride=32", n)) == 5, n
        for line in commands:
            assert main(shlex.split(line)[1:]) == 0, (line, capsys.readouterr().err)
            assert capsys.readouterr().out.strip()
    finally:
        if "stripes" in {p.name for p in patterns.available()}:
            patterns.unregister("stripes")
        sys.modules.pop("my_patterns", None)


def _analysis_commands() -> list[str]:
    text = (DOCS / "analysis.md").read_text()
    return [line[2:] for block in _blocks(text, "console") for line in block.splitlines() if line.startswith("$ ")]


def test_analysis_doc_lists_commands() -> None:
    cmds = _analysis_commands()
    assert any(c.startswith("sparsegraph show") for c in cmds)
    assert any(c.startswith("sparsegraph analyze") for c in cmds)


@pytest.mark.parametrize("command", _analysis_commands())
def test_analysis_doc_commands_work(command: str, tmp_path: Path, monkeypatch, capsys) -> None:
    from sparsegraph.experiments.cli import main

    monkeypatch.chdir(tmp_path)
    argv = shlex.split(command)
    assert argv[0] == "sparsegraph"
    assert main(argv[1:]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.strip()
    if "-o" in argv:
        assert (tmp_path / argv[argv.index("-o") + 1]).stat().st_size > 2000
