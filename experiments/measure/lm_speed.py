"""Language-model speed and memory: a sliding-window decoder against full causal attention.

``train``
    One training step (forward + backward + AdamW) of a :class:`DecoderLM` (2 layers, width 128,
    4 heads of 32, MLP 512, bytes, batch 1) at ``n`` = 1K, 4K, 16K tokens: the window pattern
    (``sliding_window:window=W,causal=true``, ``kernels.attention`` with ``backend="auto"``)
    against full causal attention run as torch's ``scaled_dot_product_attention(is_causal=True)``
    (``pattern="causal"``, the dense model). Times: the variants *interleaved* in one process (round
    ``r`` runs every variant once, after a warm-up step each), median with the min-max spread over
    the rounds, under the allocator settings printed (``MALLOC_MMAP_THRESHOLD_`` /
    ``MALLOC_TRIM_THRESHOLD_`` raised, as ``sparsegraph bench`` does; the script re-executes itself
    with them unless ``--keep-malloc-env``). Memory: a fresh process per (variant, n) with
    ``MALLOC_MMAP_THRESHOLD_=65536`` (large buffers are mmapped and returned on free, so the
    high-water mark follows live memory) runs a warm-up step, resets ``VmHWM``, runs one step: the
    peak RSS of the process and its growth over the step.

``decode``
    Tokens/s of cached decoding at a ``--context`` (16K) token context, a tiny model (2 layers,
    width 64, 4 heads of 16): the window model with its rolling cache (the sinks plus the last
    ``W`` keys), the same model with a cache that keeps every key (masked to the window: the same
    outputs, the memory of a full cache), and the full causal model with its full cache. Each
    variant prefills the context once and decodes ``--chunk`` tokens as a warm-up, then the
    variants decode ``--chunk`` tokens in turn for ``--decode-rounds`` rounds (interleaved);
    tokens/s median (min-max) over the rounds. Memory, each variant in a fresh process: the
    cache's bytes of keys and values (preallocated for the whole horizon), the growth of the peak
    RSS while decoding, and the peak RSS up to the end of the prefill (the prefill's forward pass
    and the cache rule fitted on the graph at the context length dominate it).

A ratio whose min-max spreads overlap is printed as "not a result". Run::

    python -m sparsegraph.experiments.measure.lm_speed train [--lengths 1024,4096,16384] [--rounds 3]
    python -m sparsegraph.experiments.measure.lm_speed decode [--context 16384]
    python -m sparsegraph.experiments.measure.lm_speed all
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Sequence

from sparsegraph.kernels.bench_options import TUNED_MALLOC_ENV

__all__ = ["environment", "git_commit", "spread", "verdict", "main"]

MEMORY_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}
MODULE = "sparsegraph.experiments.measure.lm_speed"


# ---------------------------------------------------------------------- shared helpers
def environment() -> str:
    """Torch version, threads, CPUs, load average and allocator settings of this process."""
    import torch

    mall = {k: os.environ[k] for k in sorted(os.environ) if k.startswith("MALLOC_")}
    load = os.getloadavg()
    return (f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs, load average "
            f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}, allocator: glibc malloc "
            + (", ".join(f"{k}={v}" for k, v in mall.items()) if mall else "defaults")
            + ", PyTorch CPU allocator (no caching)")


def git_commit() -> str:
    """``git rev-parse --short HEAD`` of the source tree (``+dirty`` with uncommitted changes)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        sha = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha or "unknown") + ("+dirty" if dirty else "")


def spread(values: Sequence[float], fmt: str = "{:.0f}") -> str:
    """``median (min-max)``."""
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def verdict(a: Sequence[float], b: Sequence[float]) -> str:
    """``a / b`` of the medians, or "not a result" when the min-max spread of either exceeds the
    difference of the medians (the ranges overlap)."""
    ma, mb = statistics.median(a), statistics.median(b)
    if max(max(a) - min(a), max(b) - min(b)) >= abs(ma - mb) or min(a) <= max(b) and min(b) <= max(a):
        return f"not a result ({ma / mb:.2f}x, spreads overlap)"
    return f"{ma / mb:.2f}x"


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------------- training
TRAIN_VARIANTS = ("window", "full-sdpa")


def _train_model(variant: str, n: int, window: int):
    import torch

    from sparsegraph.experiments.models.config import AttentionConfig
    from sparsegraph.experiments.models.decoder import DecoderConfig, DecoderLM

    spec = f"sliding_window:window={window},causal=true" if variant == "window" else "causal"
    torch.manual_seed(0)
    cfg = DecoderConfig(vocab_size=256, d_model=128, n_layers=2, n_heads=4, d_ff=512, max_len=n,
                        attention=AttentionConfig(pattern=spec, block_size=64))
    model = DecoderLM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=False)
    x = torch.randint(0, 256, (1, n + 1), generator=torch.Generator().manual_seed(1))
    return model, opt, x


