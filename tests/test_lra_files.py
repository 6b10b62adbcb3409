"""File loaders, cache and the load_task interface (experiments.lra.{files,cache,datasets})."""

from __future__ import annotations

import gzip
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from sparsegraph.experiments.lra import cache, datasets, files, listops
from sparsegraph.experiments.lra.torch_data import LRADataset

# --------------------------------------------------------------------------------------------
# writers for the real file formats
# --------------------------------------------------------------------------------------------


def _write_cifar(root: Path, n_per_batch: int = 10, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    train_x, train_y = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        y = rng.integers(0, 10, size=n_per_batch).tolist()
        with open(d / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"data": x, b"labels": y,
                         b"filenames": [b"x.png"] * n_per_batch}, f)
        if name != "test_batch":
            train_x.append(x)
            train_y += y
        else:
            test_x, test_y = x, np.array(y)
    return np.concatenate(train_x), np.array(train_y), test_x, test_y


def _write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _write_fmnist(d: Path, gz: bool, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 12, dtype=np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 5, dtype=np.uint8)}
    d.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        _write_idx(d / name, arr, gz)
    return arrays


def _write_imdb(root: Path) -> None:
    texts = {("train", "pos"): ["Great film!", "Loved it <br /> a lot"],
             ("train", "neg"): ["Awful.", "Caf\u00e9 scene was bad", "meh"],
             ("test", "pos"): ["Superb"],
             ("test", "neg"): ["Boring", "no"]}
    for (split, cls), docs in texts.items():
        d = root / "aclImdb" / split / cls
        d.mkdir(parents=True)
        for i, doc in enumerate(docs):
            (d / f"{i}_{7 if cls == 'pos' else 2}.txt").write_bytes(doc.encode("utf-8"))
    (root / "aclImdb" / "train" / "unsup").mkdir()  # present in the real archive; ignored


AAN_ROWS = {
    "train": [("1.0", "A", "B", "first paper text", "second \u00fcber text"),
              ("0.0", "C", "D", "x" * 50, "short")],
    "eval": [("1.0", "E", "F", "eval one", "eval two")],
    "test": [("0.0", "G", "H", "test a", "test b"), ("1", "I", "J", "c", "d")],
}


def _write_aan(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for split, rows in AAN_ROWS.items():
        text = "".join("\t".join(r) + "\n" for r in rows)
        (d / f"new_aan_pairs.{split}.tsv").write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# CIFAR-10
# --------------------------------------------------------------------------------------------


def test_tf_greyscale_known_values() -> None:
    px = np.array([[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255],
                   [10, 20, 30]], dtype=np.uint8)
    # float32(x/255 . w) * 255.5, truncated (tf.image.convert_image_dtype)
    assert files.rgb_to_grayscale_tf(px).tolist() == [255, 0, 76, 149, 29, 18]
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (5000, 3), dtype=np.uint8)
    ref = np.floor(rgb.astype(np.float64) @ [0.2989, 0.5870, 0.1140] / 255 * 255.5)
    diff = files.rgb_to_grayscale_tf(rgb).astype(int) - ref
    assert np.abs(diff).max() <= 1 and (diff == 0).mean() > 0.99


