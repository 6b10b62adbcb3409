"""Masked-language-model data on plain-text files.

Text -> token ids (:class:`ByteTokenizer` by default: one id per UTF-8 byte, ``id = byte + 3``, after
the special tokens ``pad = 0``, ``mask = 1``, ``cls = 2``; or a tokenizer of the user's, see
:func:`load_tokenizer`) -> one long stream (documents joined in file order) -> consecutive
sequences of ``max_length`` ids (the last one padded) -> a fixed train/validation split of the
sequences -> BERT masking. No ``[CLS]`` id is put in the sequences: the project's encoder prepends
its own learned CLS vector (``ModelConfig.pooling = "cls"``), so the id stays reserved.

**Masking** (Devlin et al. 2019, "BERT", §3.1 and appendix A.1): of the positions that hold a
real, non-special token, ``k = max(1, round(mask_prob * eligible))`` are chosen uniformly without
replacement (``mask_prob = 0.15``); each chosen position is replaced by ``[MASK]`` with probability
0.8, by a uniformly random non-special token with probability 0.1, and left unchanged with
probability 0.1. The model must predict the original token at every chosen position (``labels``
holds it there and ``-100`` everywhere else, the ``ignore_index`` of ``cross_entropy``).

**Determinism**: nothing here uses a global random generator. The split is drawn from
``split_seed``; the training order of epoch ``e`` from ``(seed, e)``; the masks of sequence ``i`` in
epoch ``e`` from ``(seed, e, i)`` (validation always uses epoch 0, so its loss is comparable across
evaluations). So a run is reproducible, a resumed run sees the same masks, and every data-parallel
process computes the same global batch.
"""

from __future__ import annotations

import importlib
import math
import os
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from sparsegraph.experiments.text.mlm_config import MLMDataConfig
from torch import nn

__all__ = [
    "Tokenizer",
    "ByteTokenizer",
    "load_tokenizer",
    "MLMDataConfig",
    "mask_tokens",
    "find_text_files",
    "stdlib_text_files",
    "MLMData",
    "MLMObjective",
    "IGNORE_INDEX",
]

IGNORE_INDEX = -100


@runtime_checkable
class Tokenizer(Protocol):
    """What MLM data needs from a tokenizer.

    ``encode(text)`` returns a sequence of ints in ``[0, vocab_size)``; ``pad_id``, ``mask_id`` and
    ``cls_id`` are distinct special ids that ``encode`` does not produce for ordinary text.
    """

    vocab_size: int
    pad_id: int
    mask_id: int
    cls_id: int

    def encode(self, text: str) -> Sequence[int]: ...


class ByteTokenizer:
    """UTF-8 bytes as tokens: ``pad = 0``, ``mask = 1``, ``cls = 2``, byte ``b`` -> ``b + 3``.

    The vocabulary has 259 ids. Any text is encodable (no unknown token); ``decode`` inverts
    ``encode`` exactly for valid UTF-8 and skips special ids.
    """

    pad_id = 0
    mask_id = 1
    cls_id = 2
    offset = 3
    vocab_size = 256 + 3

    def encode(self, text: str) -> np.ndarray:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64) + self.offset

    def decode(self, ids: Sequence[int] | np.ndarray | torch.Tensor) -> str:
        a = np.asarray(ids.tolist() if isinstance(ids, torch.Tensor) else ids, dtype=np.int64)
        a = a[a >= self.offset] - self.offset
        return a.astype(np.uint8).tobytes().decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return "ByteTokenizer()"


