"""Speed and memory of one attention layer of each pattern against the sequence length.

``python -m sparsegraph.experiments.compare.sweep REQUEST.json OUT.json`` (the runner writes the request):
for every pattern and length ``n``, one :class:`experiments.models.SparseSelfAttention` layer of
the task's width and heads (batch 1, float32) runs forward + backward; the result is the
**median** of ``repeats`` timed calls after one untimed warm-up call (which builds and compiles
the layout), and the **peak memory** of one call: the growth of the process's peak resident set
(Linux ``VmHWM``, reset through ``/proc/self/clear_refs`` before the call, after ``malloc_trim``
has returned freed memory), in MiB. The lengths are interleaved pattern by pattern at each ``n``
so that a change in machine load hits every pattern alike. Without ``/proc`` (not Linux) the
memory column is empty.
"""

from __future__ import annotations

import ctypes
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["measure", "main"]


def _status_kib(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.M)
    return int(m.group(1)) if m else None


def _reset_peak() -> bool:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # "5": reset the peak resident set size (Linux >= 4.0)
        return True
    except OSError:
        return False


def measure(spec: str, n: int, *, d_model: int, heads: int, block: int, backend: str,
            global_tokens: int = 0, repeats: int = 5) -> dict[str, Any]:
    """Median forward+backward milliseconds and peak MiB of one attention layer of ``spec``."""
    import torch

    from sparsegraph.experiments.models.attention import LayoutCache, SparseSelfAttention

    torch.manual_seed(0)
    cache = LayoutCache(spec, layer=0, heads=heads, seed=0, block_size=block,
                        global_tokens=global_tokens)
    layer = SparseSelfAttention(d_model, heads, cache, backend)
    x = torch.randn(1, global_tokens + n, d_model, requires_grad=True)

    def call() -> None:
        out = layer(x, n)
        out.sum().backward()
        x.grad = None
        layer.zero_grad(set_to_none=True)

    call()  # builds the layout
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - t0))
    peak = None
    if _reset_peak():
        before = _status_kib("VmRSS")
        call()
        after = _status_kib("VmHWM")
        if before is not None and after is not None:
            peak = max(after - before, 0) / 1024
    return {"ms": statistics.median(times), "peak_mb": peak}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m sparsegraph.experiments.compare.sweep REQUEST.json OUT.json", file=sys.stderr)
        return 2
    req = json.loads(Path(args[0]).read_text())
    import torch

    from sparsegraph.experiments.infra.user_modules import import_user_modules

    import_user_modules(req.get("imports", []))
    if req.get("threads"):
        torch.set_num_threads(int(req["threads"]))
    rows = []
    specs: dict[str, str] = req["specs"]
    total = len(specs) * len(req["lengths"])
    done = 0
    tty = sys.stderr.isatty()
    for n in req["lengths"]:
        for label, spec in specs.items():
            try:
                r = measure(spec, n, d_model=req["d_model"], heads=req["heads"], block=req["block"],
                            backend=req["backend"], global_tokens=req["global_tokens"].get(label, 0))
                rows.append({"label": label, "spec": spec, "n": n, **r})
            except (ValueError, RuntimeError) as e:  # e.g. a pattern not valid at this n
                rows.append({"label": label, "spec": spec, "n": n, "ms": None, "peak_mb": None,
                             "error": str(e)})
            done += 1
            line = f"  sweep {done}/{total}: {label} n={n}"
            if tty:
                print("\r" + line, end="", file=sys.stderr, flush=True)
            else:
                print(line, file=sys.stderr, flush=True)
    if tty:
        print(file=sys.stderr)
    Path(args[1]).write_text(json.dumps({"request": req, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
