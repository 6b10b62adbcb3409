"""One import namespace: the folders patterns/, kernels/, experiments/ install as
``sparsegraph.patterns``, ``sparsegraph.kernels``, ``sparsegraph.experiments``, and nothing
installs a top-level ``kernels``, ``patterns`` or ``experiments`` (names other distributions use:
Hugging Face's ``kernels``, a dependency of transformers, among them).

Checked for the editable install (the test environment's) and for a built wheel, each imported
from outside the repository, and with foreign top-level ``kernels``/``patterns``/``experiments``
packages first on ``sys.path`` for the library, the CLI and a ``compare`` worker subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"sparsegraph": "sparsegraph", "patterns": "sparsegraph.patterns",
           "kernels": "sparsegraph.kernels", "experiments": "sparsegraph.experiments"}
FOREIGN = ("kernels", "patterns", "experiments")

# The library's own smoke test, run in a subprocess: patterns -> layout -> attention.
SMOKE = """
import sys, torch
from sparsegraph import kernels, patterns
from sparsegraph.layout import compile as compile_layout
g = patterns.get("sliding_window:window=5").build(32, heads=2)
q = k = v = torch.randn(1, 2, 32, 16)
out = kernels.attention(q, k, v, compile_layout(g, 16), backend="torch")
ref = kernels.attention(q, k, v, compile_layout(g, 16), backend="reference")
assert torch.allclose(out, ref, atol=1e-5)
print(kernels.__file__)
"""


def _packages_on_disk() -> set[str]:
    found = set()
    for folder, dotted in FOLDERS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([dotted, *rel.parts]))
    return found


def test_pyproject_lists_every_package_folder() -> None:
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(tool["packages"]) == _packages_on_disk()
    assert {k: v for k, v in tool["package-dir"].items()} == {v: k for k, v in FOLDERS.items()}


def _foreign_path(tmp: Path) -> Path:
    """Foreign top-level packages named like our folders, each marking itself as foreign."""
    root = tmp / "foreign"
    for name in FOREIGN:
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text(f"FOREIGN = {name!r}\n")
    return root


def _env(*paths: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join(map(str, paths))
    env.update(extra)
    return env


def test_editable_install_from_outside_the_repository(tmp_path: Path) -> None:
    foreign = _foreign_path(tmp_path)
    code = SMOKE + "import kernels, patterns, experiments\nassert kernels.FOREIGN == 'kernels'\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(foreign),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Path(proc.stdout.strip().splitlines()[-1]).resolve() == REPO / "kernels" / "__init__.py"


def test_cli_runs_with_foreign_packages_first(tmp_path: Path) -> None:
    foreign = _foreign_path(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "sparsegraph.experiments.cli", "show", "full",
                           "--n", "16", "--block", "16"], cwd=tmp_path, env=_env(foreign),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_wheel_installs_only_the_sparsegraph_namespace(tmp_path: Path) -> None:
    # Built from a copy of the sources, so setuptools' build/ folder never lands in the checkout.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for name in FOLDERS:
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(dist), str(src)], cwd=tmp_path, capture_output=True,
                           text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = dist.glob("sparsegraph-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"sparsegraph"}
    for dotted in _packages_on_disk():
        assert "/".join(dotted.split(".")) + "/__init__.py" in names, dotted
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    # The unpacked wheel first on the path: `sparsegraph` and every subpackage come from it, never
    # from the repository (the editable finder is only asked for what the path does not have).
    foreign = _foreign_path(tmp_path)
    proc = subprocess.run([sys.executable, "-c", SMOKE], cwd=tmp_path, env=_env(site, foreign),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Path(proc.stdout.strip().splitlines()[-1]).resolve().is_relative_to(site.resolve())
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "sparsegraph = sparsegraph.experiments.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


USER_MODULE = '''
from sparsegraph import patterns

@patterns.register("user_stripes")
def user_stripes(n: int, *, stride: int = 4):
    import numpy as np
    i, j = np.ogrid[:n, :n]
    return (j % stride == 0) | (i == j) | (j == 0)
'''


def test_compare_worker_imports_a_module_from_the_working_directory(tmp_path: Path) -> None:
    # `--import user_patterns` names a module beside the user: the compare process and its worker
    # subprocesses must both find it, with foreign top-level packages first on the path.
    from test_compare_cli import TINY

    (tmp_path / "user_patterns.py").write_text(USER_MODULE)
    foreign = _foreign_path(tmp_path)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sparsegraph.experiments.cli", "compare", "--task", "listops",
           "--patterns", "user_stripes:stride=4", "--import", "user_patterns", "--preset", "cpu",
           "--seeds", "1", "--out", str(out), "--threads", "1", "--no-sweep", "--no-plots", *TINY]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env=_env(foreign, SPARSEGRAPH_DATA=str(tmp_path / "cache")))
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = json.loads((out / "results.json").read_text())["tasks"]["listops"]["runs"]
    assert [(r["label"], r["status"]) for r in runs] == [("user_stripes:stride=4", "done")]