def _train_step(model, opt, x) -> float:
    import torch

    t0 = time.perf_counter()
    logits = model(x[:, :-1])
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def _backend(model, n: int) -> str:
    from sparsegraph import kernels

    attn = model.layers[0].attn
    if attn.uses_sdpa:
        return "sdpa is_causal"
    if attn.backend != "auto":
        return attn.backend
    import torch

    q = torch.zeros(1, attn.n_heads, n, attn.head_dim)
    return kernels.choose_backend(q, attn.cache.layout(n))


def child_train_memory(variant: str, n: int, window: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    model, opt, x = _train_model(variant, n, window)
    _train_step(model, opt, x)  # warm-up: layouts, optimizer state
    before = _kib("VmRSS")
    _reset_peak()
    _train_step(model, opt, x)
    peak = _kib("VmHWM")
    print(json.dumps({"peak_kib": peak, "step_kib": peak - before}))


def _child(args: list[str], env_extra: dict[str, str], timeout: float) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(env_extra)
    proc = subprocess.run([sys.executable, "-m", MODULE, *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def train_speed(lengths: Sequence[int], rounds: int, window: int, threads: int) -> list[dict[str, Any]]:
    import torch

    torch.set_num_threads(threads)
    rows = []
    for n in lengths:
        built = {v: _train_model(v, n, window) for v in TRAIN_VARIANTS}
        times: dict[str, list[float]] = {v: [] for v in TRAIN_VARIANTS}
        for v in TRAIN_VARIANTS:
            _log(f"[train] n={n} {v}: warm-up")
            _train_step(*built[v])
        for r in range(rounds):
            for v in TRAIN_VARIANTS:
                times[v].append(_train_step(*built[v]))
                _log(f"[train] n={n} round {r + 1}/{rounds} {v}: {times[v][-1]:.2f} s")
        backends = {v: _backend(built[v][0], n) for v in TRAIN_VARIANTS}
        del built
        for v in TRAIN_VARIANTS:
            mem = _child(["_train-memory", v, str(n), str(window), str(threads)], MEMORY_MALLOC_ENV, 3600)
            tps = [n / t for t in times[v]]
            rows.append({"n": n, "variant": v, "backend": backends[v], "step_s": times[v], "tokens_per_s": tps,
                         **mem})
    return rows


def train_table(rows: list[dict[str, Any]], window: int) -> str:
    out = ["| n | model | attention | step (s), median (min-max) | tokens/s, median (min-max) | window / full tokens/s "
           "| peak RSS (MiB) | step growth (MiB) |", "| ---: | --- | --- | ---: | ---: | --- | ---: | ---: |"]
    by = {(r["n"], r["variant"]): r for r in rows}
    for r in rows:
        full = by[(r["n"], "full-sdpa")]
        ratio = verdict(r["tokens_per_s"], full["tokens_per_s"]) if r["variant"] == "window" else "1.00x"
        name = f"window {window}" if r["variant"] == "window" else "full causal"
        out.append(f"| {r['n']} | {name} | {r['backend']} | {spread(r['step_s'], '{:.2f}')} | "
                   f"{spread(r['tokens_per_s'])} | {ratio} | {r['peak_kib'] / 1024:.0f} | {r['step_kib'] / 1024:.0f} |")
    return "\n".join(out)


# ---------------------------------------------------------------------- decoding
DECODE_VARIANTS = ("window-rolling", "window-keep-all", "full")


def _decode_model(variant: str, context: int, window: int):
    import torch

    from sparsegraph.experiments.models.config import AttentionConfig
    from sparsegraph.experiments.models.decoder import DecoderConfig, DecoderLM

    spec = "causal" if variant == "full" else f"sink_window:window={window},sinks=4"
    torch.manual_seed(0)
    cfg = DecoderConfig(vocab_size=256, d_model=64, n_layers=2, n_heads=4, d_ff=256, max_len=context,
                        attention=AttentionConfig(pattern=spec, block_size=64))
    return DecoderLM(cfg).eval()


class _Decoder:
    """A model with its prefilled cache, decoding chunk by chunk (greedy)."""

    def __init__(self, variant: str, context: int, window: int, horizon: int) -> None:
        import torch

        from sparsegraph.experiments.models import decoding as dec

        self.dec = dec
        self.model = _decode_model(variant, context, window)
        prompt = torch.randint(0, 256, (1, context), generator=torch.Generator().manual_seed(2))
        self.cache = dec.DecodingCache(self.model, 1, horizon, keep_all=variant == "window-keep-all")
        t0 = time.perf_counter()
        logits = dec._prefill(self.model, prompt, self.cache)
        self.prefill_s = time.perf_counter() - t0
        self.token = logits.argmax(-1)

    def chunk(self, k: int) -> float:
        t0 = time.perf_counter()
        for _ in range(k):
            self.token = self.dec._step(self.model, self.token, self.cache).argmax(-1)
        return time.perf_counter() - t0


def child_decode_memory(variant: str, context: int, window: int, tokens: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    d = _Decoder(variant, context, window, context + tokens + 1)
    prefill_peak = _kib("VmHWM")
    before = _kib("VmRSS")
    _reset_peak()
    d.chunk(tokens)
    print(json.dumps({"prefill_peak_kib": prefill_peak, "decode_growth_kib": _kib("VmHWM") - before,
                      "cache_bytes": d.cache.nbytes, "capacity": d.cache.capacity}))


def decode_speed(context: int, window: int, rounds: int, chunk: int, threads: int) -> list[dict[str, Any]]:
    import torch

    torch.set_num_threads(threads)
    horizon = context + rounds * chunk + 1
    decs = {}
    for v in DECODE_VARIANTS:
        _log(f"[decode] {v}: prefill {context} tokens")
        decs[v] = _Decoder(v, context, window, horizon)
    for v in DECODE_VARIANTS:
        decs[v].chunk(chunk)  # warm-up
    times: dict[str, list[float]] = {v: [] for v in DECODE_VARIANTS}
    for r in range(rounds):
        for v in DECODE_VARIANTS:
            times[v].append(decs[v].chunk(chunk))
            _log(f"[decode] round {r + 1}/{rounds} {v}: {chunk / times[v][-1]:.0f} tokens/s")
    rows = []
    for v in DECODE_VARIANTS:
        mem = _child(["_decode-memory", v, str(context), str(window), str(rounds * chunk), str(threads)],
                     MEMORY_MALLOC_ENV, 3600)
        rows.append({"variant": v, "context": context, "prefill_s": decs[v].prefill_s,
                     "tokens_per_s": [chunk / t for t in times[v]], **mem})
    return rows


def decode_table(rows: list[dict[str, Any]], window: int) -> str:
    names = {"window-rolling": f"sink_window {window}, rolling cache",
             "window-keep-all": f"sink_window {window}, cache keeps every key",
             "full": "full causal, full cache"}
    full = next(r for r in rows if r["variant"] == "full")
    out = ["| model and cache | cache slots per layer | cache (MiB) | decode tokens/s, median (min-max) | vs full "
           "| RSS growth while decoding (MiB) | peak RSS up to the end of the prefill (MiB) | prefill (s) |",
           "| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"]
    for r in rows:
        ratio = "1.00x" if r is full else verdict(r["tokens_per_s"], full["tokens_per_s"])
        out.append(f"| {names[r['variant']]} | {r['capacity'][0]} | {r['cache_bytes'] / 2**20:.2f} | "
                   f"{spread(r['tokens_per_s'])} | {ratio} | {r['decode_growth_kib'] / 1024:.0f} | "
                   f"{r['prefill_peak_kib'] / 1024:.0f} | {r['prefill_s']:.1f} |")
    return "\n".join(out)


# ---------------------------------------------------------------------- main
def _reexec_with_tuned_malloc(argv: Sequence[str]) -> None:
    if all(os.environ.get(k) for k in TUNED_MALLOC_ENV):
        return
    env = {**os.environ, **TUNED_MALLOC_ENV}
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", MODULE, *argv], env)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_train-memory":
        child_train_memory(argv[1], int(argv[2]), int(argv[3]), int(argv[4]))
        return 0
    if argv and argv[0] == "_decode-memory":
        child_decode_memory(argv[1], int(argv[2]), int(argv[3]), int(argv[4]), int(argv[5]))
        return 0
    ap = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("train", "decode", "all"))
    ap.add_argument("--lengths", default="1024,4096,16384")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--window", type=int, default=256, help="the window pattern's window (default 256)")
    ap.add_argument("--context", type=int, default=16384)
    ap.add_argument("--chunk", type=int, default=64, help="decoded tokens per variant per round")
    ap.add_argument("--decode-rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="write the raw measurements here")
    ap.add_argument("--keep-malloc-env", action="store_true", help="do not re-execute with tuned malloc settings")
    args = ap.parse_args(argv)
    if not args.keep_malloc_env:
        _reexec_with_tuned_malloc(argv)
    start = time.time()
    print(f"commit {git_commit()}; `python -m {MODULE} {' '.join(argv)}`")
    import torch

    torch.set_num_threads(args.threads)
    print(f"environment: {environment()}")
    out: dict[str, Any] = {}
    if args.what in ("train", "all"):
        rows = train_speed([int(x) for x in args.lengths.split(",")], args.rounds, args.window, args.threads)
        out["train"] = rows
        print(f"\nTraining step, batch 1 ({args.rounds} interleaved rounds after a warm-up step):\n")
        print(train_table(rows, args.window))
    if args.what in ("decode", "all"):
        rows = decode_speed(args.context, args.window, args.decode_rounds, args.chunk, args.threads)
        out["decode"] = rows
        print(f"\nDecoding after a {args.context}-token prompt ({args.decode_rounds} interleaved rounds of "
              f"{args.chunk} tokens, greedy):\n")
        print(decode_table(rows, args.window))
    print(f"\nload average at the end: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}; took {time.time() - start:.0f} s")
    if args.json:
        from sparsegraph.experiments.infra.atomic import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(out, indent=1).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
