"""Loaders for the LRA tasks that come from files (LRA: Tay et al. 2021; docs/lra_tasks.md).

Every loader reads a user-given directory and returns ``{split: {"tokens", "labels",
"lengths", ...}}`` with numpy arrays; nothing is downloaded. Missing files raise
:class:`FileNotFoundError` naming the exact files expected and where they come from.

* :func:`load_cifar10` - ``cifar-10-batches-py`` (the pickled "python version"), greyscale as
  ``tf.image.rgb_to_grayscale`` on uint8 images, 1024 pixel tokens (vocabulary 256).
* :func:`load_fashion_mnist` - Fashion-MNIST IDX files (gzipped or raw; Debian's
  ``dataset-fashion-mnist`` installs them gzipped in ``/usr/share/datasets/fashion-mnist``),
  784 pixel tokens.
* :func:`load_imdb` - ``aclImdb/{train,test}/{pos,neg}/*.txt``, byte level (id = byte + 1,
  0 = pad); LRA uses the test split as validation *and* test.
* :func:`load_aan` - ``new_aan_pairs.{train,eval,test}.tsv`` (label, id1, id2, text1, text2),
  byte level per document.
* :func:`load_listops_tsv` - the released ``basic_{train,val,test}.tsv`` ListOps files.
"""

from __future__ import annotations

import gzip
import os
import pickle
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from . import listops

__all__ = [
    "load_cifar10", "load_fashion_mnist", "load_imdb", "load_aan", "load_listops_tsv",
    "read_idx", "rgb_to_grayscale_tf", "encode_bytes", "FASHION_MNIST_DEBIAN_DIR",
]

#: Where Debian/Ubuntu's ``dataset-fashion-mnist`` package installs the (gzipped) IDX files.
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

_CIFAR_SOURCE = ("download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
                 "and unpack it (tar xzf) into {dir}")
_FMNIST_SOURCE = ("install Debian's dataset-fashion-mnist package (apt-get install "
                  "dataset-fashion-mnist, files in /usr/share/datasets/fashion-mnist) or download "
                  "the four files from https://github.com/zalandoresearch/fashion-mnist into {dir}")
_IMDB_SOURCE = ("download aclImdb_v1.tar.gz from https://ai.stanford.edu/~amaas/data/sentiment/ "
                "and unpack it (tar xzf) into {dir}")
_AAN_SOURCE = ("they are in LRA's lra_release.gz (https://github.com/google-research/"
               "long-range-arena, lra_release/lra_release/tsv_data/); copy them into {dir}")
_LISTOPS_SOURCE = ("they are in LRA's lra_release.gz (lra_release/lra_release/listops-1000/); "
                   "copy them into {dir}, or generate ListOps with generate_listops()")


def _as_dir(data_dir: str | os.PathLike[str] | None, what: str) -> Path:
    if data_dir is None:
        raise ValueError(f"data_dir=None: the {what} task reads files; pass data_dir=<directory>")
    if not isinstance(data_dir, (str, os.PathLike)):
        raise TypeError(f"data_dir={data_dir!r}: expected a path (str or os.PathLike)")
    return Path(data_dir).expanduser()


def _find_dir(base: Path, names: Iterable[str], candidates: Iterable[str]) -> Path | None:
    """First of ``base/<candidate>`` that contains every file in ``names`` (or a .gz of it)."""
    names = list(names)
    for cand in candidates:
        d = base / cand if cand else base
        if all((d / n).is_file() or (d / (n + ".gz")).is_file() for n in names):
            return d
    return None


def _missing(task: str, base: Path, names: Iterable[str], source: str) -> FileNotFoundError:
    listed = ", ".join(names)
    return FileNotFoundError(f"{task}: expected the files {listed} in {base} (or in the "
                             f"sub-directory shown); {source.format(dir=base)}")


# --------------------------------------------------------------------------------------------
# CIFAR-10 (LRA "Image")
# --------------------------------------------------------------------------------------------