def test_cifar10_loader(tmp_path: Path) -> None:
    train_x, train_y, test_x, test_y = _write_cifar(tmp_path)
    data = files.load_cifar10(tmp_path, n_val=5)
    assert {k: len(v["labels"]) for k, v in data.items()} == {"train": 45, "val": 5, "test": 10}
    tr = data["train"]
    assert tr["tokens"].shape == (45, 1024) and tr["tokens"].dtype == np.uint8
    np.testing.assert_array_equal(tr["labels"], train_y[:45])
    np.testing.assert_array_equal(data["val"]["labels"], train_y[45:])
    np.testing.assert_array_equal(data["test"]["labels"], test_y)
    # channel-major rows -> [32, 32, 3] -> greyscale, flattened row-major
    rgb = train_x[3].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(tr["tokens"][3], files.rgb_to_grayscale_tf(rgb).ravel())
    px = rgb[1, 2]  # row 1, column 2 -> token 34
    assert tr["tokens"][3, 34] == files.rgb_to_grayscale_tf(px[None])[0]
    # the batches directory itself also works, and load_task wraps it
    assert len(files.load_cifar10(tmp_path / "cifar-10-batches-py", n_val=5)["test"]["labels"]) == 10
    task = datasets.load_task("image", data_dir=tmp_path, n_val=5)
    assert (task.vocab_size, task.num_classes, task.pad_id, task.seq_len) == (256, 10, None, 1024)


def test_cifar10_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="data_batch_1") as err:
        files.load_cifar10(tmp_path)
    assert "cifar-10-python.tar.gz" in str(err.value) and str(tmp_path) in str(err.value)
    with pytest.raises(ValueError, match="data_dir"):
        datasets.load_task("image")


# --------------------------------------------------------------------------------------------
# Fashion-MNIST
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_loader(tmp_path: Path, gz: bool) -> None:
    arrays = _write_fmnist(tmp_path, gz)
    suffix = ".gz" if gz else ""
    np.testing.assert_array_equal(files.read_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}"),
                                  arrays["t10k-labels-idx1-ubyte"])
    data = files.load_fashion_mnist(tmp_path, n_val=2)
    assert data["train"]["tokens"].shape == (10, 784) and data["val"]["tokens"].shape == (2, 784)
    np.testing.assert_array_equal(data["train"]["tokens"][4],
                                  arrays["train-images-idx3-ubyte"][4].ravel())
    np.testing.assert_array_equal(data["val"]["labels"], arrays["train-labels-idx1-ubyte"][10:])
    np.testing.assert_array_equal(data["test"]["labels"], arrays["t10k-labels-idx1-ubyte"])
    assert (data["test"]["lengths"] == 784).all()


def test_idx_errors_and_missing(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="IDX"):
        files.read_idx(tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte") as err:
        files.load_fashion_mnist(tmp_path)
    assert "dataset-fashion-mnist" in str(err.value)


def test_fashion_mnist_without_a_directory_reads_the_debian_package_layout(tmp_path: Path,
                                                                        monkeypatch) -> None:
    # With no data_dir, load_task reads where Debian's dataset-fashion-mnist installs its gzipped
    # IDX files; here that directory is a generated stand-in of the same layout.
    arrays = _write_fmnist(tmp_path / "fashion-mnist", gz=True, seed=3)
    monkeypatch.setattr(files, "FASHION_MNIST_DEBIAN_DIR", tmp_path / "fashion-mnist")
    task = datasets.load_task("fashion_mnist", n_val=2)
    assert {k: len(v) for k, v in task.splits.items()} == {"train": 10, "val": 2, "test": 5}
    assert task.seq_len == 784 and task.num_classes == 10 and task.pad_id is None
    np.testing.assert_array_equal(task["test"].labels, arrays["t10k-labels-idx1-ubyte"])


# --------------------------------------------------------------------------------------------
# IMDB and AAN (byte level)
# --------------------------------------------------------------------------------------------


def test_imdb_loader(tmp_path: Path) -> None:
    _write_imdb(tmp_path)
    data = files.load_imdb(tmp_path, max_length=12)
    tr = data["train"]
    assert tr["tokens"].shape == (5, 12) and tr["tokens"].dtype == np.uint16
    assert tr["labels"].tolist() == [0, 0, 0, 1, 1]  # neg files first, sorted by name
    # "Café scene was bad" is the second neg file (1_2.txt); é is two UTF-8 bytes
    raw = "Caf\u00e9 scene was bad".encode()[:12]
    np.testing.assert_array_equal(tr["tokens"][1], np.frombuffer(raw, np.uint8).astype(int) + 1)
    assert tr["lengths"].tolist() == [6, 12, 3, 11, 12]
    assert tr["tokens"][0, 6:].tolist() == [0] * 6  # padding
    assert data["val"] is data["test"]  # LRA: test doubles as validation
    task = datasets.load_task("text", data_dir=tmp_path / "aclImdb", max_length=16)
    assert (task.vocab_size, task.pad_id, task.seq_len, task.num_classes) == (257, 0, 16, 2)
    assert task.majority_baseline("train") == pytest.approx(0.6)


def test_imdb_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="aclImdb") as err:
        files.load_imdb(tmp_path)
    assert "aclImdb_v1.tar.gz" in str(err.value)


