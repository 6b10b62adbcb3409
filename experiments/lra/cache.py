"""On-disk cache for generated LRA datasets (ListOps, Pathfinder / Path-X).

Layout: ``<root>/<generator>/<key>/data.npz`` (uncompressed ``.npz`` of the split arrays,
named ``<split>/<field>``) plus ``manifest.json`` (generator name, generator version, all
parameters, seed, split counts, SHA-256 content hash of the arrays, creation time).
``key`` is a hash of (generator, version, parameters), so different parameters get different
directories and a second call with the same parameters loads from disk.

Both files are written to temporary files in the same directory and moved into place with
``os.replace`` (atomic on POSIX); the manifest is written last and lists the data file's size,
so a directory without a manifest (e.g. an interrupted run) is treated as a miss and
regenerated. Concurrent writers of the same key produce identical content, so the last
``os.replace`` winning is harmless.

Root directory: the ``cache_dir`` argument, else ``$SPARSEGRAPH_DATA``, else
``~/.cache/sparsegraph/lra``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sparsegraph.experiments.infra.atomic import atomic_write

__all__ = ["default_cache_dir", "cache_key", "cache_path", "save", "load", "cached",
           "content_hash", "ENV_VAR"]

ENV_VAR = "SPARSEGRAPH_DATA"
_DATA = "data.npz"
_MANIFEST = "manifest.json"

Splits = dict[str, dict[str, np.ndarray]]


def default_cache_dir() -> Path:
    """``$SPARSEGRAPH_DATA`` if set, else ``~/.cache/sparsegraph/lra``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "sparsegraph" / "lra"


def _canonical(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    raise TypeError(f"cache parameter value {obj!r} of type {type(obj).__name__} is not "
                    f"JSON-serialisable")


def cache_key(generator: str, version: int, params: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit key of (generator, version, params)."""
    blob = json.dumps({"generator": generator, "version": version,
                       "params": _canonical(params)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_path(generator: str, version: int, params: Mapping[str, Any],
               cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Directory holding the cached dataset for these parameters."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / generator / cache_key(generator, version, params)


def content_hash(splits: Splits) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes (sorted by name)."""
    h = hashlib.sha256()
    for split in sorted(splits):
        for field in sorted(splits[split]):
            arr = np.ascontiguousarray(splits[split][field])
            h.update(f"{split}/{field}|{arr.dtype.str}|{arr.shape}|".encode())
            if arr.size:  # memoryview cannot cast an empty array (e.g. no train split)
                h.update(memoryview(arr).cast("B"))
    return h.hexdigest()


def save(directory: str | os.PathLike[str], splits: Splits, manifest: Mapping[str, Any]) -> dict:
    """Write ``splits`` and a manifest (extended with counts, hash, size, time) atomically."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    arrays = {f"{s}/{k}": np.ascontiguousarray(v) for s, fields in splits.items()
              for k, v in fields.items()}
    atomic_write(d / _DATA, lambda f: np.savez(f, **arrays))
    full = dict(_canonical(dict(manifest)))
    full.update(
        counts={s: int(len(next(iter(fields.values())))) if fields else 0
                for s, fields in splits.items()},
        arrays={name: {"dtype": a.dtype.str, "shape": list(a.shape)} for name, a in arrays.items()},
        content_hash=content_hash(splits),
        data_bytes=(d / _DATA).stat().st_size,
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        created_unix=time.time(),
    )
    text = json.dumps(full, indent=2, sort_keys=True).encode()
    atomic_write(d / _MANIFEST, lambda f: f.write(text))
    return full


def load(directory: str | os.PathLike[str], *, verify: bool = False
         ) -> tuple[Splits, dict] | None:
    """Load a cached dataset; ``None`` if it is absent or incomplete.

    ``verify=True`` recomputes the content hash and raises ``ValueError`` on a mismatch.
    """
    d = Path(directory)
    try:
        manifest = json.loads((d / _MANIFEST).read_text())
        size = (d / _DATA).stat().st_size
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if size != manifest.get("data_bytes"):
        return None
    splits: Splits = {}
    with np.load(d / _DATA, allow_pickle=False) as npz:
        for name in npz.files:
            split, field = name.split("/", 1)
            splits.setdefault(split, {})[field] = npz[name]
    if verify and content_hash(splits) != manifest.get("content_hash"):
        raise ValueError(f"{d}: cached arrays do not match the manifest's content hash; "
                         f"delete the directory to regenerate")
    return splits, manifest


def cached(generator: str, version: int, params: Mapping[str, Any], build: Callable[[], Splits],
           *, cache_dir: str | os.PathLike[str] | None = None, use_cache: bool = True,
           extra_manifest: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
           ) -> tuple[Splits, dict, bool]:
    """Return ``(splits, manifest, hit)``: load from the cache or ``build()`` and store.

    ``use_cache=False`` always builds and neither reads nor writes the cache.
    ``extra_manifest`` (a mapping, or a callable evaluated after ``build``) is added to the
    manifest, e.g. generation statistics.
    """
    d = cache_path(generator, version, params, cache_dir)
    if use_cache:
        got = load(d)
        if got is not None:
            return got[0], got[1], True
    t0 = time.perf_counter()
    splits = build()
    seconds = time.perf_counter() - t0
    manifest: dict[str, Any] = {"generator": generator, "version": version,
                                "params": _canonical(params), "key": d.name,
                                "generation_seconds": round(seconds, 3)}
    if extra_manifest is not None:
        extra = extra_manifest() if callable(extra_manifest) else extra_manifest
        manifest.update(_canonical(dict(extra)))
    if not use_cache:
        return splits, manifest, False
    full = save(d, splits, manifest)
    return splits, full, False
