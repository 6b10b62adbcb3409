"""Every ``sparsegraph`` command in the code blocks of the docs and the README parses: its
subcommand and options exist, and a ``compare`` command's ``--set`` overrides name real keys of
its task's config.

Parsing only (nothing runs): the commands that train for minutes are run by their own tests and
by the main job; this catches a renamed option or config key that the docs still show.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from sparsegraph.experiments.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
_SHELL = ("bash", "sh", "console", "")


def _blocks(text: str) -> list[str]:
    """Bodies of the fenced code blocks whose language is a shell's or none."""
    out, lang, body = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, body = line[3:].strip(), []
            else:
                if lang in _SHELL:
                    out.append("\n".join(body) + "\n")
                lang = None
        elif lang is not None:
            body.append(line)
    return out


def _commands(page: Path) -> list[tuple[str, list[str]]]:
    """``(shown text, argv after the program name)`` of each sparsegraph command in the page's
    shell and plain code blocks (not the error messages shown there, ``sparsegraph train: error``); ``torchrun ... -m sparsegraph.experiments.cli ARGS`` counts as ``sparsegraph ARGS``."""
    out = []
    for body in _blocks(page.read_text()):
        for line in re.sub(r"\\\n\s*", " ", body).splitlines():
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            program = words[0].rsplit("/", 1)[-1] if words else ""  # sparsegraph, .venv/bin/sparsegraph
            if program == "sparsegraph" and len(words) > 1 and not words[1].endswith(":"):
                out.append((line, words[1:]))
            elif words[:1] == ["torchrun"] and "sparsegraph.experiments.cli" in words:
                out.append((line, words[words.index("sparsegraph.experiments.cli") + 1:]))
    return out


CASES = [(f"{page.name}: {text}", argv) for page in PAGES for text, argv in _commands(page)]


def test_the_docs_show_commands() -> None:
    # guards the scan itself: a broken pattern would make the test below check nothing
    pages = {case.split(":")[0] for case, _ in CASES}
    assert len(CASES) >= 20 and {"README.md", "kernels.md", "training.md", "compare.md", "analysis.md"} <= pages


@pytest.mark.parametrize("shown,argv", CASES, ids=[c for c, _ in CASES])
def test_docs_command_parses(shown: str, argv: list[str], capsys) -> None:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse's exit: 0 after --help, 2 on an unknown option or command
        if e.code == 0:
            return
        pytest.fail(f"{shown!r} does not parse: {capsys.readouterr().err.strip()} (exit {e.code})")
    if args.command == "compare":
        _check_compare_overrides(args)


def _check_compare_overrides(args: argparse.Namespace) -> None:
    from sparsegraph.experiments.compare import charlm
    from sparsegraph.experiments.lra.recipes import get_recipe

    for task in str(args.task).split(","):
        if task.strip() == charlm.TASK:
            charlm.config(args.preset, list(args.overrides))
        else:
            get_recipe(task.strip(), args.preset, list(args.overrides))