def rgb_to_grayscale_tf(rgb: np.ndarray) -> np.ndarray:
    """Greyscale exactly as ``tf.image.rgb_to_grayscale`` on uint8 images, as uint8.

    TF converts to float32 in [0, 1] (``x / 255``), takes the weighted sum with
    ``[0.2989, 0.5870, 0.1140]`` and converts back with ``convert_image_dtype``, i.e.
    multiplies by 255.5 and truncates. ``rgb`` is uint8 ``[..., 3]``.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb: expected a uint8 array [..., 3], got {rgb.dtype} {rgb.shape}")
    flt = rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    w = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)
    gray = flt[..., 0] * w[0] + flt[..., 1] * w[1] + flt[..., 2] * w[2]
    return (gray * np.float32(255.5)).astype(np.uint8)


def _load_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path}: not a CIFAR-10 python batch (no b'data'/b'labels' keys)")
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: b'data' has shape {data.shape}, expected [N, 3072]")
    rgb = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return rgb_to_grayscale_tf(rgb).reshape(-1, 1024), np.asarray(labels, dtype=np.int64)


def load_cifar10(data_dir: str | os.PathLike[str], *, n_val: int = 5000
                 ) -> dict[str, dict[str, np.ndarray]]:
    """CIFAR-10 as LRA's Image task: 1024 greyscale pixel tokens (uint8 0-255), 10 classes.

    ``data_dir`` may be the ``cifar-10-batches-py`` directory itself or its parent. Train is
    the first 45,000 images of ``data_batch_1..5`` (file order), val the last ``n_val``
    (5,000), test ``test_batch``. LRA takes ``train[:90%]`` / ``train[90%:]`` of TFDS, whose
    example order differs, so our val images are not the same 5,000 as LRA's.
    """
    base = _as_dir(data_dir, "image (CIFAR-10)")
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    d = _find_dir(base, names, ["cifar-10-batches-py", ""])
    if d is None:
        raise _missing("CIFAR-10", base, [f"cifar-10-batches-py/{n}" for n in names], _CIFAR_SOURCE)
    parts = [_load_cifar_batch(d / n) for n in names[:5]]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    if not 0 <= n_val < len(y):
        raise ValueError(f"n_val={n_val}: expected 0 <= n_val < {len(y)} (training images)")
    xt, yt = _load_cifar_batch(d / "test_batch")
    cut = len(y) - n_val
    return {"train": _images(x[:cut], y[:cut]), "val": _images(x[cut:], y[cut:]),
            "test": _images(xt, yt)}


def _images(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    x = np.ascontiguousarray(x, dtype=np.uint8)
    return {"tokens": x, "labels": np.asarray(y, np.int64),
            "lengths": np.full(len(y), x.shape[1], np.int64)}


# --------------------------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------------------------

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (raw or ``.gz``) as used by MNIST / Fashion-MNIST."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:  # type: ignore[operator]
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(dims)) if ndim else 1
    offset = 4 + 4 * ndim
    if len(raw) - offset < count * dtype.itemsize:
        raise ValueError(f"{path}: truncated IDX file (dims {dims.tolist()})")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(dims).copy()


def _idx_path(d: Path, name: str) -> Path:
    return d / name if (d / name).is_file() else d / (name + ".gz")


def load_fashion_mnist(data_dir: str | os.PathLike[str] | None = None, *, n_val: int = 6000
                       ) -> dict[str, dict[str, np.ndarray]]:
    """Fashion-MNIST: 784 pixel tokens (uint8 0-255, row-major), 10 classes.

    ``data_dir`` defaults to ``/usr/share/datasets/fashion-mnist`` (Debian's
    ``dataset-fashion-mnist``). Reads ``{train,t10k}-{images-idx3,labels-idx1}-ubyte`` with or
    without ``.gz``. There is no official validation split: val is the last ``n_val`` (6,000
    = 10%) training images, train the first 54,000.
    """
    base = FASHION_MNIST_DEBIAN_DIR if data_dir is None else _as_dir(data_dir, "fashion_mnist")
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte"]
    d = _find_dir(base, names, ["", "fashion-mnist", "fashion"])
    if d is None:
        raise _missing("Fashion-MNIST", base, [n + "[.gz]" for n in names], _FMNIST_SOURCE)
    x, y, xt, yt = (read_idx(_idx_path(d, n)) for n in names)
    if x.ndim != 3 or xt.ndim != 3 or len(x) != len(y) or len(xt) != len(yt):
        raise ValueError(f"{d}: inconsistent Fashion-MNIST files (images {x.shape}/{xt.shape}, "
                         f"labels {y.shape}/{yt.shape})")
    if not 0 <= n_val < len(y):
        raise ValueError(f"n_val={n_val}: expected 0 <= n_val < {len(y)} (training images)")
    x, xt = x.reshape(len(x), -1), xt.reshape(len(xt), -1)
    cut = len(y) - n_val
    return {"train": _images(x[:cut], y[:cut]), "val": _images(x[cut:], y[cut:]),
            "test": _images(xt, yt)}


# --------------------------------------------------------------------------------------------
# Byte-level text (IMDB, AAN)
# --------------------------------------------------------------------------------------------

def encode_bytes(docs: Iterable[bytes], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Byte-level ids (``byte + 1``; 0 = pad) truncated/padded to ``max_length``.

    Returns ``(tokens uint16 [N, max_length], lengths int64 [N])`` - the ids of LRA's
    ``ByteTextEncoder`` (which reserves id 0 for padding).
    """
    docs = list(docs)
    tokens = np.zeros((len(docs), max_length), dtype=np.uint16)
    lengths = np.zeros(len(docs), dtype=np.int64)
    for i, doc in enumerate(docs):
        b = np.frombuffer(doc[:max_length], dtype=np.uint8)
        tokens[i, :b.size] = b
        tokens[i, :b.size] += 1
        lengths[i] = b.size
    return tokens, lengths