def load_tokenizer(spec: str) -> Tokenizer:
    """The tokenizer named by ``spec``: ``""`` or ``"bytes"`` for :class:`ByteTokenizer`,
    ``"hf:DIR"`` for the Hugging Face tokenizer saved in the local directory ``DIR``
    (:func:`sparsegraph.hf.load_tokenizer`; needs the ``hf`` extra), or ``"module:callable"``, a
    zero-argument callable (class or factory) returning an object with the :class:`Tokenizer`
    attributes. The object is checked and a ``TypeError``/``ValueError`` names what is missing or
    inconsistent."""
    if spec in ("", "bytes"):
        return ByteTokenizer()
    if isinstance(spec, str) and spec.startswith("hf:"):
        from sparsegraph.hf.tokenizer import load_tokenizer as load_hf

        if not spec[3:]:
            raise ValueError("tokenizer 'hf:DIR' needs the directory of a saved Hugging Face tokenizer after 'hf:'")
        return load_hf(spec[3:])
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"tokenizer must be 'bytes' or 'module:callable', got {spec!r}")
    mod_name, attr = spec.split(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise ValueError(f"tokenizer {spec!r}: cannot import module {mod_name!r} ({e})") from e
    factory = getattr(mod, attr, None)
    if not callable(factory):
        raise ValueError(f"tokenizer {spec!r}: module {mod_name!r} has no callable {attr!r}")
    tok = factory()
    for name in ("vocab_size", "pad_id", "mask_id", "cls_id"):
        v = getattr(tok, name, None)
        if not isinstance(v, int) or isinstance(v, bool):
            raise TypeError(f"tokenizer {spec!r}: attribute {name!r} must be an int, got {v!r}")
    if not callable(getattr(tok, "encode", None)):
        raise TypeError(f"tokenizer {spec!r}: needs an encode(text) -> list[int] method")
    specials = (tok.pad_id, tok.mask_id, tok.cls_id)
    if len(set(specials)) != 3 or not all(0 <= s < tok.vocab_size for s in specials):
        raise ValueError(
            f"tokenizer {spec!r}: pad_id, mask_id, cls_id must be distinct ids in [0, vocab_size="
            f"{tok.vocab_size}), got {specials}"
        )
    return tok


def mask_tokens(
    ids: np.ndarray,
    rng: np.random.Generator,
    *,
    mask_prob: float,
    mask_id: int,
    special: np.ndarray,
    random_ids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """BERT masking of one sequence (see the module docstring).

    Args:
        ids: the sequence, shape ``[n]``.
        special: bool ``[n]``, positions never chosen (padding, special tokens).
        random_ids: the ids a "random token" replacement draws from (uniformly).
    Returns:
        ``(inputs, labels)``: the corrupted sequence and the targets (``-100`` where not chosen).
    """
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 1 or special.shape != ids.shape:
        raise ValueError(f"ids must be 1-D with special of the same shape, got {ids.shape} and {special.shape}")
    if not 0.0 < mask_prob <= 1.0:
        raise ValueError(f"mask_prob must be in (0, 1], got {mask_prob}")
    eligible = np.flatnonzero(~special)
    inputs = ids.copy()
    labels = np.full_like(ids, IGNORE_INDEX)
    if eligible.size == 0:
        return inputs, labels
    k = max(1, int(round(mask_prob * eligible.size)))
    chosen = np.sort(rng.choice(eligible, size=k, replace=False))
    u = rng.random(k)
    labels[chosen] = ids[chosen]
    inputs[chosen[u < 0.8]] = mask_id
    rand_pos = chosen[(u >= 0.8) & (u < 0.9)]
    inputs[rand_pos] = random_ids[rng.integers(0, random_ids.size, size=rand_pos.size)]
    return inputs, labels


def find_text_files(paths: Sequence[str | os.PathLike[str]], extensions: Sequence[str]) -> list[Path]:
    """The files among ``paths``; directories contribute their files with ``extensions``
    (recursively, sorted). A missing path is a ``FileNotFoundError`` naming it."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in extensions)
            if not found:
                raise FileNotFoundError(f"directory {str(p)!r} holds no files ending in {list(extensions)}")
            out.extend(found)
        else:
            raise FileNotFoundError(f"text path {str(p)!r} does not exist")
    if not out:
        raise ValueError("no text given: pass --text PATH [PATH ...] (files or directories) or --demo")
    return out


def stdlib_text_files() -> list[Path]:
    """The ``.py`` files of the running Python's standard library (its own source and docstrings),
    sorted, without the ``test`` packages, ``site-packages`` and caches."""
    root = Path(sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise FileNotFoundError(f"the standard library directory {str(root)!r} does not exist")
    skip = {"test", "tests", "site-packages", "dist-packages", "__pycache__", "idle_test"}
    files = sorted(
        f for f in root.rglob("*.py")
        if not (skip & set(f.relative_to(root).parts[:-1])) and f.is_file()
    )
    if not files:
        raise FileNotFoundError(f"no .py files under the standard library directory {str(root)!r}")
    return files


def _read_limited(files: Sequence[Path], max_bytes: int) -> tuple[list[str], int]:
    texts, total = [], 0
    for f in files:
        data = f.read_bytes()
        if max_bytes and total + len(data) > max_bytes:
            data = data[: max_bytes - total]
        texts.append(data.decode("utf-8", errors="replace"))
        total += len(data)
        if max_bytes and total >= max_bytes:
            break
    return texts, total


class MLMData:
    """Masked-LM batches over a token stream (a :class:`~experiments.train.objective.DataSource`).

    Splits ``"train"`` and ``"val"``. Batches are dicts of ``input_ids`` (long ``[B, n]``),
    ``labels`` (long ``[B, n]``, ``-100`` where nothing is predicted) and ``padding_mask``
    (bool ``[B, n]``, ``True`` at padding — the convention of ``kernels.attention`` and the models).
    """

    def __init__(
        self,
        stream: np.ndarray,
        tokenizer: Tokenizer,
        *,
        max_length: int = 128,
        val_fraction: float = 0.05,
        split_seed: int = 0,
        mask_prob: float = 0.15,
    ) -> None:
        stream = np.asarray(stream, dtype=np.int64)
        if stream.ndim != 1 or stream.size == 0:
            raise ValueError(f"token stream must be a non-empty 1-D array, got shape {stream.shape}")
        if stream.min() < 0 or stream.max() >= tokenizer.vocab_size:
            raise ValueError(
                f"token ids must be in [0, vocab_size={tokenizer.vocab_size}), got range "
                f"[{stream.min()}, {stream.max()}]"
            )
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.mask_prob = mask_prob
        n_seq = math.ceil(stream.size / max_length)
        if n_seq < 2:
            raise ValueError(
                f"the text gives {n_seq} sequence(s) of {max_length} tokens; need at least 2 (one for "
                "validation): give more text or lower data.max_length"
            )
        padded = np.full(n_seq * max_length, tokenizer.pad_id, dtype=np.int64)
        padded[: stream.size] = stream
        seqs = padded.reshape(n_seq, max_length)
        lengths = np.full(n_seq, max_length)
        lengths[-1] = stream.size - (n_seq - 1) * max_length
        perm = np.random.default_rng([split_seed, 0x5EED]).permutation(n_seq)
        n_val = min(n_seq - 1, max(1, int(round(val_fraction * n_seq))))
        self._split_rows = {"val": np.sort(perm[:n_val]), "train": np.sort(perm[n_val:])}
        self._seqs = seqs
        self._lengths = lengths
        specials = {tokenizer.pad_id, tokenizer.mask_id, tokenizer.cls_id}
        self._random_ids = np.array([i for i in range(tokenizer.vocab_size) if i not in specials], dtype=np.int64)
        self.num_tokens_total = int(stream.size)

    @classmethod
    def from_config(cls, cfg: MLMDataConfig, tokenizer: Tokenizer | None = None) -> "MLMData":
        """Read the texts named by ``cfg`` (or the stdlib for ``cfg.demo``) and build the data."""
        tok = tokenizer if tokenizer is not None else load_tokenizer(cfg.tokenizer)
        if cfg.demo and cfg.paths:
            raise ValueError("data.demo and data.paths exclude each other: use one")
        files = stdlib_text_files() if cfg.demo else find_text_files(cfg.paths, cfg.extensions)
        texts, _ = _read_limited(files, cfg.max_bytes)
        parts = [np.asarray(tok.encode(t), dtype=np.int64) for t in texts if t]
        stream = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        data = cls(stream, tok, max_length=cfg.max_length, val_fraction=cfg.val_fraction,
                   split_seed=cfg.split_seed, mask_prob=cfg.mask_prob)
        data.files = files[: len(texts)]
        return data

    def split_size(self, split: str) -> int:
        return len(self._rows(split))

    def _rows(self, split: str) -> np.ndarray:
        if split not in self._split_rows:
            raise ValueError(f"MLM data has splits 'train' and 'val', got {split!r}")
        return self._split_rows[split]

    def example(self, split: str, index: int, *, seed: int, epoch: int = 0) -> dict[str, np.ndarray]:
        """Sequence ``index`` of ``split`` with its masks for ``(seed, epoch)`` (validation: epoch 0)."""
        row = int(self._rows(split)[index])
        ids = self._seqs[row]
        n = self._lengths[row]
        special = np.ones(self.max_length, dtype=bool)
        special[:n] = False
        mask_epoch = epoch if split == "train" else 0
        rng = np.random.default_rng([seed, mask_epoch, row, 0x4D4C4D])
        inputs, labels = mask_tokens(ids, rng, mask_prob=self.mask_prob, mask_id=self.tokenizer.mask_id,
                                     special=special, random_ids=self._random_ids)
        return {"input_ids": inputs, "labels": labels, "padding_mask": np.arange(self.max_length) >= n}

    def batches(self, split: str, batch_size: int, *, seed: int, epoch: int = 0, start_step: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """The batches of ``split`` in epoch ``epoch``, from batch number ``start_step`` on.

        The train order is a permutation drawn from ``(seed, epoch)``; validation is in order.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if start_step < 0 or epoch < 0:
            raise ValueError(f"epoch and start_step must be >= 0, got {epoch}, {start_step}")
        n = len(self._rows(split))
        order = np.random.default_rng([seed, epoch, 0x0DE7]).permutation(n) if split == "train" else np.arange(n)
        for b in range(start_step, math.ceil(n / batch_size)):
            exs = [self.example(split, int(i), seed=seed, epoch=epoch) for i in order[b * batch_size:(b + 1) * batch_size]]
            yield {k: torch.from_numpy(np.stack([e[k] for e in exs])) for k in exs[0]}


class MLMObjective:
    """Masked-LM loss: cross-entropy at the chosen positions; metrics ``accuracy`` (of the
    predictions there) and ``count`` (the number of chosen positions, which weights averages).

    ``model(input_ids, padding_mask)`` must return logits ``[B, n, vocab]`` (as
    :class:`experiments.models.MaskedLM` does).
    """

    def loss_and_metrics(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        logits = model(batch["input_ids"], batch["padding_mask"])
        labels = batch["labels"]
        if logits.shape[:2] != labels.shape:
            raise ValueError(f"MLM logits have shape {tuple(logits.shape)}, expected [B, n, vocab] with [B, n] = {tuple(labels.shape)}")
        sel = labels != IGNORE_INDEX
        picked = logits[sel].float()
        target = labels[sel]
        loss = nn.functional.cross_entropy(picked, target)
        acc = (picked.argmax(-1) == target).float().mean()
        return loss, {"accuracy": acc.detach(), "count": int(sel.sum())}

    def num_tokens(self, batch: dict[str, torch.Tensor]) -> int:
        return int((~batch["padding_mask"]).sum())