def test_aan_loader(tmp_path: Path) -> None:
    _write_aan(tmp_path / "tsv_data")
    data = files.load_aan(tmp_path, max_length=8, max_chars=10_000)
    assert {k: len(v["labels"]) for k, v in data.items()} == {"train": 2, "val": 1, "test": 2}
    tr = data["train"]
    assert tr["labels"].tolist() == [1, 0] and data["test"]["labels"].tolist() == [0, 1]
    assert tr["tokens"].shape == tr["tokens2"].shape == (2, 8)
    np.testing.assert_array_equal(tr["tokens"][0], np.frombuffer(b"first pa", np.uint8) + 1)
    np.testing.assert_array_equal(tr["tokens2"][0], np.frombuffer("second \u00fc".encode()[:8],
                                                                  np.uint8) + 1)
    assert tr["lengths2"].tolist() == [8, 5] and tr["tokens2"][1, 5:].tolist() == [0, 0, 0]
    # texts are cut to max_chars *characters* before byte encoding
    cut = files.load_aan(tmp_path, max_length=100, max_chars=8)["train"]
    assert cut["lengths2"][0] == len("second \u00fc".encode())  # 8 chars, 9 bytes
    task = datasets.load_task("retrieval", data_dir=tmp_path, max_length=8)
    assert task.is_pair and task["train"].is_pair and task.seq_len == 8
    batch = next(task.batches("train", 2, shuffle=False))
    assert set(batch) == {"tokens", "tokens2", "labels", "lengths", "lengths2", "index"}


def test_aan_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="new_aan_pairs.train.tsv") as err:
        files.load_aan(tmp_path)
    assert "lra_release" in str(err.value)
    _write_aan(tmp_path)
    (tmp_path / "new_aan_pairs.eval.tsv").write_text("1.0\tA\tB\tonly four\n")
    with pytest.raises(ValueError, match=r"eval.tsv:1: expected 5"):
        files.load_aan(tmp_path)


def test_listops_release_tsv(tmp_path: Path) -> None:
    splits, _ = listops.generate_listops(n_train=20, n_val=5, n_test=5, min_length=10,
                                         max_length=60, workers=1, progress=False)
    d = tmp_path / "listops-1000"
    d.mkdir()
    for name, s in splits.items():
        lines = ["Source\tTarget"] + [f"{listops.to_lra_string(row[:n])}\t{lab}"
                                      for row, n, lab in zip(s["tokens"], s["lengths"], s["labels"])]
        (d / f"basic_{name}.tsv").write_text("\n".join(lines) + "\n")
    task = datasets.load_task("listops", data_dir=tmp_path, max_length=60)
    for name, s in splits.items():
        np.testing.assert_array_equal(task[name].tokens, s["tokens"])
        np.testing.assert_array_equal(task[name].labels, s["labels"])
        np.testing.assert_array_equal(task[name].lengths, s["lengths"])
    with pytest.raises(FileNotFoundError, match="basic_train.tsv"):
        files.load_listops_tsv(tmp_path / "nothing")


# --------------------------------------------------------------------------------------------
# cache
# --------------------------------------------------------------------------------------------


