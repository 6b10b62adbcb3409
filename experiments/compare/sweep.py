"""Speed and memory of one attention layer of each pattern against the sequence length.

``python -m sparsegraph.experiments.compare.sweep REQUEST.json OUT.json`` (the runner writes the
request): at every length ``n``, one :class:`~sparsegraph.experiments.models.SparseSelfAttention`
layer per pattern, of the task's width and heads (batch 1, float32), runs forward + backward.

- **Time**: :func:`sparsegraph.kernels.measure.time_interleaved` over the patterns at that ``n``
  (one warm-up call each, which builds and compiles the layout, then ``repeats`` rounds calling
  every pattern once), so a change in machine load hits every pattern alike. Each row keeps the
  median with its fastest and slowest call and whether the spread makes it unreliable; a figure
  marked unreliable is drawn hollow and never presented as a result.
- **Peak memory** of one call: the growth of the process's peak resident set (Linux ``VmHWM``,
  reset before the call after ``malloc_trim``), in MiB; empty without ``/proc``. The runner
  starts this process with :data:`sparsegraph.kernels.measure.MEMORY_MALLOC_ENV`
  (``MALLOC_MMAP_THRESHOLD_=65536``) so freed buffers leave the RSS; ``sweep.json`` records the
  allocator settings and the thread count.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

from sparsegraph.kernels.measure import malloc_settings, peak_growth_mib, time_interleaved

__all__ = ["measure_length", "main"]


def _layer_call(spec: str, n: int, *, d_model: int, heads: int, block: int, backend: str,
                max_len: int) -> Callable[[], None]:
    import torch

    from sparsegraph.experiments.models.attention import LayoutCache, SparseSelfAttention
    from sparsegraph.experiments.models.config import AttentionConfig, ModelConfig

    # The model's own derivation of the global tokens (the pattern declares them).
    g = ModelConfig(vocab_size=2, d_model=d_model, n_heads=heads, n_layers=1, max_len=max_len,
                    pooling="mean", attention=AttentionConfig(pattern=spec, block_size=block)).global_tokens
    torch.manual_seed(0)
    cache = LayoutCache(spec, layer=0, heads=heads, seed=0, block_size=block, global_tokens=g)
    cache.layout(n)  # built here, so a pattern not valid at this n fails before the timing
    layer = SparseSelfAttention(d_model, heads, cache, backend)
    x = torch.randn(1, g + n, d_model, requires_grad=True)

    def call() -> None:
        out = layer(x, n)
        out.sum().backward()
        x.grad = None
        layer.zero_grad(set_to_none=True)

    return call


def measure_length(specs: dict[str, str], n: int, *, d_model: int, heads: int, block: int,
                   backend: str, repeats: int = 7) -> list[dict[str, Any]]:
    """One row per pattern at length ``n``: interleaved forward+backward times and peak MiB."""
    calls: dict[str, Callable[[], None]] = {}
    rows: dict[str, dict[str, Any]] = {}
    for label, spec in specs.items():
        rows[label] = {"label": label, "spec": spec, "n": n, "ms": None, "peak_mb": None}
        try:
            calls[label] = _layer_call(spec, n, d_model=d_model, heads=heads, block=block,
                                       backend=backend, max_len=n)
        except (ValueError, RuntimeError) as e:  # e.g. a pattern not valid at this n
            rows[label]["error"] = str(e)
    if calls:
        for label, timing in time_interleaved(calls, repeats=repeats, warmup=1).items():
            t = timing.to_dict()
            rows[label].update(ms=t["median"], ms_low=t["low"], ms_high=t["high"],
                               spread=t["spread"], reliable=t["reliable"], repeats=t["repeats"])
        for label, call in calls.items():
            rows[label]["peak_mb"] = peak_growth_mib(call)
    return [rows[label] for label in specs]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m sparsegraph.experiments.compare.sweep REQUEST.json OUT.json", file=sys.stderr)
        return 2
    req = json.loads(Path(args[0]).read_text())
    import torch

    from sparsegraph.experiments.infra.atomic import atomic_write_bytes
    from sparsegraph.experiments.infra.user_modules import import_user_modules

    import_user_modules(req.get("imports", []))
    if req.get("threads"):
        torch.set_num_threads(int(req["threads"]))
    rows: list[dict[str, Any]] = []
    lengths = req["lengths"]
    for i, n in enumerate(lengths, 1):
        print(f"  sweep {i}/{len(lengths)}: n={n}, {len(req['specs'])} patterns interleaved",
              file=sys.stderr, flush=True)
        rows += measure_length(req["specs"], n, d_model=req["d_model"], heads=req["heads"],
                               block=req["block"], backend=req["backend"])
    doc = {"request": req, "rows": rows, "threads": torch.get_num_threads(),
           "allocator": malloc_settings()}
    atomic_write_bytes(Path(args[1]), (json.dumps(doc, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
