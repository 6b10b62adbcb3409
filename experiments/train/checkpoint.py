"""Checkpoints that a kill cannot tear, and the run's checkpoint directory.

Every file is written atomically: the bytes go to a temporary file in the *same* directory
(``.tmp-<name>-<random>``), which is flushed and ``fsync``'ed, then ``os.replace``'d over the
target (an atomic rename on POSIX and Windows), and the directory itself is fsync'ed so the rename
survives a power cut. A process killed at any moment therefore leaves either the old file or the new
one, never a torn mix; stray temporary files are ignored and cleaned up.

:class:`CheckpointManager` keeps ``step-<n>.pt`` files for the last ``keep_last`` checkpoints and
``best.pt`` for the best evaluation so far (a hard link to the step file when the file system
allows it, else a copy), and finds the newest readable checkpoint to resume from.

A checkpoint is a plain dict saved with ``torch.save`` and loaded with ``weights_only=True`` (see
:mod:`sparsegraph.experiments.train.rng` for the generator states it holds).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from sparsegraph.experiments.infra.atomic import atomic_write, atomic_write_bytes, fsync_dir

__all__ = [
    "atomic_write_bytes",
    "save_checkpoint",
    "load_checkpoint",
    "load_model_weights",
    "CheckpointManager",
]

_STEP_RE = re.compile(r"step-(\d+)\.pt")


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """``torch.save(state)`` to ``path`` atomically."""
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Uses ``weights_only=True`` (no arbitrary pickled code is run): checkpoints hold only tensors,
    numbers, strings and containers of them. A missing file raises ``FileNotFoundError``; a file that
    is not a checkpoint raises ``ValueError`` naming it.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {str(p)!r} does not exist")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # torn, truncated or foreign file
        raise ValueError(f"checkpoint {str(p)!r} cannot be read ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {str(p)!r} holds a {type(state).__name__}, expected a dict")
    return state


class CheckpointManager:
    """The ``checkpoints/`` directory of a run.

    ``save(step, state, is_best)`` writes ``step-<step>.pt`` (zero-padded, so names sort by step),
    points ``best.pt`` at it when ``is_best``, and deletes step files beyond the newest
    ``keep_last`` (never the one ``best.pt`` shares). ``latest()`` is the newest step file that
    loads, so a checkpoint damaged by something other than our own writes (disk full, manual
    truncation) falls back to the one before.
    """

    def __init__(self, directory: str | os.PathLike[str], keep_last: int = 2) -> None:
        if not isinstance(keep_last, int) or isinstance(keep_last, bool) or keep_last < 1:
            raise ValueError(f"keep_last must be an int >= 1, got {keep_last!r}")
        self.dir = Path(directory)
        self.keep_last = keep_last

    def path_for(self, step: int) -> Path:
        return self.dir / f"step-{step:09d}.pt"

    @property
    def best_path(self) -> Path:
        return self.dir / "best.pt"

    def steps(self) -> list[int]:
        """Steps of the step files on disk, ascending."""
        if not self.dir.is_dir():
            return []
        out = []
        for p in self.dir.iterdir():
            m = _STEP_RE.fullmatch(p.name)
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    def save(self, step: int, state: dict[str, Any], *, is_best: bool = False) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._remove_temporaries()
        path = self.path_for(step)
        save_checkpoint(path, state)
        if is_best:
            self._point_best_at(path)
        self._prune()
        return path

    def _point_best_at(self, path: Path) -> None:
        tmp = str(self.dir / f".tmp-best.pt-{secrets.token_hex(6)}")
        try:
            os.link(path, tmp)  # cheap and atomic: best.pt and step-N.pt share the same bytes
        except OSError:
            shutil.copyfile(path, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, self.best_path)
        fsync_dir(self.dir)

    def _best_inode(self) -> tuple[int, int] | None:
        try:
            st = self.best_path.stat()
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino)

    def _prune(self) -> None:
        steps = self.steps()
        best = self._best_inode()
        for s in steps[: max(0, len(steps) - self.keep_last)]:
            p = self.path_for(s)
            st = p.stat()
            # Deleting a hard link to best.pt would be harmless (best.pt keeps the bytes), but we
            # keep it so the best step's file stays visible next to its number.
            if best is not None and (st.st_dev, st.st_ino) == best:
                continue
            p.unlink()

    def _remove_temporaries(self) -> None:
        for p in self.dir.glob(".tmp-*"):
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def latest(self, map_location: str | torch.device = "cpu") -> tuple[Path, dict[str, Any]] | None:
        """The newest readable step checkpoint and its contents, or ``None`` if there is none."""
        for s in reversed(self.steps()):
            p = self.path_for(s)
            try:
                return p, load_checkpoint(p, map_location)
            except ValueError:
                continue
        return None


def load_model_weights(
    model: nn.Module,
    checkpoint: str | os.PathLike[str] | Mapping[str, Any],
    *,
    prefix: str = "",
    target_prefix: str = "",
    strict: bool = True,
    tile: Sequence[str] = (),
) -> list[str]:
    """Copy the tensors under ``prefix`` in a checkpoint's ``model`` state into ``model`` (under
    ``target_prefix``). Returns the names loaded.

    Used for fine-tuning: ``prefix="encoder."`` takes a pretrained MLM model's encoder into a
    classifier's encoder (``target_prefix="encoder."``). Only tensors are copied: non-tensor state
    (e.g. the identity of an attention layout) stays the target model's, so a model can be
    fine-tuned with another attention graph than it was pretrained with.

    ``tile``: ``fnmatch`` patterns of (target) names whose first dimension may be *longer* in the
    model than in the checkpoint; their pretrained rows are repeated to fill it — how Longformer
    (Beltagy et al. 2020, §5) extends RoBERTa's 512 learned position embeddings to 4,096 positions.

    With ``strict``, every tensor of ``model`` under ``target_prefix`` must be found with the same
    shape (after tiling); a missing name or a shape mismatch is a ``ValueError`` naming them.
    """
    import fnmatch

    state = load_checkpoint(checkpoint) if not isinstance(checkpoint, Mapping) else checkpoint
    src = state.get("model", state)
    if not isinstance(src, Mapping):
        raise ValueError("checkpoint has no 'model' state dict")
    picked = {
        target_prefix + k[len(prefix):]: v for k, v in src.items()
        if k.startswith(prefix) and isinstance(v, torch.Tensor)
    }
    if not picked:
        raise ValueError(
            f"checkpoint has no weights under prefix {prefix!r}; its keys start with "
            f"{sorted({k.split('.')[0] for k in src})}"
        )
    own = {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)}
    for k, v in list(picked.items()):
        if k in own and any(fnmatch.fnmatchcase(k, pat) for pat in tile):
            want = own[k].shape
            if v.dim() >= 1 and v.shape[1:] == want[1:] and 0 < v.shape[0] < want[0]:
                reps = -(-want[0] // v.shape[0])
                picked[k] = v.repeat(reps, *([1] * (v.dim() - 1)))[: want[0]]
    targets = {k for k in own if k.startswith(target_prefix)}
    missing = sorted(targets - picked.keys())
    unexpected = sorted(picked.keys() - own.keys())
    mismatched = [
        f"{k}: checkpoint {tuple(picked[k].shape)} vs model {tuple(own[k].shape)}"
        for k in sorted(picked.keys() & own.keys())
        if picked[k].shape != own[k].shape
    ]
    if strict and (missing or unexpected or mismatched):
        parts = []
        if missing:
            parts.append(f"missing from the checkpoint: {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"not in the model: {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
        if mismatched:
            parts.append(f"shape mismatch: {mismatched[:8]}")
        raise ValueError("cannot load the checkpoint weights: " + "; ".join(parts))
    loadable = {k: v for k, v in picked.items() if k in own and own[k].shape == v.shape}
    with torch.no_grad():
        for k, v in loadable.items():
            own[k].copy_(v)
    return sorted(loadable)