def _toy_splits(v: int = 1) -> dict:
    return {s: {"tokens": np.full((3, 4), v, np.uint8), "labels": np.arange(3),
                "lengths": np.full(3, 4)} for s in ("train", "val", "test")}


def test_cache_hit_miss_and_manifest(tmp_path: Path) -> None:
    calls = []

    def build() -> dict:
        calls.append(1)
        return _toy_splits()

    params = {"a": 1, "seed": 7, "lst": (1, 2)}
    s1, m1, hit1 = cache.cached("toy", 1, params, build, cache_dir=tmp_path,
                                extra_manifest={"seed": 7})
    s2, m2, hit2 = cache.cached("toy", 1, dict(params), build, cache_dir=tmp_path)
    assert (hit1, hit2, len(calls)) == (False, True, 1)
    np.testing.assert_array_equal(s1["val"]["tokens"], s2["val"]["tokens"])
    assert s2["train"]["tokens"].dtype == np.uint8
    assert m2["content_hash"] == cache.content_hash(s1) == m1["content_hash"]
    assert m2["generator"] == "toy" and m2["params"]["lst"] == [1, 2] and m2["seed"] == 7
    assert m2["counts"] == {"train": 3, "val": 3, "test": 3} and "created" in m2
    d = cache.cache_path("toy", 1, params, tmp_path)
    assert json.loads((d / "manifest.json").read_text())["key"] == d.name
    # different parameters or generator version -> different directory, rebuilt
    _, _, hit3 = cache.cached("toy", 1, {**params, "a": 2}, build, cache_dir=tmp_path)
    _, _, hit4 = cache.cached("toy", 2, params, build, cache_dir=tmp_path)
    assert (hit3, hit4, len(calls)) == (False, False, 3)
    assert len(list((tmp_path / "toy").iterdir())) == 3
    _, _, hit5 = cache.cached("toy", 1, params, build, cache_dir=tmp_path, use_cache=False)
    assert not hit5 and len(calls) == 4


def test_cache_atomic_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = {"x": 1}
    d = cache.cache_path("toy", 1, params, tmp_path)

    def exploding_savez(f, **arrays):  # noqa: ANN001, ANN003
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", exploding_savez)
    with pytest.raises(OSError, match="disk full"):
        cache.cached("toy", 1, params, _toy_splits, cache_dir=tmp_path)
    assert list(d.iterdir()) == []  # neither a partial data.npz nor a temp file is left
    monkeypatch.undo()
    # a data file without a manifest (interrupted run) is a miss and gets replaced
    (d / "data.npz").write_bytes(b"junk")
    assert cache.load(d) is None
    _, _, hit = cache.cached("toy", 1, params, _toy_splits, cache_dir=tmp_path)
    assert not hit and sorted(p.name for p in d.iterdir()) == ["data.npz", "manifest.json"]
    # corruption is detected by verify=True
    splits, _ = cache.load(d)
    corrupted = _toy_splits(2)
    np.savez(d / "data.npz", **{f"{s}/{k}": v for s, f in corrupted.items() for k, v in f.items()})
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["data_bytes"] = (d / "data.npz").stat().st_size
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="content hash"):
        cache.load(d, verify=True)


def test_cache_root_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARSEGRAPH_DATA", str(tmp_path / "env"))
    assert cache.default_cache_dir() == tmp_path / "env"
    monkeypatch.delenv("SPARSEGRAPH_DATA")
    assert cache.default_cache_dir() == Path.home() / ".cache" / "sparsegraph" / "lra"