def _check_max_length(max_length: object) -> int:
    if isinstance(max_length, bool) or not isinstance(max_length, (int, np.integer)) \
            or max_length < 1:
        raise ValueError(f"max_length={max_length!r}: expected a positive int")
    return int(max_length)


def load_imdb(data_dir: str | os.PathLike[str], *, max_length: int = 4000
              ) -> dict[str, dict[str, np.ndarray]]:
    """IMDB reviews as LRA's Text task: bytes + 1 (vocabulary 257 incl. pad 0), 2 classes.

    ``data_dir`` may be the ``aclImdb`` directory or its parent. Reviews are read as raw
    bytes (UTF-8) from ``{train,test}/{neg,pos}/*.txt`` in sorted file-name order (neg = 0,
    pos = 1) and truncated/padded to ``max_length`` (LRA paper: 4K; repo config: 1000).
    LRA has no validation split: ``val`` is the test split (same arrays).
    """
    base = _as_dir(data_dir, "text (IMDB)")
    max_length = _check_max_length(max_length)
    root = None
    for cand in (base / "aclImdb", base):
        if all((cand / s / c).is_dir() for s in ("train", "test") for c in ("neg", "pos")):
            root = cand
            break
    if root is None:
        raise _missing("IMDB", base, ["aclImdb/train/pos/*.txt", "aclImdb/train/neg/*.txt",
                                      "aclImdb/test/pos/*.txt", "aclImdb/test/neg/*.txt"],
                       _IMDB_SOURCE)
    out: dict[str, dict[str, np.ndarray]] = {}
    for split in ("train", "test"):
        docs: list[bytes] = []
        labels: list[int] = []
        for label, cls in enumerate(("neg", "pos")):
            files = sorted(p for p in (root / split / cls).iterdir() if p.suffix == ".txt")
            if not files:
                raise _missing("IMDB", base, [f"aclImdb/{split}/{cls}/*.txt"], _IMDB_SOURCE)
            for p in files:
                docs.append(p.read_bytes())
                labels.append(label)
        tokens, lengths = encode_bytes(docs, max_length)
        out[split] = {"tokens": tokens, "labels": np.asarray(labels, np.int64),
                      "lengths": lengths}
    return {"train": out["train"], "val": out["test"], "test": out["test"]}


def _split_tsv_lines(raw: bytes) -> list[bytes]:
    lines = raw.split(b"\n")
    return [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines if ln.strip()]


def _aan_doc(text: bytes, max_chars: int) -> bytes:
    s = text.decode("utf-8", errors="surrogateescape")[:max_chars]
    return s.encode("utf-8", errors="surrogateescape")


