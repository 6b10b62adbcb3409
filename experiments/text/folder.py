"""Text classification from a folder of text files, one sub-folder per class.

    root/train/<class>/*.txt        required
    root/val/<class>/*.txt          optional: otherwise ``val_fraction`` of train, drawn with a seed
    root/test/<class>/*.txt         optional: otherwise the task has no test split

The classes are the sub-folder names of ``train`` (sorted; label ``i`` is the ``i``-th name), and
``val``/``test`` may only use those. Every file is one example, encoded by the same tokenizers as
masked-LM pretraining (:mod:`sparsegraph.experiments.text.mlm`: UTF-8 bytes by default, ``pad = 0``), truncated to
``max_length`` tokens and padded — so an encoder pretrained with ``sparsegraph pretrain`` reads
these ids exactly as it learned them. The result is an :class:`experiments.lra.TaskData`, batched
like the LRA tasks (``tokens``, ``labels``, ``lengths``; deterministic in ``(seed, epoch)``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from sparsegraph.experiments.lra.datasets import Split, TaskData
from sparsegraph.experiments.text.mlm import Tokenizer, load_tokenizer

__all__ = ["load_text_folder"]


def _class_files(split_dir: Path, extensions: Sequence[str]) -> dict[str, list[Path]]:
    classes = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    return {c: sorted(f for f in (split_dir / c).rglob("*") if f.is_file() and f.suffix in extensions) for c in classes}


def _encode(files: list[tuple[Path, int]], tok: Tokenizer, max_length: int) -> Split:
    tokens = np.full((len(files), max_length), tok.pad_id, dtype=np.int64)
    lengths = np.zeros(len(files), dtype=np.int64)
    labels = np.zeros(len(files), dtype=np.int64)
    for i, (f, label) in enumerate(files):
        ids = np.asarray(tok.encode(f.read_text(encoding="utf-8", errors="replace")), dtype=np.int64)[:max_length]
        if ids.size == 0:
            raise ValueError(f"text file {str(f)!r} is empty: every example needs at least one token")
        tokens[i, : ids.size] = ids
        lengths[i] = ids.size
        labels[i] = label
    return Split(tokens=tokens, labels=labels, lengths=lengths)


def load_text_folder(
    root: str | os.PathLike[str],
    *,
    max_length: int = 512,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    tokenizer: str | Tokenizer = "bytes",
    extensions: Sequence[str] = (".txt",),
) -> TaskData:
    """Load ``root`` (layout in the module docstring) as a classification :class:`TaskData`."""
    root = Path(root)
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise FileNotFoundError(
            f"text folder {str(root)!r} has no 'train' directory; expected {root}/train/<class>/*.txt "
            "(and optionally val/ and test/ alike)"
        )
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    tok = load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
    train = _class_files(train_dir, extensions)
    classes = list(train)
    if len(classes) < 2 or any(not fs for fs in train.values()):
        raise ValueError(
            f"{train_dir} must hold at least 2 class folders, each with files ending in {list(extensions)}; "
            f"found {{{', '.join(f'{c}: {len(fs)}' for c, fs in train.items())}}}"
        )
    index = {c: i for i, c in enumerate(classes)}
    examples = {"train": [(f, index[c]) for c in classes for f in train[c]]}
    for split in ("val", "test"):
        d = root / split
        if d.is_dir():
            found = _class_files(d, extensions)
            unknown = sorted(set(found) - set(index))
            if unknown:
                raise ValueError(f"{d} has class folders {unknown} that {train_dir} does not have (classes: {classes})")
            examples[split] = [(f, index[c]) for c in classes for f in found.get(c, [])]
    if "val" not in examples:
        ex = examples["train"]
        perm = np.random.default_rng([split_seed, 0x7E57]).permutation(len(ex))
        n_val = min(len(ex) - 1, max(1, int(round(val_fraction * len(ex)))))
        examples["val"] = [ex[i] for i in sorted(perm[:n_val])]
        examples["train"] = [ex[i] for i in sorted(perm[n_val:])]
    splits = {k: _encode(v, tok, max_length) for k, v in examples.items() if v}
    info = {"source": "text_folder", "root": str(root), "classes": classes, "tokenizer": repr(tok)}
    return TaskData("text_folder", splits, tok.vocab_size, len(classes), tok.pad_id, False, info)