def test_load_task_generated_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARSEGRAPH_DATA", str(tmp_path))
    kw = dict(n_train=60, n_val=10, n_test=10, min_length=20, max_length=80, seed=2,
              workers=1, progress=False)
    t1 = datasets.load_task("listops", **kw)
    t2 = datasets.load_task("listops", **kw)
    assert (t1.info["cache_hit"], t2.info["cache_hit"]) == (False, True)
    assert (tmp_path / "listops").is_dir()
    np.testing.assert_array_equal(t1["train"].tokens, t2["train"].tokens)
    assert (t1.vocab_size, t1.num_classes, t1.pad_id, t1.seq_len) == (16, 10, 0, 80)
    assert t1.info["manifest"]["params"]["seed"] == 2
    counts = np.bincount(t1["test"].labels, minlength=10)
    assert t1.majority_baseline("test") == counts.max() / 10
    pf = datasets.load_task("pathfinder", n_train=6, n_val=2, n_test=2, seed=1,
                            cache_dir=tmp_path / "pf", workers=1, progress=False)
    assert (pf.seq_len, pf.vocab_size, pf.pad_id, pf.num_classes) == (1024, 256, None, 2)
    pf2 = datasets.load_task("pathfinder", n_train=6, n_val=2, n_test=2, seed=1,
                             cache_dir=tmp_path / "pf", workers=1, progress=False)
    assert pf2.info["cache_hit"]
    easy = datasets.load_task("pathfinder", difficulty="easy", n_train=2, n_val=1, n_test=1,
                              cache_dir=tmp_path / "pf", workers=1, progress=False)
    assert not easy.info["cache_hit"] and easy.info["config"]["contour_length"] == 6


def test_load_task_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="listopz"):
        datasets.load_task("listopz")
    with pytest.raises(TypeError, match="n_trian"):
        datasets.load_task("listops", n_trian=5, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="resolution"):
        datasets.load_task("pathfinder", resolution=100, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="contour_length"):
        datasets.load_task("pathx", contour_length=10, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="difficulty"):
        datasets.load_task("pathfinder", difficulty="extreme", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="min_length"):
        datasets.load_task("listops", min_length=10, max_length=5, cache_dir=tmp_path)


# --------------------------------------------------------------------------------------------
# batching
# --------------------------------------------------------------------------------------------


def _split(n: int = 23) -> datasets.Split:
    tokens = np.arange(n * 3, dtype=np.uint8).reshape(n, 3)
    return datasets.Split(tokens=tokens, labels=np.arange(n) % 3, lengths=np.full(n, 3))


def test_batches_deterministic_and_resumable() -> None:
    s = _split()
    full = [b["index"] for b in datasets.batches(s, 5, seed=3, epoch=1, as_torch=False)]
    assert len(full) == datasets.steps_per_epoch(23, 5) == 5
    assert sorted(np.concatenate(full).tolist()) == list(range(23))
    again = [b["index"] for b in datasets.batches(s, 5, seed=3, epoch=1, as_torch=False)]
    assert all(np.array_equal(a, b) for a, b in zip(full, again))
    other_epoch = np.concatenate([b["index"] for b in datasets.batches(s, 5, seed=3, epoch=2,
                                                                       as_torch=False)])
    assert not np.array_equal(np.concatenate(full), other_epoch)
    resumed = [b["index"] for b in datasets.batches(s, 5, seed=3, epoch=1, start_step=3,
                                                    as_torch=False)]
    assert len(resumed) == 2 and all(np.array_equal(a, b) for a, b in zip(full[3:], resumed))
    dropped = list(datasets.batch_indices(23, 5, seed=3, epoch=1, drop_last=True))
    assert len(dropped) == 4 and all(len(b) == 5 for b in dropped)
    plain = np.concatenate(list(datasets.batch_indices(23, 5, shuffle=False)))
    assert plain.tolist() == list(range(23))
    with pytest.raises(ValueError, match="start_step"):
        list(datasets.batch_indices(23, 5, start_step=6))
    with pytest.raises(ValueError, match="batch_size"):
        list(datasets.batch_indices(23, 0))


