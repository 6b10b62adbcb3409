"""Character-level (byte) language modelling: corpora, batches, the objective, the model builder.

**Corpora** (:func:`load_corpus`), each split into train / validation / test bytes:

- ``stdlib`` (the default; no install): prose from Python's standard library, the docstrings
  (``ast.get_docstring``) and comments (``tokenize``) of its ``.py`` files in sorted order, without
  the code; ``max_bytes`` caps it; the last ``test_fraction`` of the bytes is the test split and
  the ``val_fraction`` before it the validation split. Deterministic for a Python version (the
  corpus's sha256 is recorded).
- ``dir``: the text files under ``data_dir`` (sorted), split the same way.
- ``gcide``: the GNU Collaborative International Dictionary of English (Debian ``dict-gcide``,
  ``/usr/share/dictd/gcide.dict.dz``, or ``gcide.dict[.dz]`` in ``data_dir``), split the same way.
- ``enwik8`` / ``text8``: the file ``enwik8`` / ``text8`` (or ``.zip``) in ``data_dir`` with the
  standard splits: the first 90M bytes train, the next 5M validation, the last 5M test
  (``data.splits`` changes the counts, e.g. for a small test file).

Tokens are bytes (vocabulary 256), so "bits per character" is bits per byte, the convention of
enwik8 results (text8 is lower-case ASCII: bytes are characters).

**Batches** (:class:`CharLMData`): a training batch of step ``s`` is ``batch_size`` random windows
of ``seq_len + 1`` bytes of the train split; window ``i`` starts at ``hash(seed, s, i) mod (N -
seq_len)`` (SplitMix64), so a batch is a function of (seed, step, index) only: the same on every
machine and process, and a resumed run draws exactly the batches it would have. The inputs are the
first ``seq_len`` bytes, the targets the last ``seq_len``. Evaluation walks the split's disjoint
windows in order (each byte predicted once; a byte's context is the window's bytes before it).

**Baseline**: :func:`unigram_bits`, the entropy of the training byte distribution in bits, what a
model that ignores context scores on data like the training data.

**Objective** (:class:`CharLMObjective`): cross-entropy in nats (the loss) and ``bpc`` = loss /
ln 2, weighted by the number of predicted bytes.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import math
import sys
import tokenize
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from sparsegraph.experiments.text.charlm_config import ENWIK8_SPLITS, CharLMDataConfig

__all__ = [
    "VOCAB_SIZE",
    "CharLMCorpus",
    "stdlib_prose",
    "extract_prose",
    "directory_text",
    "gcide_text",
    "load_split_file",
    "load_corpus",
    "split_blocks",
    "split_bytes",
    "unigram_bits",
    "window_starts",
    "CharLMData",
    "CharLMObjective",
    "build_decoder",
]

VOCAB_SIZE = 256
_LN2 = math.log(2.0)


@dataclass
class CharLMCorpus:
    """Train / validation / test bytes (``uint8`` arrays) and where they came from."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    source: str = ""
    sha256: str = ""
    files: int = 0

    @property
    def splits(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def summary(self) -> str:
        return (f"{self.name}: {self.train.size:,} train / {self.val.size:,} val / {self.test.size:,} test bytes"
                + (f" from {self.files} files" if self.files else "") + (f" ({self.source})" if self.source else ""))


# ---------------------------------------------------------------------- corpora
_SKIP_COMMENT = ("#!", "# -*-", "# noqa", "# type:", "# pragma", "# fmt:", "# pylint", "# XXX")


def extract_prose(source: str) -> str:
    """The docstrings and comments of Python ``source`` in source order, without the code.

    Docstrings (of the module, classes and functions, cleaned by ``ast.get_docstring``) become
    paragraphs; consecutive comment lines (their ``#`` and leading spaces removed) are joined into
    one paragraph; tool directives (``# noqa``, ``# type:``, shebangs, coding lines) are dropped.
    A file that does not parse gives ``""``.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return ""
    pieces: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc and doc.strip():
                line = node.body[0].lineno if node.body else 0
                pieces.append((line, doc.strip()))
    try:
        comments: list[tuple[int, str]] = []
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT and not tok.string.startswith(_SKIP_COMMENT):
                text = tok.string.lstrip("#").strip()
                if text:
                    comments.append((tok.start[0], text))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        comments = []
    run: list[str] = []
    start = prev = -2
    for line, text in comments:
        if line != prev + 1 and run:
            pieces.append((start, " ".join(run)))
            run = []
        if not run:
            start = line
        run.append(text)
        prev = line
    if run:
        pieces.append((start, " ".join(run)))
    pieces.sort(key=lambda p: p[0])
    return "\n\n".join(text for _, text in pieces)


def _collect(texts: Iterator[tuple[str, str]], max_bytes: int) -> tuple[bytes, int]:
    out = bytearray()
    files = 0
    for _, text in texts:
        if not text:
            continue
        data = text.encode("utf-8") + b"\n\n"
        files += 1
        if max_bytes and len(out) + len(data) >= max_bytes:
            out += data[: max_bytes - len(out)]
            break
        out += data
    return bytes(out), files


def stdlib_prose(max_bytes: int = 2_000_000) -> tuple[bytes, int]:
    """Prose (docstrings and comments) of the running Python's standard library, files in sorted
    order, at most ``max_bytes`` (0 = all); returns ``(bytes, files used)``."""
    from sparsegraph.experiments.text.mlm import stdlib_text_files

    def texts() -> Iterator[tuple[str, str]]:
        for f in stdlib_text_files():
            yield str(f), extract_prose(f.read_text(encoding="utf-8", errors="replace"))

    return _collect(texts(), max_bytes)


def directory_text(path: str | Path, max_bytes: int = 0) -> tuple[bytes, int]:
    """The files under ``path`` (recursively, sorted by relative path; hidden ones skipped), at
    most ``max_bytes`` (0 = all); returns ``(bytes, files used)``."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"data.data_dir {str(root)!r} is not a directory")
    files = sorted((f for f in root.rglob("*") if f.is_file()
                    and not any(p.startswith(".") for p in f.relative_to(root).parts)),
                   key=lambda f: f.relative_to(root).as_posix())
    if not files:
        raise FileNotFoundError(f"data.data_dir {str(root)!r} holds no files")
    return _collect(((str(f), f.read_bytes().decode("utf-8", errors="replace")) for f in files), max_bytes)


GCIDE_PATHS = ("/usr/share/dictd/gcide.dict.dz", "/usr/share/dictd/gcide.dict")


def gcide_text(data_dir: str = "", max_bytes: int = 0) -> tuple[bytes, int]:
    """The GCIDE dictionary text (Debian's ``dict-gcide``: ``apt-get install dict-gcide``), or
    ``gcide.dict[.dz]`` in ``data_dir``; ``.dz`` is gzip-compatible."""
    candidates = [Path(data_dir) / n for n in ("gcide.dict.dz", "gcide.dict")] if data_dir else [Path(p) for p in GCIDE_PATHS]
    for p in candidates:
        if p.is_file():
            raw = gzip.open(p).read() if p.suffix == ".dz" else p.read_bytes()
            return (raw[:max_bytes] if max_bytes else raw), 1
    raise FileNotFoundError(
        f"the GCIDE dictionary is not installed (looked for {', '.join(map(str, candidates))}); "
        "install Debian's dict-gcide or give data.data_dir")


def load_split_file(data_dir: str | Path, name: str, splits: Sequence[int] = ENWIK8_SPLITS) -> tuple[np.ndarray, ...]:
    """``(train, val, test)`` of ``data_dir/name`` (or ``name.zip`` holding ``name``): the first
    ``splits[0]`` bytes, the next ``splits[1]``, the last ``splits[2]`` (enwik8 / text8: 90M /
    5M / 5M). The file must hold at least ``sum(splits)`` bytes; bytes past that are unused."""
    root = Path(data_dir)
    plain, packed = root / name, root / f"{name}.zip"
    if plain.is_file():
        raw = plain.read_bytes()
    elif packed.is_file():
        with zipfile.ZipFile(packed) as z:
            raw = z.read(name)
    else:
        raise FileNotFoundError(f"{name}: neither {str(plain)!r} nor {str(packed)!r} exists (download it from "
                                "http://mattmahoney.net/dc/ and put it there)")
    a, b, c = (int(x) for x in splits)
    if len(raw) < a + b + c:
        raise ValueError(f"{name} has {len(raw):,} bytes, fewer than the splits {a:,} + {b:,} + {c:,}")
    data = np.frombuffer(raw, dtype=np.uint8)
    return data[:a].copy(), data[a:a + b].copy(), data[a + b:a + b + c].copy()


def split_blocks(n: int, val_fraction: float, test_fraction: float) -> tuple[int, np.ndarray]:
    """``(block, assignment)``: the corpus of ``n`` bytes cut into blocks of ``block`` bytes (8 KiB,
    smaller for corpora under 1.6 MB: ``n // 200``, at least 64), block ``k`` assigned to split
    ``assignment[k]`` (0 train, 1 validation, 2 test) by the golden-ratio sequence ``u_k = k phi
    mod 1``: validation when ``u_k < val_fraction``, test when ``u_k < val_fraction +
    test_fraction``. The held-out blocks are spread evenly through the corpus, so validation and
    test hold the same mixture of modules as training (the prose of one stdlib package differs a
    lot from another's: a contiguous tail would measure that shift)."""
    block = 8192 if n >= 200 * 8192 else max(64, n // 200)
    k = np.arange(-(-n // block), dtype=np.float64)
    u = (k * 0.6180339887498949) % 1.0
    assignment = np.where(u < val_fraction, 1, np.where(u < val_fraction + test_fraction, 2, 0))
    return block, assignment


def split_bytes(data: bytes, val_fraction: float, test_fraction: float) -> tuple[np.ndarray, ...]:
    """``(train, val, test)``: the blocks of :func:`split_blocks`, each split the concatenation of
    its blocks in corpus order."""
    arr = np.frombuffer(data, dtype=np.uint8)
    block, assignment = split_blocks(arr.size, val_fraction, test_fraction)
    which = np.repeat(assignment, block)[: arr.size]
    parts = tuple(arr[which == s].copy() for s in range(3))
    if min(p.size for p in parts) < 2:
        raise ValueError(f"the corpus has {arr.size} bytes: too few for train, validation and test splits")
    return parts


def load_corpus(cfg: CharLMDataConfig) -> CharLMCorpus:
    """The corpus of a ``[data]`` table (see the module docstring)."""
    if cfg.corpus in ("enwik8", "text8"):
        train, val, test = load_split_file(cfg.data_dir, cfg.corpus, cfg.splits)
        corpus = CharLMCorpus(cfg.corpus, train, val, test, source=str(Path(cfg.data_dir) / cfg.corpus), files=1)
    else:
        if cfg.corpus == "stdlib":
            data, files = stdlib_prose(cfg.max_bytes)
            source = f"Python {sys.version_info.major}.{sys.version_info.minor} standard library docstrings and comments"
        elif cfg.corpus == "dir":
            data, files = directory_text(cfg.data_dir, cfg.max_bytes)
            source = cfg.data_dir
        else:
            data, files = gcide_text(cfg.data_dir, cfg.max_bytes)
            source = "GCIDE"
        train, val, test = split_bytes(data, cfg.val_fraction, cfg.test_fraction)
        corpus = CharLMCorpus(cfg.corpus, train, val, test, source=source, files=files)
    h = hashlib.sha256()
    for a in (corpus.train, corpus.val, corpus.test):
        h.update(a.tobytes())
    corpus.sha256 = h.hexdigest()
    return corpus


def unigram_bits(data: np.ndarray) -> float:
    """Entropy in bits of the byte distribution of ``data``: ``-sum_b p_b log2 p_b``."""
    counts = np.bincount(np.asarray(data, dtype=np.uint8), minlength=VOCAB_SIZE).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


# ---------------------------------------------------------------------- batches
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def window_starts(seed: int, step: int, index: np.ndarray, high: int) -> np.ndarray:
    """Start of window ``index`` (array) of step ``step``: ``hash(seed, step, index) mod high``."""
    with np.errstate(over="ignore"):
        key = _mix(np.asarray([seed], dtype=np.uint64) * _GOLDEN + np.uint64(1))
        key = _mix(key ^ (np.asarray([step], dtype=np.uint64) * _GOLDEN + np.uint64(2)))
        h = _mix(key ^ (np.asarray(index, dtype=np.uint64) * _GOLDEN + np.uint64(3)))
    return (h % np.uint64(high)).astype(np.int64)


class CharLMData:
    """Byte-level LM batches (a :class:`~experiments.train.objective.DataSource`); splits
    ``train``, ``val``, ``test``. A batch is ``{"input_ids": long [B, L], "targets": long [B, L]}``.

    ``seq_len``: the window length ``L``; :meth:`set_seq_len` changes it (staged training).
    ``eval_windows``: evaluate the first this many windows of a split (0 = all).
    """

    def __init__(self, corpus: CharLMCorpus, seq_len: int, eval_windows: int = 0) -> None:
        self.corpus = corpus
        self.base_seq_len = self._check_len(seq_len)
        self.seq_len = self.base_seq_len
        self.eval_windows = int(eval_windows)
        self.vocab_size = VOCAB_SIZE
        self.name = f"charlm/{corpus.name}"
        self.splits = ("train", "val", "test")

    @classmethod
    def from_config(cls, cfg: CharLMDataConfig, corpus: CharLMCorpus | None = None) -> "CharLMData":
        return cls(corpus if corpus is not None else load_corpus(cfg), cfg.seq_len, cfg.eval_windows)

    def _check_len(self, seq_len: int) -> int:
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise ValueError(f"seq_len must be an int >= 1, got {seq_len!r}")
        short = [name for name, a in self.corpus.splits.items() if a.size < seq_len + 1]
        if "train" in short:
            raise ValueError(f"seq_len {seq_len} needs more than {seq_len} training bytes; the train split has "
                             f"{self.corpus.train.size}")
        return seq_len

    def set_seq_len(self, seq_len: int | None) -> None:
        """The window length from now on (``None``: the configured one)."""
        self.seq_len = self.base_seq_len if seq_len is None else self._check_len(seq_len)

    def unigram_bits(self) -> float:
        """Entropy of the training byte distribution, in bits (the baseline)."""
        return unigram_bits(self.corpus.train)

    def summary(self) -> str:
        return f"{self.corpus.summary()}; unigram entropy {self.unigram_bits():.3f} bits/byte"

    def split(self, name: str) -> np.ndarray:
        if name not in self.splits:
            raise ValueError(f"charlm data has splits {list(self.splits)}, got {name!r}")
        return getattr(self.corpus, name)

    def train_batch(self, batch_size: int, *, seed: int, step: int) -> dict[str, torch.Tensor]:
        """The training batch of ``step``: a function of (seed, step, index) and the length."""
        data = self.corpus.train
        L = self.seq_len
        starts = window_starts(seed, step, np.arange(batch_size), data.size - L)
        idx = starts[:, None] + np.arange(L + 1)[None, :]
        w = torch.from_numpy(data[idx].astype(np.int64))
        return {"input_ids": w[:, :-1], "targets": w[:, 1:]}

    def eval_windows_of(self, split: str) -> int:
        n = (self.split(split).size - 1) // self.seq_len
        return min(n, self.eval_windows) if self.eval_windows else n

    def batches(self, split: str, batch_size: int, *, seed: int, epoch: int = 0, start_step: int = 0
                ) -> Iterator[dict[str, torch.Tensor]]:
        """``train``: an endless stream of random-window batches from step ``start_step`` on (one
        epoch); ``val`` / ``test``: the split's disjoint windows in order."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if split == "train":
            step = start_step
            while True:
                yield self.train_batch(batch_size, seed=seed, step=step)
                step += 1
        data = self.split(split)
        L = self.seq_len
        n = self.eval_windows_of(split)
        if n < 1:
            raise ValueError(f"the {split} split ({data.size} bytes) is shorter than one window of {L + 1} bytes")
        for b in range(start_step, math.ceil(n / batch_size)):
            w0 = b * batch_size
            rows = np.arange(w0, min(n, w0 + batch_size))
            idx = rows[:, None] * L + np.arange(L + 1)[None, :]
            w = torch.from_numpy(data[idx].astype(np.int64))
            yield {"input_ids": w[:, :-1], "targets": w[:, 1:]}


class CharLMObjective:
    """Next-byte cross-entropy: ``loss`` in nats per byte (mean over every predicted byte),
    metric ``bpc`` = loss / ln 2 (bits per byte), ``count`` = predicted bytes.

    ``model(input_ids)`` must return logits ``[B, L, vocab]`` (as :class:`DecoderLM` does).
    """

    def loss_and_metrics(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        logits = model(batch["input_ids"])
        targets = batch["targets"]
        if logits.shape[:2] != targets.shape:
            raise ValueError(f"LM logits have shape {tuple(logits.shape)}, expected [B, L, vocab] with [B, L] = {tuple(targets.shape)}")
        loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        return loss, {"bpc": loss.detach() / _LN2, "count": int(targets.numel())}

    def num_tokens(self, batch: dict[str, torch.Tensor]) -> int:
        return int(batch["input_ids"].numel())


def build_decoder(model: Any, *, pattern: str | Sequence[str] | None = None, seed: int = 0) -> Any:
    """A :class:`DecoderLM` from a ``DecoderConfig`` (or its table), optionally with another
    attention ``pattern``; the weights are drawn after ``seed_everything(seed, "model")``."""
    from sparsegraph.experiments.models.config import AttentionConfig
    from sparsegraph.experiments.models.decoder import DecoderConfig, DecoderLM
    from sparsegraph.experiments.train.rng import seed_everything

    cfg = model if isinstance(model, DecoderConfig) else DecoderConfig.from_dict(model)
    if pattern is not None:
        att = cfg.attention.to_dict()
        att["pattern"] = pattern if isinstance(pattern, str) else tuple(pattern)
        cfg = cfg.replace(attention=AttentionConfig.from_dict(att))
    seed_everything(seed, "model")
    return DecoderLM(cfg)
