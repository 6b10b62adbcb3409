"""Who made a comparison: every ``sparsegraph compare`` invocation on an output directory.

A comparison can be made over several invocations (a resumed run, seeds added later), possibly
at different commits. Each invocation appends an entry to ``OUT/invocations.json`` when it starts
its first run (or, if it trains none, when it writes the results), and adds each (task, pattern,
seed) run to its entry as it starts training it, so a report can say which commit and which
command line trained every run it shows (``docs/make_results.py``). An invocation refused before
training (settings that differ from the directory's runs) leaves no entry. Entries are never
rewritten by later invocations; the file is written atomically, so a killed invocation leaves
it whole.

An entry::

    {"command": "sparsegraph compare --task listops ...",   # as typed (shell-quoted)
     "commit": "0ff1847a...", "dirty": false,              # experiments.infra.source
     "commit_note": "",                                    # why commit is "" (if it is)
     "version": "0.1.0", "cwd": "/home/me/sparsegraph",    # --out and paths are relative to cwd
     "started": "2026-12-04 10:11:12",
     "runs": [["listops", "full", 0], ...]}                # (task, label, seed) it trained
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from sparsegraph.experiments.infra.atomic import atomic_write_bytes
from sparsegraph.experiments.infra.source import SourceState, source_state

__all__ = ["INVOCATIONS_FILE", "InvocationLog", "read_invocations"]

#: The file under a comparison's output directory that lists its invocations.
INVOCATIONS_FILE = "invocations.json"


def read_invocations(out: Path) -> list[dict[str, Any]]:
    """The entries of ``out/invocations.json`` (``[]`` when there is none yet)."""
    path = Path(out) / INVOCATIONS_FILE
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} cannot be read ({e}); use another --out") from None
    entries = doc.get("invocations") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"{path} is not an invocation list (expected {{\"invocations\": [...]}}); "
                         "use another --out")
    return entries


class InvocationLog:
    """This invocation's entry in ``out/invocations.json``: written by :meth:`record` (or the
    first :meth:`trained`), extended by :meth:`trained`. The file is read on construction, so an
    unreadable one stops the comparison before anything is trained."""

    def __init__(self, out: Path, command: str, source: SourceState | None = None) -> None:
        from sparsegraph import __version__

        self.path = Path(out) / INVOCATIONS_FILE
        self._earlier = read_invocations(out)
        src = source if source is not None else source_state()
        self.entry: dict[str, Any] = {
            "command": command, "commit": src.commit, "dirty": src.dirty,
            "commit_note": src.reason, "version": __version__, "cwd": os.getcwd(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": []}
        self._recorded = False

    @property
    def entries(self) -> list[dict[str, Any]]:
        """Every invocation's entry, this one last once it is recorded."""
        return [*self._earlier, self.entry] if self._recorded else list(self._earlier)

    def record(self) -> None:
        """Append this invocation's entry to the file (once; later calls do nothing)."""
        if not self._recorded:
            self._recorded = True
            self._write()

    def trained(self, task: str, label: str, seed: int) -> None:
        """Record that this invocation (starts to) train run (task, label, seed)."""
        run = [task, label, int(seed)]
        if run not in self.entry["runs"]:
            self.entry["runs"].append(run)
            self._recorded = True
            self._write()

    def _write(self) -> None:
        text = json.dumps({"invocations": self.entries}, indent=2) + "\n"
        atomic_write_bytes(self.path, text.encode())