@pytest.mark.parametrize("n, batch", [(1000, 16), (37, 5), (5, 8)])
def test_batches_grouped_by_length(n: int, batch: int) -> None:
    rng = np.random.default_rng(0)
    lengths = np.where(rng.random(n) < 0.5, 128, 1024)
    epoch = list(datasets.batch_indices(n, batch, seed=4, epoch=2, lengths=lengths))
    flat = np.concatenate(epoch)
    assert sorted(flat.tolist()) == list(range(n))  # every example once
    assert all(len(b) == batch for b in epoch[:-1]) and 0 < len(epoch[-1]) <= batch  # a short batch only last
    # batches are of one length except where a window's sort switches from long to short
    mixed = sum(len(set(lengths[b].tolist())) > 1 for b in epoch)
    windows = -(-n // (datasets.GROUP_WINDOW_BATCHES * batch))
    assert mixed <= windows
    again = list(datasets.batch_indices(n, batch, seed=4, epoch=2, lengths=lengths))
    assert all(np.array_equal(a, b) for a, b in zip(epoch, again))
    resumed = list(datasets.batch_indices(n, batch, seed=4, epoch=2, start_step=1, lengths=lengths))
    assert all(np.array_equal(a, b) for a, b in zip(epoch[1:], resumed))
    other = np.concatenate(list(datasets.batch_indices(n, batch, seed=4, epoch=3, lengths=lengths)))
    assert n < 8 or not np.array_equal(flat, other)
    with pytest.raises(ValueError, match="lengths has shape"):
        list(datasets.batch_indices(n, batch, lengths=lengths[:-1]))


def test_group_by_length_applies_to_training_batches_only() -> None:
    data = datasets.load_task("needles", length=256, short_fraction=0.5, short_length=64, n_train=256,
                              n_val=64, n_test=64, group_by_length=True)
    assert data.group_by_length
    lengths = data["train"].lengths
    train = [b["index"].numpy() for b in data.batches("train", 16, seed=1)]
    assert sum(len(set(lengths[b].tolist())) > 1 for b in train) <= 1
    # evaluation: every example once, longest first (stable), so batches hold similar lengths
    ordered = np.concatenate([b["index"].numpy() for b in data.batches("val", 16, seed=1, shuffle=False)])
    assert sorted(ordered.tolist()) == list(range(64))
    assert (np.diff(data["val"].lengths[ordered]) <= 0).all()
    plain = datasets.load_task("needles", length=256, n_train=8, n_val=64, n_test=8)
    assert np.concatenate([b["index"].numpy() for b in plain.batches("val", 16, shuffle=False)]).tolist() == list(range(64))
    with pytest.raises(ValueError, match="group_by_length='yes'"):
        datasets.load_task("needles", length=64, n_train=8, n_val=8, n_test=8, group_by_length="yes")
    with pytest.raises(ValueError, match="group_by_length=True: the training batches are drawn fresh"):
        datasets.load_task("needles", length=64, n_val=8, n_test=8, fresh=True, group_by_length=True)


def test_torch_batches_and_dataset() -> None:
    import torch

    s = _split()
    batch = next(datasets.batches(s, 4, seed=0))
    assert batch["tokens"].dtype == torch.int64 and batch["tokens"].shape == (4, 3)
    np.testing.assert_array_equal(batch["tokens"].numpy(), s.tokens[batch["index"].numpy()])
    np.testing.assert_array_equal(batch["labels"].numpy(), s.labels[batch["index"].numpy()])
    task = datasets.TaskData("toy", {"train": s, "val": s, "test": s}, 256, 3, None, False)
    ds = LRADataset(task["train"])
    item = ds[5]
    assert len(ds) == 23 and item["tokens"].dtype == torch.int64
    assert item["tokens"].tolist() == [15, 16, 17] and int(item["label"]) == 2
    with pytest.raises(IndexError):
        ds[23]
    loader = torch.utils.data.DataLoader(ds, batch_size=8)
    assert next(iter(loader))["tokens"].shape == (8, 3)
    assert task.majority_baseline("train") == pytest.approx(8 / 23)
