"""``sparsegraph bench``: block-sparse attention implementations side by side on this machine.

One process, interleaved repetitions (every implementation once per round, rounds repeated),
medians. For each pattern and n it times forward (under ``torch.no_grad``) and forward+backward
(gradients of q, k, v for a fixed random output gradient) of:

* ``dense_sdpa``: ``torch.nn.functional.scaled_dot_product_attention`` with the layout's dense
  bool mask ``[1, heads, n, n]`` (built outside the timing);
* ``flex``: ``torch.compile(flex_attention, dynamic=False)`` with ``kernels.to_flex_block_mask``
  (forward only when its CPU backward raises NotImplementedError, which the table says);
* ``gather_loop``: the plain peer below -- per row length, gather the key/value blocks, bmm,
  softmax, bmm, and let autograd do the backward;
* ``torch``: this project's ``kernels.attention(backend="torch")``;
* ``auto``: ``kernels.attention(backend="auto")`` (its choice is printed).

Peak memory is measured in a fresh subprocess per (pattern, n): the growth of the resident-set
high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs``) over one call, after a
warm-up call, with glibc's ``MALLOC_MMAP_THRESHOLD_=65536`` so every large buffer is mmapped and
returned on free and the high-water mark follows live memory. Times are measured under the
allocator settings of the timing process, which the report prints (``sparsegraph bench``
re-executes itself with ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` raised unless
``--keep-malloc-env``: with glibc's defaults large temporaries are page-faulted in on every call).

The matmul rate (GFLOP/s of a 4096 x 4096 float32 matmul) is measured in the same process; each
time is also given as the fraction of that rate it achieves on the layout's needed FLOPs
(``BlockLayout.stats``: 4 * block_q * block_k * d per listed block forward, 10 * ... backward).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch._dynamo
import torch.nn.functional as F

from sparsegraph import kernels
from sparsegraph.kernels.bench_options import DEFAULT_PATTERNS, IMPLS, TUNED_MALLOC_ENV, add_arguments, reexec_with_tuned_malloc
from sparsegraph.kernels.measure import UNRELIABLE_SPREAD, Timing, peak_growth_mib
from sparsegraph.layout import BlockLayout, compile as compile_layout

__all__ = ["BenchConfig", "gather_loop_attention", "run", "main", "IMPLS", "TUNED_MALLOC_ENV"]

_MEMORY_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


@dataclass
class BenchConfig:
    """What to run. ``ns``: lengths for every implementation; ``sparse_ns``: extra lengths for the
    sparse ones only (dense SDPA is quadratic); ``max_dense_n``: longest n for dense SDPA."""

    patterns: Sequence[str] = DEFAULT_PATTERNS
    ns: Sequence[int] = (1024, 2048, 4096, 8192, 16384)
    sparse_ns: Sequence[int] = (32768, 65536)
    impls: Sequence[str] = IMPLS
    repeats: int = 5
    batch: int = 1
    heads: int = 4
    head_dim: int = 64
    block: int = 64
    threads: int = 2
    seed: int = 0
    memory: bool = True
    max_dense_n: int = 16384
    compile_n: int = 65536

    def __post_init__(self) -> None:
        bad = [i for i in self.impls if i not in IMPLS]
        if bad:
            raise ValueError(f"impls must be among {IMPLS}, got {bad}")
        for name in ("repeats", "batch", "heads", "head_dim", "threads", "max_dense_n", "compile_n"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "compile_n" else 1):
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for n in (*self.ns, *self.sparse_ns):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"sequence lengths must be positive ints, got {n!r}")
        if not self.patterns:
            raise ValueError("patterns must name at least one pattern spec")


# ---------------------------------------------------------------------- the plain peer
def gather_loop_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout,
                          scale: float) -> torch.Tensor:
    """The plain "gather the key blocks, bmm, softmax, bmm" loop, differentiated by autograd.

    One iteration per distinct row length L: gather the rows' queries ``[R, bq, d]`` and their L
    key/value blocks ``[R, L*bk, d]``, ``P = softmax(Q K^T * scale)`` with non-edges masked, out =
    ``P V``. Autograd keeps every gathered tensor and P for the backward.
    """
    B, H, n_q, d = q.shape
    n_k = k.shape[2]
    bq, bk, Qb, Kb = layout.block_q, layout.block_k, layout.num_q_blocks, layout.num_k_blocks
    pad_q, pad_k = Qb * bq - n_q, Kb * bk - n_k
    qf = F.pad(q, (0, 0, 0, pad_q)).reshape(B * H * Qb, bq, d)
    kf = F.pad(k, (0, 0, 0, pad_k)).reshape(B * H * Kb, bk, d)
    vf = F.pad(v, (0, 0, 0, pad_k)).reshape(B * H * Kb, bk, d)
    counts, starts = layout.blocks_per_row(), layout.row_ptr[:-1].astype(np.int64)
    blocked_tiles = torch.from_numpy(~layout.unpacked_masks())  # True = not an edge
    slices = np.arange(B * H)
    lh = np.zeros_like(slices) if layout.heads == 1 else slices % H
    out_rows, out_vals = [], []
    for L in np.unique(counts[counts > 0]):
        s_idx, r_idx = np.nonzero(counts[(lh[:, None] * Qb + np.arange(Qb))] == L)
        lrow = lh[s_idx] * Qb + r_idx
        entries = starts[lrow, None] + np.arange(L)
        cols = torch.from_numpy(layout.col_idx[entries].astype(np.int64) + (s_idx * Kb)[:, None])
        rows = torch.from_numpy(s_idx * Qb + r_idx)
        Q = qf[rows]
        K = kf[cols.view(-1)].view(len(rows), L * bk, d)
        V = vf[cols.view(-1)].view(len(rows), L * bk, d)
        S = torch.matmul(Q, K.transpose(1, 2)) * scale
        mask_idx = torch.from_numpy(layout.mask_idx[entries].astype(np.int64))
        if bool((mask_idx >= 0).any()):
            tiles = torch.cat([blocked_tiles, torch.zeros(1, bq, bk, dtype=torch.bool)])
            blocked = tiles[torch.where(mask_idx >= 0, mask_idx, len(tiles) - 1)]  # [R, L, bq, bk]
            blocked = blocked.permute(0, 2, 1, 3).reshape(len(rows), bq, L * bk)
            S = S.masked_fill(blocked, -1e30)  # finite: a row without edges stays finite, zeroed below
            P = torch.softmax(S, -1) * (~blocked.all(-1, keepdim=True))
        else:
            P = torch.softmax(S, -1)
        out_rows.append(rows)
        out_vals.append(torch.matmul(P, V))
    out = qf.new_zeros(qf.shape)
    if out_rows:
        out = out.index_put((torch.cat(out_rows),), torch.cat(out_vals))
    return out.view(B, H, Qb * bq, d)[:, :, :n_q]


# ---------------------------------------------------------------------- implementations
@dataclass
class _Case:
    spec: str
    n: int
    layout: BlockLayout
    device_layout: Any
    compile_s: float
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    grad: torch.Tensor
    scale: float
    fns: dict[str, Callable] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)


def _make_case(spec: str, n: int, cfg: BenchConfig, impls: Sequence[str]) -> _Case:
    from sparsegraph import patterns

    graph = patterns.build(spec, n, heads=cfg.heads, seed=cfg.seed)
    t = time.perf_counter()
    layout = compile_layout(graph, cfg.block)
    compile_s = time.perf_counter() - t
    del graph
    gen = torch.Generator().manual_seed(cfg.seed)
    mk = lambda: torch.randn(cfg.batch, cfg.heads, n, cfg.head_dim, generator=gen)  # noqa: E731
    case = _Case(spec, n, layout, kernels.prepare(layout), compile_s, mk(), mk(), mk(), mk(),
                 1.0 / math.sqrt(cfg.head_dim))
    dl = case.device_layout
    for name in impls:
        if name == "dense_sdpa":
            if n > cfg.max_dense_n:
                continue
            mask = dl.dense_mask().unsqueeze(0)  # [1, heads or 1, n, n], outside the timing
            case.fns[name] = lambda q, k, v, m=mask: F.scaled_dot_product_attention(q, k, v, attn_mask=m)
        elif name == "flex":
            from torch.nn.attention.flex_attention import flex_attention

            # Every (shape, block mask) is one more compiled entry of flex_attention's code; past
            # dynamo's recompile limit (8) it silently falls back to eager, unfused flex. Start
            # each case from an empty cache (its compile time shows in "first call").
            torch._dynamo.reset()
            block_mask = kernels.to_flex_block_mask(layout)
            compiled = torch.compile(flex_attention, dynamic=False)
            case.fns[name] = lambda q, k, v, f=compiled, bm=block_mask: f(q, k, v, block_mask=bm)
        elif name == "gather_loop":
            case.fns[name] = lambda q, k, v: gather_loop_attention(q, k, v, layout, case.scale)
        elif name == "torch":
            case.fns[name] = lambda q, k, v: kernels.attention(q, k, v, dl, backend="torch")
        elif name == "auto":
            case.fns[name] = lambda q, k, v: kernels.attention(q, k, v, dl, backend="auto")
            case.notes[name] = f"auto chose {kernels.choose_backend(case.q, dl)!r}"
    return case


def _fwd(case: _Case, fn: Callable) -> float:
    with torch.no_grad():
        t = time.perf_counter()
        fn(case.q, case.k, case.v)
        return time.perf_counter() - t


def _fwd_bwd(case: _Case, fn: Callable) -> float:
    q, k, v = (x.detach().clone().requires_grad_() for x in (case.q, case.k, case.v))
    t = time.perf_counter()
    out = fn(q, k, v)
    torch.autograd.backward(out, case.grad)
    return time.perf_counter() - t


def flex_backward_supported() -> tuple[bool, str]:
    """Whether compiled FlexAttention can differentiate on CPU here, tried in a subprocess."""
    code = (
        "import torch\n"
        "from torch.nn.attention.flex_attention import flex_attention, create_block_mask\n"
        "bm = create_block_mask(lambda b, h, q, k: q >= k, 1, 1, 128, 128, device='cpu')\n"
        "q = torch.randn(1, 1, 128, 16, requires_grad=True)\n"
        "try:\n"
        "    torch.compile(flex_attention, dynamic=False)(q, q, q, block_mask=bm).sum().backward()\n"
        "    print('OK')\n"
        "except NotImplementedError as e:\n"
        "    print('NotImplementedError: ' + str(e).split('.')[0])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    last = (proc.stdout.strip().splitlines() or [proc.stderr.strip()[-200:]])[-1]
    return last == "OK", last


# ---------------------------------------------------------------------- memory probe
def _peak_growth_mb(fn: Callable[[], Any]) -> float:
    grown = peak_growth_mib(fn)
    return float("nan") if grown is None else grown


def _memory_probe(spec: str, n: int, cfg: BenchConfig, impls: Sequence[str],
                  flex_ok: bool) -> dict[str, dict[str, float]]:
    """Runs inside the subprocess: peak growth of one forward and one forward+backward per impl."""
    torch.set_num_threads(cfg.threads)
    case = _make_case(spec, n, cfg, impls)
    out: dict[str, dict[str, float]] = {}
    for name, fn in case.fns.items():
        res: dict[str, float] = {}
        _fwd(case, fn)  # warm-up (compiles flex, builds plans)
        res["fwd"] = _peak_growth_mb(lambda: _fwd(case, fn))
        res["fwd_bwd"] = float("nan")
        if name != "flex" or flex_ok:
            _fwd_bwd(case, fn)
            res["fwd_bwd"] = _peak_growth_mb(lambda: _fwd_bwd(case, fn))
        out[name] = res
    return out


def _measure_memory(spec: str, n: int, cfg: BenchConfig, impls: Sequence[str],
                    flex_ok: bool) -> dict[str, dict[str, float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(_MEMORY_MALLOC_ENV)
    payload = json.dumps({"spec": spec, "n": n, "impls": list(impls), "cfg": _cfg_dict(cfg), "flex_ok": flex_ok})
    proc = subprocess.run([sys.executable, "-m", "sparsegraph.kernels.bench", "--memory-probe", payload],
                          capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe for {spec} n={n} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cfg_dict(cfg: BenchConfig) -> dict[str, Any]:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()}


# ---------------------------------------------------------------------- the run
def matmul_rate(threads: int, size: int = 4096, repeats: int = 5) -> float:
    """GFLOP/s of a ``size x size`` float32 matmul (median of ``repeats``)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    c = torch.empty(size, size)
    torch.mm(a, b, out=c)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b, out=c)
        times.append(time.perf_counter() - t)
    return 2 * size**3 / statistics.median(times) / 1e9


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def run(cfg: BenchConfig, emit: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the benchmark, printing tables through ``emit``; returns the raw results."""
    torch.set_num_threads(cfg.threads)
    malloc = {k: os.environ.get(k, "(glibc default)") for k in TUNED_MALLOC_ENV}
    emit(f"# sparsegraph bench\n\ntorch {torch.__version__}, {cfg.threads} threads "
         f"(torch.get_num_threads() = {torch.get_num_threads()}), float32, batch {cfg.batch}, "
         f"heads {cfg.heads}, head_dim {cfg.head_dim}, layout block {cfg.block}; "
         f"{cfg.repeats} interleaved rounds, medians; spread = interquartile range / median, "
         f"'unreliable' above {100 * UNRELIABLE_SPREAD:.0f}%.")
    emit("allocator (timings): " + ", ".join(f"{k}={v}" for k, v in malloc.items())
         + f"; memory probes: fresh subprocess with MALLOC_MMAP_THRESHOLD_=65536, peak = growth of VmHWM over one call")
    emit(f"load average at start: {os.getloadavg()[0]:.1f} (the machine is shared; see docs/kernels.md)")
    rate = matmul_rate(cfg.threads)
    emit(f"matmul rate: {rate:.1f} GFLOP/s (4096x4096 float32 mm, median of 5)\n")
    results: dict[str, Any] = {"matmul_gflops": rate, "malloc": malloc, "rows": []}
    if cfg.compile_n:
        from sparsegraph import patterns

        spec = cfg.patterns[0]
        graph = patterns.build(spec, cfg.compile_n, heads=cfg.heads, seed=cfg.seed)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            compiled = compile_layout(graph, cfg.block)
            times.append(time.perf_counter() - t)
        results["compile"] = {"spec": spec, "n": cfg.compile_n, "s": statistics.median(times)}
        emit(f"layout compile: {spec} n={cfg.compile_n} heads={cfg.heads} block {cfg.block}: "
             f"{statistics.median(times) * 1e3:.0f} ms (median of 3; {graph.nnz} edges, {compiled.nnzb} blocks)\n")
        del graph, compiled

    flex_bwd = flex_backward_supported() if "flex" in cfg.impls else (False, "not run")
    if "flex" in cfg.impls:
        emit(f"FlexAttention backward on CPU: {flex_bwd[1]}\n")
    header = ("| pattern | n | impl | fwd ms | fwd+bwd ms | peak MB fwd | peak MB fwd+bwd | "
              "fwd % matmul | fwd+bwd % matmul | first call ms | spread fwd / fwd+bwd | notes |")
    emit(header)
    emit("|" + "---|" * (header.count("|") - 1))
    for spec in cfg.patterns:
        for n in [*cfg.ns, *cfg.sparse_ns]:
            sparse_only = n not in cfg.ns
            impls = [i for i in cfg.impls if not (sparse_only and i == "dense_sdpa")]
            rows = _bench_case(spec, n, cfg, impls, rate, flex_bwd)
            for row in rows:
                results["rows"].append(row)
                emit(_format_row(row))
    emit("")
    for line in _summary(results["rows"], cfg):
        emit(line)
    return results


def _bench_case(spec: str, n: int, cfg: BenchConfig, impls: Sequence[str], rate: float,
                flex_bwd: tuple[bool, str]) -> list[dict[str, Any]]:
    _log(f"{spec} n={n}: building")
    case = _make_case(spec, n, cfg, impls)
    stats = case.layout.stats(cfg.head_dim)
    per_layout = cfg.batch * cfg.heads // case.layout.heads
    flops_f = stats.flops_forward * per_layout
    flops_b = stats.flops_backward * per_layout
    first: dict[str, float] = {}
    has_bwd: dict[str, bool] = {}
    for name, fn in case.fns.items():
        _log(f"{spec} n={n}: warm-up {name}")
        first[name] = _fwd(case, fn)
        if name == "flex":
            # Never call compiled flex with grad here: after its CPU backward has raised, later
            # forward calls in the process ran ~20x slower (a dynamo re-guard; seen on torch 2.13).
            has_bwd[name], why = flex_bwd
            if not has_bwd[name]:
                case.notes[name] = f"backward not run: {why}"
                continue
        _fwd_bwd(case, fn)
        has_bwd[name] = True
    times: dict[str, dict[str, list[float]]] = {k: {"fwd": [], "fwd_bwd": []} for k in case.fns}
    for r in range(cfg.repeats):
        for name, fn in case.fns.items():
            times[name]["fwd"].append(_fwd(case, fn))
            if has_bwd[name]:
                times[name]["fwd_bwd"].append(_fwd_bwd(case, fn))
            _log(f"{spec} n={n} round {r + 1}/{cfg.repeats} {name}: fwd {times[name]['fwd'][-1] * 1e3:.0f} ms"
                 + (f", fwd+bwd {times[name]['fwd_bwd'][-1] * 1e3:.0f} ms" if has_bwd[name] else ""))
    memory: dict[str, dict[str, float]] = {}
    if cfg.memory:
        _log(f"{spec} n={n}: memory probe (subprocess)")
        memory = _measure_memory(spec, n, cfg, list(case.fns), flex_bwd[0])
    rows = []
    for name in case.fns:
        tf = Timing(tuple(times[name]["fwd"]))
        tfb = Timing(tuple(times[name]["fwd_bwd"])) if times[name]["fwd_bwd"] else None
        f = tf.median
        fb = tfb.median if tfb is not None else float("nan")
        rows.append({
            "pattern": spec, "n": n, "impl": name, "fwd_ms": f * 1e3, "fwd_bwd_ms": fb * 1e3,
            "fwd_spread": tf.spread, "fwd_bwd_spread": tfb.spread if tfb is not None else float("nan"),
            "reliable": tf.reliable and (tfb is None or tfb.reliable),
            "fwd_all_ms": [x * 1e3 for x in times[name]["fwd"]],
            "fwd_bwd_all_ms": [x * 1e3 for x in times[name]["fwd_bwd"]],
            "peak_fwd_mb": memory.get(name, {}).get("fwd", float("nan")),
            "peak_fwd_bwd_mb": memory.get(name, {}).get("fwd_bwd", float("nan")),
            "fwd_frac": flops_f / f / 1e9 / rate, "fwd_bwd_frac": (flops_f + flops_b) / fb / 1e9 / rate,
            "first_ms": first[name] * 1e3, "notes": case.notes.get(name, ""),
            "layout_compile_ms": case.compile_s * 1e3, "density": stats.density,
        })
    return rows


def _fmt(x: float, digits: int = 1) -> str:
    return "—" if x != x else f"{x:.{digits}f}"


def _format_row(r: dict[str, Any]) -> str:
    pct = lambda x: "—" if x != x else f"{100 * x:.0f}%"  # noqa: E731
    return (f"| {r['pattern'].split(':')[0]} | {r['n']} | {r['impl']} | {_fmt(r['fwd_ms'])} | "
            f"{_fmt(r['fwd_bwd_ms'])} | {_fmt(r['peak_fwd_mb'], 0)} | {_fmt(r['peak_fwd_bwd_mb'], 0)} | "
            f"{pct(r['fwd_frac'])} | {pct(r['fwd_bwd_frac'])} | {_fmt(r['first_ms'], 0)} | "
            f"{pct(r['fwd_spread'])} / {pct(r['fwd_bwd_spread'])}{'' if r['reliable'] else ' unreliable'} | "
            f"{r['notes']} |")


def _summary(rows: list[dict[str, Any]], cfg: BenchConfig) -> list[str]:
    """Ratios against the targets of issue 4, for the first pattern (BigBird)."""
    spec = cfg.patterns[0]
    at = lambda n, impl: next((r for r in rows if r["pattern"] == spec and r["n"] == n and r["impl"] == impl), None)  # noqa: E731
    out = [f"## targets ({spec.split(':')[0]})", ""]
    n_big = 16384 if any(r["n"] == 16384 for r in rows) else max((r["n"] for r in rows if r["pattern"] == spec), default=0)
    t, flex, dense, gather = at(n_big, "torch"), at(n_big, "flex"), at(n_big, "dense_sdpa"), at(n_big, "gather_loop")
    if t and flex:
        out.append(f"- n={n_big} forward torch / flex compiled: {t['fwd_ms'] / flex['fwd_ms']:.2f} (target <= 1, stretch 0.8)")
    if t and dense:
        out.append(f"- n={n_big} fwd+bwd dense SDPA / torch: {dense['fwd_bwd_ms'] / t['fwd_bwd_ms']:.1f}x (target >= 20x)")
    if t and gather:
        out.append(f"- n={n_big} fwd+bwd torch / gather loop: {t['fwd_bwd_ms'] / gather['fwd_bwd_ms']:.2f} (target < 1, stretch 0.8)")
    if t:
        out.append(f"- n={n_big} peak memory of torch fwd+bwd: {_fmt(t['peak_fwd_bwd_mb'], 0)} MB (target <= 400)")
        peaks = [(r["n"], r["peak_fwd_bwd_mb"]) for r in rows if r["pattern"] == spec and r["impl"] == "torch"]
        out.append("- torch fwd+bwd peak MB per 1K tokens: " + ", ".join(
            f"n={n}: {p / (n / 1024):.1f}" for n, p in peaks if p == p) + " (linear in n when roughly constant)")
        out.append(f"- torch first call at n={n_big} (plan building included): {t['first_ms']:.0f} ms")
    a, d = at(1024, "auto"), at(1024, "dense_sdpa")
    if a and d:
        out.append(f"- n=1024 auto / dense SDPA: forward {a['fwd_ms'] / d['fwd_ms']:.2f}, "
                   f"fwd+bwd {a['fwd_bwd_ms'] / d['fwd_bwd_ms']:.2f} (target <= 1.1; {a['notes']})")
    return out


# ---------------------------------------------------------------------- command line
def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"{name} must be a comma list of ints, got {text!r}") from None


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    ns, sparse = _ints(args.n, "--n"), _ints(args.sparse_n, "--sparse-n")
    repeats = args.repeats
    if args.quick:
        ns, sparse, repeats = (1024, 2048), (), 2
    return BenchConfig(
        patterns=tuple(args.pattern) if args.pattern else DEFAULT_PATTERNS, ns=ns, sparse_ns=sparse,
        impls=tuple(x.strip() for x in args.impl.split(",") if x.strip()), repeats=repeats,
        batch=args.batch, heads=args.heads, head_dim=args.head_dim, threads=args.threads,
        memory=not args.no_memory, max_dense_n=args.max_dense_n, compile_n=args.compile_n,
    )


def run_from_args(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    results = run(cfg)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=float)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--memory-probe"]:  # internal: the memory subprocess
        payload = json.loads(argv[1])
        cfg = BenchConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in payload["cfg"].items()})
        print(json.dumps(_memory_probe(payload["spec"], payload["n"], cfg, payload["impls"], payload["flex_ok"])))
        return 0
    parser = argparse.ArgumentParser(prog="python -m sparsegraph.kernels.bench", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
