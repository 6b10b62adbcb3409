"""The record of one calibration-CNN run: ``pathfinder_cnn --out DIR`` writes ``DIR/cnn_run.json``.

Free of torch: ``docs/make_results.py`` reads these records to render its tables, and needs none
of the training code for that.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from sparsegraph.experiments.infra.atomic import atomic_write_bytes

__all__ = ["RUN_FILE", "CnnRun"]

#: The file ``--out DIR`` writes: one run's :class:`CnnRun` as JSON.
RUN_FILE = "cnn_run.json"


@dataclasses.dataclass(frozen=True)
class CnnRun:
    """What one run of ``pathfinder_cnn`` measured, as ``--out DIR`` stores it
    (``DIR/cnn_run.json``) and ``docs/make_results.py`` reads it back (:meth:`read`).

    Attributes:
        command: the command line, as typed (``python -m ...pathfinder_cnn ARGS``).
        commit: the git commit of the code that ran (``""`` outside a git checkout; see
            :func:`sparsegraph.experiments.infra.source.source_state`, read when the run
            starts), ``dirty`` whether it had uncommitted changes, ``commit_note`` why
            ``commit`` is empty.
        written: when the record was written (local time, ``YYYY-MM-DD HH:MM:SS``).
        data: how the training images were drawn: ``"N fixed images"`` or ``"fresh images every
            step"`` with the curriculum, if any.
        difficulty: ``easy`` / ``intermediate`` / ``hard`` (contour length 6 / 9 / 14).
        distractors: distractor snakes of the validation and test images (and of the training
            images once a curriculum has reached them).
        steps, batch, lr, channels, seed, data_seed: the training settings; ``steps`` is the
            number of updates made (fewer than asked when ``--minutes`` ran out).
        evals: ``(step, validation accuracy)`` of every evaluation.
        final_val, best_val, best_step: the last evaluation, and the best one (the earliest on
            ties; a maximum over many noisy evaluations flatters).
        test: accuracy on the fixed test images after the last step; ``test_count`` their number.
        majority_val, majority_test: the majority-class rates of the two splits.
        late_loss: mean training loss of the last 100 updates (or all, if fewer).
        seconds: wall time of the training loop.
    """

    command: str
    commit: str
    dirty: bool
    commit_note: str
    written: str
    data: str
    difficulty: str
    distractors: int
    steps: int
    batch: int
    lr: float
    channels: int
    seed: int
    data_seed: int
    evals: tuple[tuple[int, float], ...]
    final_val: float
    best_val: float
    best_step: int
    test: float
    test_count: int
    majority_val: float
    majority_test: float
    late_loss: float
    seconds: float

    def write(self, out: str | Path) -> Path:
        """Write ``out/cnn_run.json`` atomically (creating ``out``); returns its path."""
        path = Path(out) / RUN_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        data = dataclasses.asdict(self)
        atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())
        return path

    @classmethod
    def read(cls, path: str | Path) -> "CnnRun":
        """The record in ``path`` (a ``cnn_run.json`` or the directory holding one); a missing
        or foreign file is a ``ValueError`` naming it."""
        path = Path(path)
        if path.is_dir():
            path = path / RUN_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{str(path)!r}: no such file (expected the {RUN_FILE} that "
                             f"pathfinder_cnn --out writes)") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{str(path)!r}: not JSON ({e})") from None
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(data, dict) or sorted(data) != sorted(names):
            raise ValueError(f"{str(path)!r}: expected the fields {names}")
        data["evals"] = tuple((int(a), float(b)) for a, b in data["evals"])
        return cls(**data)
