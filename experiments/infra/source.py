"""Which source code is running: the git commit of the sparsegraph checkout, if it is one.

A result is only reproducible if one can say which code made it, so the commands that write
results (``sparsegraph compare``) record :func:`source_state` beside them. The commit is that of
the git checkout the imported ``sparsegraph`` package lives in (an editable install, ``pip
install -e .``); a wheel installed into ``site-packages`` has no commit and reports ``""``.
Free of torch.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SourceState", "source_state"]

# git answers in milliseconds; the limit only keeps a hung filesystem from hanging a command
_GIT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SourceState:
    """The code a process runs.

    Attributes:
        commit: the full hash of ``HEAD`` of the git checkout that holds the imported
            ``sparsegraph`` package; ``""`` when it is not in one (or git is not installed).
        dirty: tracked files differ from ``HEAD`` (the code that ran is the commit plus
            uncommitted changes). Untracked files are not counted: run outputs and scratch files
            would otherwise mark every checkout dirty.
        reason: why ``commit`` is empty (``""`` when it is not).
    """

    commit: str
    dirty: bool = False
    reason: str = ""


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          timeout=_GIT_TIMEOUT_S, check=False)


def source_state(package_file: str | Path | None = None) -> SourceState:
    """The :class:`SourceState` of the checkout holding ``package_file`` (default: the imported
    ``sparsegraph/__init__.py``).

    The file must be *tracked* by that checkout: a package installed into a virtual environment
    that happens to sit inside some git repository is not that repository's code.
    """
    if package_file is None:
        import sparsegraph

        package_file = sparsegraph.__file__
    path = Path(package_file).resolve()
    if shutil.which("git") is None:
        return SourceState("", reason="git is not installed")
    try:
        top = _git(path.parent, "rev-parse", "--show-toplevel")
        if top.returncode != 0:
            return SourceState("", reason=f"{path.parent} is not in a git checkout")
        root = Path(top.stdout.strip())
        if _git(root, "ls-files", "--error-unmatch", str(path)).returncode != 0:
            return SourceState("", reason=f"{path} is not tracked by the git checkout {root}")
        head = _git(root, "rev-parse", "HEAD")
        if head.returncode != 0:
            return SourceState("", reason=f"the git checkout {root} has no commit")
        status = _git(root, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired) as e:
        return SourceState("", reason=f"git failed: {e}")
    # a status that cannot be read counts as dirty: claiming clean code unchecked would overstate
    dirty = status.returncode != 0 or bool(status.stdout.strip())
    return SourceState(head.stdout.strip(), dirty=dirty)