def load_aan(data_dir: str | os.PathLike[str], *, max_length: int = 4000,
             max_chars: int = 10_000) -> dict[str, dict[str, np.ndarray]]:
    """ACL Anthology Network pairs as LRA's Retrieval task (two-tower, byte level).

    Reads ``new_aan_pairs.{train,eval,test}.tsv`` (no header; columns label, id1, id2, text1,
    text2; label a float 0/1) from ``data_dir`` or its ``tsv_data`` /
    ``lra_release/lra_release/tsv_data`` sub-directory. Each text is cut to its first
    ``max_chars`` characters, UTF-8 encoded and truncated/padded to ``max_length`` bytes
    (ids = byte + 1) *per document*. Splits train/val/test = train/eval/test files. Returns
    ``tokens``/``lengths`` for document 1 and ``tokens2``/``lengths2`` for document 2.
    """
    base = _as_dir(data_dir, "retrieval (AAN)")
    max_length = _check_max_length(max_length)
    names = [f"new_aan_pairs.{s}.tsv" for s in ("train", "eval", "test")]
    d = _find_dir(base, names, ["", "tsv_data", "lra_release/lra_release/tsv_data",
                                "lra_release/tsv_data"])
    if d is None:
        raise _missing("AAN retrieval", base, names, _AAN_SOURCE)
    out: dict[str, dict[str, np.ndarray]] = {}
    for split, name in zip(("train", "val", "test"), names):
        labels: list[int] = []
        docs1: list[bytes] = []
        docs2: list[bytes] = []
        for lineno, line in enumerate(_split_tsv_lines((d / name).read_bytes()), 1):
            cols = line.split(b"\t")
            if len(cols) != 5:
                raise ValueError(f"{d / name}:{lineno}: expected 5 tab-separated columns "
                                 f"(label id1 id2 text1 text2), got {len(cols)}")
            try:
                labels.append(int(float(cols[0])))
            except ValueError:
                raise ValueError(f"{d / name}:{lineno}: label {cols[0][:20]!r} is not a number "
                                 f"(the AAN TSVs have no header row)") from None
            docs1.append(_aan_doc(cols[3], max_chars))
            docs2.append(_aan_doc(cols[4], max_chars))
        t1, l1 = encode_bytes(docs1, max_length)
        t2, l2 = encode_bytes(docs2, max_length)
        out[split] = {"tokens": t1, "lengths": l1, "tokens2": t2, "lengths2": l2,
                      "labels": np.asarray(labels, np.int64)}
    return out


# --------------------------------------------------------------------------------------------
# Released ListOps TSVs
# --------------------------------------------------------------------------------------------

def load_listops_tsv(data_dir: str | os.PathLike[str], *, max_length: int = 2000,
                     prefix: str = "basic") -> dict[str, dict[str, np.ndarray]]:
    """The released ListOps files ``{prefix}_{train,val,test}.tsv`` (header ``Source Target``).

    Sources are tokenised as LRA does (see :func:`listops.from_lra_string`) into the ids of
    :data:`listops.VOCAB`, truncated/padded to ``max_length``.
    """
    base = _as_dir(data_dir, "listops")
    max_length = _check_max_length(max_length)
    names = [f"{prefix}_{s}.tsv" for s in ("train", "val", "test")]
    d = _find_dir(base, names, ["", "listops-1000", "lra_release/lra_release/listops-1000",
                                "lra_release/listops-1000"])
    if d is None:
        raise _missing("ListOps", base, names, _LISTOPS_SOURCE)
    out: dict[str, dict[str, np.ndarray]] = {}
    for split, name in zip(("train", "val", "test"), names):
        lines = (d / name).read_text(encoding="utf-8").splitlines()
        if not lines or lines[0].split("\t")[:2] != ["Source", "Target"]:
            raise ValueError(f"{d / name}: expected a header row 'Source<TAB>Target'")
        rows = [ln.split("\t") for ln in lines[1:] if ln.strip()]
        tokens = np.zeros((len(rows), max_length), np.uint8)
        lengths = np.zeros(len(rows), np.int64)
        labels = np.zeros(len(rows), np.int64)
        for i, row in enumerate(rows):
            if len(row) != 2:
                raise ValueError(f"{d / name}:{i + 2}: expected 2 tab-separated columns")
            ids = listops.encode_tokens(listops.from_lra_string(row[0]))[:max_length]
            tokens[i, :ids.size] = ids
            lengths[i] = ids.size
            labels[i] = int(row[1])
        out[split] = {"tokens": tokens, "labels": labels, "lengths": lengths}
    return out
