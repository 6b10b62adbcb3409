"""Files that a kill cannot tear: write to a temporary file beside the target, then rename.

The bytes go to a new file in the *same* directory (``.tmp-<name>-<random>``), which is flushed
and ``fsync``'ed, then ``os.replace``'d over the target (an atomic rename on POSIX and Windows), and
the directory itself is fsync'ed so the rename survives a power cut. A process killed at any
moment leaves either the old file or the new one, never a torn mix. Used for checkpoints
(:mod:`sparsegraph.experiments.train.checkpoint`), the generated-data cache (:mod:`sparsegraph.experiments.lra.cache`)
and saved configurations. Free of torch.
"""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write", "atomic_write_bytes", "fsync_dir"]


def fsync_dir(path: Path) -> None:
    """fsync a directory (so a rename in it survives a power cut); a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temporary(path: Path) -> tuple[int, str]:
    """A new, exclusively created file next to ``path``. Unlike ``tempfile.mkstemp`` (mode 0600) it
    gets the usual permissions (0666 minus the umask), so checkpoints are as readable as other files."""
    for _ in range(100):
        tmp = str(path.parent / f".tmp-{path.name}-{secrets.token_hex(6)}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file next to {str(path)!r}")


def atomic_write(path: str | os.PathLike[str], write: Callable[[io.BufferedWriter], None]) -> None:
    """Create ``path`` atomically: ``write(f)`` fills a temporary file that is then renamed over it.

    If ``write`` raises (or the process dies), the previous contents of ``path`` are untouched and
    the temporary file is removed (or, after a kill, left as ``.tmp-*`` for the next cleanup).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(data))
