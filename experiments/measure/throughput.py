"""Training throughput and the longest trainable sequence in a memory budget: full vs sparse.

Two measurements of a 4-layer, 256-wide encoder (4 heads of 64, MLP 1024, byte vocabulary,
mean pooling, two-class head, dropout 0.1, AdamW), batch 1, one training step = forward +
backward + optimizer step:

``speed``
    For each length ``n`` (default 1K, 4K, 16K) and pattern (full attention, BigBird, Longformer):
    tokens/s = ``n / median(step time)`` over ``--rounds`` steps after one warm-up step, with the
    patterns *interleaved* in one process (round r runs every pattern once), so load from other
    processes on the machine hits them alike. Peak memory = the peak resident set size (VmHWM) of
    a fresh process that builds the model and runs one step (``trial``). A pattern whose trial
    exceeds the memory budget is reported as over budget and not timed.

``maxlen``
    The longest ``n`` (a multiple of the block size) on which the model trains within
    ``--budget-gib`` (default 16 GiB), with and without per-layer gradient checkpointing, full
    attention against BigBird (Zaheer et al. 2020 claim 8x longer sequences on the same hardware).
    Each trial runs in its own process: build the model and its layouts, run one step. The step
    runs under an address-space cap equal to the budget's headroom (an allocation that would
    take the RSS past the budget fails in the child: "over budget"), the parent also polls the
    child's RSS every 20 ms and kills it over the budget, and a trial that finishes reports its
    peak RSS (VmHWM, so short spikes between polls count too; over the budget is over budget).
    The search brackets the limit: it starts at ``--start`` and doubles until a fit of the peaks
    measured so far (``peak = a + b n + c n^2``, least squares, ``c >= 0``) predicts the budget;
    then it tries the predicted limit (clamped into the bracket, at most 4x the largest success)
    and tightens the bracket until it is within ``--resolution`` (relative) or one block. With
    ``--max-n`` reached and still under budget, it reports ">= max-n" and the fit's prediction,
    labelled as an extrapolation. The table ends with the ratios of each sparse variant's longest
    ``n`` to each full-attention baseline searched (``full-eager``, the BERT baseline of the 8x
    claim, and ``full``), with checkpointing off and on, and each variant's gain from
    checkpointing; a ratio whose search stopped early (cap, timeout) is marked as a bound.

Memory is resident memory of the whole process (the model, the optimizer, the layouts, Python,
torch), measured from ``/proc``; CPU only (Linux). Allocator: glibc malloc with its defaults (large
tensors are mmapped and returned to the OS when freed) and PyTorch's CPU allocator (no caching);
the script prints the thread count and any ``MALLOC_*`` variables set. Progress goes to stderr,
tables to stdout (and ``--json`` writes every trial).

Run::

    python -m sparsegraph.experiments.measure.throughput speed  [--lengths 1024,4096,16384] [--rounds 3]
    python -m sparsegraph.experiments.measure.throughput maxlen [--budget-gib 16] [--max-n 262144]
    python -m sparsegraph.experiments.measure.throughput all
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from sparsegraph.kernels.measure import Timing, reset_peak, status_kib

GIB = 1024**3
BLOCK = 64

#: The compared variants: name -> (pattern spec, kernels.attention backend).
VARIANTS: dict[str, tuple[str, str]] = {
    # full attention as the framework runs it by default: ``auto`` picks the dense SDPA path; a
    # complete layout needs no mask, and PyTorch's CPU SDPA is a flash-style kernel (memory-linear,
    # quadratic time)
    "full": ("full", "auto"),
    # full attention on the memory-linear block-sparse ``torch`` backend (every block listed):
    # FlashAttention-style recomputation, nothing quadratic saved; quadratic time
    "full-torch": ("full", "torch"),
    # full attention as BERT implements it: the n x n probabilities materialised and saved for
    # the backward pass (the baseline of BigBird's "8x longer sequences")
    "full-eager": ("full", "eager"),
    # BigBird-ITC base setting: 3 window blocks, 3 random blocks, 2 global blocks of 64
    "bigbird": (f"bigbird:block={BLOCK},window=3,random=3,global=2", "auto"),
    # Longformer: a 512-token window (256 each side) and a global first token
    "longformer": ("longformer:window=512,global_indices=[0]", "auto"),
}

MODEL = dict(vocab_size=256, d_model=256, n_layers=4, n_heads=4, d_ff=1024, dropout=0.1,
             pooling="mean", position="learned")


# ---------------------------------------------------------------------- the child side
def _proc_kib(pid: int | str, key: str) -> int:
    """A ``/proc/<pid>/status`` field in KiB (VmRSS, VmHWM), 0 when the process is gone."""
    return status_kib(key, pid) or 0


def _volunteer_for_oom_killer() -> None:
    """Make this (measured) process the first the kernel's OOM killer picks: on a shared machine
    a trial near the budget must not cost another user's process its life."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def _emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)


def _build(variant: str, n: int, checkpoint: bool, seed: int = 0):
    import torch

    from sparsegraph.experiments.models import AttentionConfig, ModelConfig, SequenceClassifier

    spec, backend = VARIANTS[variant]
    cfg = ModelConfig(max_len=n, gradient_checkpointing=checkpoint,
                      attention=AttentionConfig(pattern=spec, block_size=BLOCK,
                                                backend="auto" if backend == "eager" else backend),
                      **MODEL)
    torch.manual_seed(seed)
    model = SequenceClassifier(cfg, num_classes=2)
    if backend == "eager":
        from sparsegraph.experiments.measure.eager_attention import EagerFullAttention

        for layer in model.encoder.layers:
            layer.attn = EagerFullAttention(layer.attn)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(1, MODEL["vocab_size"], (1, n), generator=gen)
    y = torch.tensor([1])
    return model, opt, x, y


def _step(model, opt, x, y) -> float:
    import torch.nn.functional as F

    t = time.perf_counter()
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - t


def _backend_of(model, n: int) -> str:
    import torch

    from sparsegraph import kernels

    from sparsegraph.experiments.measure.eager_attention import EagerFullAttention

    if isinstance(model.encoder.layers[0].attn, EagerFullAttention):
        return "eager"
    if model.config.attention.backend != "auto":
        return model.config.attention.backend
    layout = model.encoder.layers[0].attn.cache.layout(model.encoder.padded_length(n))
    q = torch.empty(1, MODEL["n_heads"], layout.n_q, MODEL["d_model"] // MODEL["n_heads"])
    return kernels.choose_backend(q, layout)


def _limit_address_space(budget: int) -> int:
    """Cap this process's address space so that the step cannot grow its RSS past ``budget``.

    The cap is the current virtual size plus the budget's remaining headroom over the current
    RSS (``VmSize + budget - VmRSS``): libraries and reservations that are mapped but not resident
    are already counted in VmSize, and every byte a tensor adds is both virtual and resident. An
    allocation that would cross the budget then fails in this process (torch raises) instead of
    pushing a shared machine into its OOM killer, which the parent's RSS polling cannot prevent
    when a single n x n tensor arrives at once. Slightly conservative (untouched reservations).
    """
    import resource

    limit = _proc_kib("self", "VmSize") * 1024 + budget - _proc_kib("self", "VmRSS") * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return limit


def _allocation_failure(e: BaseException) -> bool:
    return isinstance(e, MemoryError) or (
        isinstance(e, RuntimeError) and "allocate" in str(e).lower())


#: Exit status of a trial whose allocation failed at the address-space cap (over budget).
EXIT_OVER_BUDGET = 3


def child_trial(pattern: str, n: int, checkpoint: bool, steps: int, budget: int | None) -> int:
    """Build, compile the layouts, run ``steps`` training steps; JSON lines on stdout.

    Returns the exit status: 0, or ``EXIT_OVER_BUDGET`` when the step's memory hit the budget."""
    _volunteer_for_oom_killer()
    t = time.perf_counter()
    model, opt, x, y = _build(pattern, n, checkpoint)
    model.encoder.graphs(n)  # every layer's layout, built and compiled once
    build_s = time.perf_counter() - t
    build_peak = _proc_kib("self", "VmHWM") * 1024
    _emit({"phase": "built", "build_s": build_s, "backend": _backend_of(model, n)})
    reset_peak()
    before = _proc_kib("self", "VmRSS") * 1024
    if budget is not None:
        if build_peak > budget or before > budget:
            _emit({"phase": "over budget", "message": "building the model exceeded the budget"})
            return EXIT_OVER_BUDGET
        _limit_address_space(budget)
    try:
        times = [_step(model, opt, x, y) for _ in range(steps)]
    except (MemoryError, RuntimeError) as e:
        if not _allocation_failure(e):
            raise
        _emit({"phase": "over budget", "message": str(e).splitlines()[0][:300],
               "step_peak": _proc_kib("self", "VmHWM") * 1024})
        return EXIT_OVER_BUDGET
    _emit({"phase": "done", "build_s": build_s, "build_peak": build_peak, "rss_before_step": before,
           "step_peak": _proc_kib("self", "VmHWM") * 1024, "step_s": times})
    return 0


def child_timing(patterns: Sequence[str], n: int, rounds: int) -> None:
    """All ``patterns`` in one process: a warm-up step each, then ``rounds`` interleaved rounds."""
    _volunteer_for_oom_killer()
    runs = {}
    for p in patterns:
        model, opt, x, y = _build(p, n, False)
        model.encoder.graphs(n)
        runs[p] = (model, opt, x, y)
        _emit({"phase": "warmup", "pattern": p, "step_s": _step(*runs[p]), "backend": _backend_of(model, n)})
    for r in range(rounds):
        for p in patterns:
            _emit({"phase": "round", "round": r, "pattern": p, "step_s": _step(*runs[p])})


# ---------------------------------------------------------------------- the parent side
@dataclass
class Trial:
    """One child process's outcome."""

    pattern: str
    n: int
    checkpoint: bool
    status: str = "ok"  # ok | over budget | timeout | error
    peak: int = 0  # bytes: VmHWM of the whole process (ok), else the largest polled RSS
    step_peak: int = 0  # bytes: VmHWM from the start of the step (ok only)
    build_peak: int = 0
    build_s: float = 0.0
    step_s: list[float] = field(default_factory=list)
    backend: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _mem_available() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def _worst_case_bytes(n: int) -> int:
    """A generous upper bound of one training step's resident memory for this model at length n:
    1 GiB of fixed cost, 100 kB per token (measured ~80), 100 bytes per n^2 entry (materialised
    full attention, measured ~96 over the 4 layers)."""
    return GIB + 100_000 * n + 100 * n * n


def _wait_for_memory(need: int, patience_s: float) -> bool:
    """Wait (up to ``patience_s``) until the machine has ``need`` + 1 GiB available, so that a
    trial does not push a shared machine into its OOM killer (which may pick someone else)."""
    deadline = time.time() + patience_s
    warned = False
    while _mem_available() < need + GIB:
        if time.time() > deadline:
            return False
        if not warned:
            _log(f"waiting: {_mem_available() / GIB:.1f} GiB available, need {need / GIB + 1:.1f}")
            warned = True
        time.sleep(10)
    return True


def _run_child(args: list[str], budget: int, timeout: float, threads: int | None,
               on_line: Callable[[dict], None] | None = None) -> tuple[str, list[dict], int, str]:
    """Run ``python -m sparsegraph.experiments.measure.throughput <args>``, kill it over ``budget`` bytes of RSS or
    after ``timeout`` s; ``on_line`` sees each JSON line as it arrives (progress). Returns
    (status, JSON lines, largest polled RSS, stderr tail)."""
    cmd = [sys.executable, "-m", "sparsegraph.experiments.measure.throughput", *args]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    lines: list[dict] = []
    err: list[str] = []

    def read_out() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            line = line.strip()
            if line.startswith("{"):
                lines.append(json.loads(line))
                if on_line is not None:
                    on_line(lines[-1])

    def read_err() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            err.append(line)
            del err[:-20]

    readers = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for r in readers:
        r.start()
    start, max_rss, status = time.time(), 0, "ok"
    while proc.poll() is None:
        rss = _proc_kib(proc.pid, "VmRSS") * 1024
        max_rss = max(max_rss, rss)
        if rss > budget:
            status = "over budget"
            proc.send_signal(signal.SIGKILL)
            break
        if time.time() - start > timeout:
            status = "timeout"
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    for r in readers:
        r.join(timeout=5)
    if status == "ok" and proc.returncode == EXIT_OVER_BUDGET:
        status = "over budget"
    elif status == "ok" and proc.returncode != 0:
        # killed by the kernel's OOM killer, or an exception
        status = "error" if proc.returncode > 0 else f"killed (signal {-proc.returncode})"
    return status, lines, max_rss, "".join(err[-5:])


def run_trial(pattern: str, n: int, checkpoint: bool, budget: int, timeout: float,
              threads: int | None = None, steps: int = 1) -> Trial:
    """One fresh-process training trial (see the module docstring)."""
    tr = Trial(pattern, n, checkpoint)
    args = ["trial", "--pattern", pattern, "--n", str(n), "--steps", str(steps),
            "--budget-bytes", str(budget)]
    if checkpoint:
        args.append("--checkpoint")
    for attempt in range(3):
        if not _wait_for_memory(min(budget, _worst_case_bytes(n)), patience_s=3600):
            tr.status, tr.message = "error", "not enough free memory on the machine for the budget"
            return tr
        status, lines, max_rss, err = _run_child(args, budget, timeout, threads)
        # SIGKILL below the budget: the kernel's OOM killer (the machine is shared), not the
        # budget; the trial says nothing about the model, so run it again
        if status != "killed (signal 9)" or attempt == 2:
            break
        _log(f"trial {pattern} n={n} killed by the system at {max_rss / GIB:.2f} GiB; retrying")
    tr.status = status
    for obj in lines:
        if obj["phase"] == "built":
            tr.build_s, tr.backend = obj["build_s"], obj["backend"]
        elif obj["phase"] == "done":
            tr.build_peak, tr.step_peak = obj["build_peak"], obj["step_peak"]
            tr.step_s = obj["step_s"]
        elif obj["phase"] == "over budget":
            tr.message = obj["message"]
            max_rss = max(max_rss, obj.get("step_peak", 0))
    tr.peak = max(tr.build_peak, tr.step_peak) if tr.ok else max_rss
    if tr.ok and tr.peak > budget:  # a spike between two polls: VmHWM saw it
        tr.status = "over budget"
    if tr.status not in ("ok", "over budget", "timeout"):
        tr.message = err.strip().splitlines()[-1] if err.strip() else status
    return tr


def _fit_limit(points: list[tuple[int, int]], budget: int) -> float | None:
    """``n`` where ``peak = a + b n + c n^2`` (least squares over ``points``, ``c >= 0``) reaches
    ``budget``; linear with two points; ``None`` when it cannot say."""
    import numpy as np

    if len(points) < 2:
        return None
    n = np.array([p[0] for p in points], float)
    m = np.array([p[1] for p in points], float)
    scale = n.max()
    x = n / scale
    coef = None
    if len(points) >= 3:
        a, b, c = np.linalg.lstsq(np.stack([np.ones_like(x), x, x * x], 1), m, rcond=None)[0]
        if c >= 0:
            coef = (a, b, c)
    if coef is None:
        # the two largest points, linear
        order = np.argsort(n)[-2:]
        b = (m[order[1]] - m[order[0]]) / (x[order[1]] - x[order[0]])
        coef = (m[order[1]] - b * x[order[1]], b, 0.0)
    a, b, c = coef
    if budget <= a:
        return None
    # c r^2 + b r - (budget - a) = 0, positive root in the cancellation-free form (c may be ~0)
    disc = b * b + 4 * c * (budget - a)
    if disc < 0 or b + math.sqrt(disc) <= 0:
        return None
    root = 2 * (budget - a) / (b + math.sqrt(disc))
    return root * scale


@dataclass
class Search:
    """The outcome of one max-length search."""

    pattern: str
    checkpoint: bool
    longest_ok: int = 0
    shortest_over: int | None = None
    capped: bool = False
    extrapolated: float | None = None
    trials: list[Trial] = field(default_factory=list)

    def at_longest(self) -> Trial | None:
        ok = [t for t in self.trials if t.ok and t.n == self.longest_ok]
        return ok[0] if ok else None


def search_max_len(pattern: str, checkpoint: bool, budget: int, *, start: int, max_n: int,
                   resolution: float, run: Callable[[int], Trial]) -> Search:
    """Bracket the longest trainable ``n`` (see the module docstring); ``run(n)`` runs a trial."""
    s = Search(pattern, checkpoint)
    n = start
    points: list[tuple[int, int]] = []
    while True:
        tr = run(n)
        s.trials.append(tr)
        step = f"{statistics.median(tr.step_s):.1f} s" if tr.step_s else "-"
        _log(f"maxlen {pattern} ckpt={'on' if checkpoint else 'off'} n={n}: {tr.status}, "
             f"peak {tr.peak / GIB:.2f} GiB, step {step}{' ' + tr.message if tr.message else ''}")
        if tr.ok:
            s.longest_ok = max(s.longest_ok, n)
            points.append((n, tr.peak))
        elif tr.status == "over budget":
            s.shortest_over = n if s.shortest_over is None else min(s.shortest_over, n)
        else:
            # a timeout or a crash says nothing about memory: stop, and say so in the table
            s.shortest_over = n if s.shortest_over is None else min(s.shortest_over, n)
            break
        lo, hi = s.longest_ok, s.shortest_over
        if hi is not None and (hi - lo <= max(BLOCK, resolution * lo)):
            break
        if hi is None and lo >= max_n:
            s.capped = True
            s.extrapolated = _fit_limit(points, budget)
            break
        guess = _fit_limit(points, budget)
        if lo == 0:  # not even the start fits: halve
            nxt = n // 2
            if nxt < BLOCK:
                break
        elif hi is None:
            # aim just below the predicted limit, but grow by 1.25x to 4x per trial
            nxt = 2 * lo if guess is None else min(max(0.98 * guess, 1.25 * lo), 4 * lo)
        else:
            # safeguarded interpolation: the prediction kept in the middle half of the bracket;
            # bisection when the fit disagrees with the bracket (noisy peaks)
            mid = (lo + hi) / 2
            if guess is None or not lo < guess < hi:
                nxt = mid
            else:
                nxt = min(max(guess, lo + (hi - lo) / 4), hi - (hi - lo) / 4)
        if hi is None:
            nxt = min(nxt, max_n)
        nxt = int(nxt) // BLOCK * BLOCK
        if nxt <= lo or (hi is not None and nxt >= hi):
            nxt = (lo + hi) // 2 // BLOCK * BLOCK if hi is not None else lo + BLOCK
        if nxt <= lo or (hi is not None and nxt >= hi):
            break
        n = nxt
    return s


# ---------------------------------------------------------------------- tables
def _gib(b: int) -> str:
    return f"{b / GIB:.2f}"


def _environment() -> str:
    import torch

    mall = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    load = os.getloadavg()
    return (f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
            f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}, allocator: glibc malloc "
            f"defaults{' + ' + str(mall) if mall else ''}, PyTorch CPU allocator (no caching)")


def speed(lengths: Sequence[int], rounds: int, budget: int, timeout: float,
          names: Sequence[str], threads: int | None = None) -> list[dict]:
    rows = []
    for n in lengths:
        fits, mem = [], {}
        for p in names:
            tr = run_trial(p, n, False, budget, timeout, threads)
            mem[p] = tr
            _log(f"speed n={n} {p}: memory trial {tr.status}, peak {tr.peak / GIB:.2f} GiB, "
                 f"backend {tr.backend or '?'}{' ' + tr.message if tr.message else ''}")
            if tr.ok:
                fits.append(p)
        times: dict[str, list[float]] = {p: [] for p in fits}
        backend: dict[str, str] = {}
        if fits:
            _wait_for_memory(min(budget, sum(mem[p].peak for p in fits)), patience_s=3600)
            args = ["timing", "--patterns", ",".join(fits), "--n", str(n), "--rounds", str(rounds)]

            def progress(obj: dict) -> None:
                if obj["phase"] == "warmup":
                    _log(f"speed n={n} {obj['pattern']}: warm-up {obj['step_s']:.1f} s")
                elif obj["phase"] == "round":
                    _log(f"speed n={n} {obj['pattern']}: round {obj['round'] + 1}/{rounds} "
                         f"{obj['step_s']:.1f} s")

            status, lines, _, err = _run_child(args, budget, timeout * (rounds + 1) * len(fits),
                                               threads, progress)
            for obj in lines:
                if obj["phase"] == "warmup":
                    backend[obj["pattern"]] = obj["backend"]
                elif obj["phase"] == "round":
                    times[obj["pattern"]].append(obj["step_s"])
            if status != "ok":
                _log(f"speed n={n}: timing process {status} {err.strip()[-200:]}")
        for p in names:
            tr = mem[p]
            row = {"n": n, "pattern": p, "spec": VARIANTS[p][0], "memory_status": tr.status,
                   "peak": tr.peak, "backend": backend.get(p, tr.backend), "step_s": times.get(p, [])}
            if row["step_s"]:
                timing = Timing(tuple(row["step_s"]))
                row["median_s"] = timing.median
                row["spread"] = timing.spread
                row["reliable"] = timing.reliable
                row["tokens_per_s"] = n / row["median_s"]
            rows.append(row)
    return rows


def speed_table(rows: list[dict], budget: int, rounds: int) -> str:
    out = [f"Training throughput, batch 1, median of {rounds} interleaved steps after a warm-up "
           f"(memory budget {budget / GIB:g} GiB); the step's fastest-slowest range beside it, and "
           "'unreliable' where the interquartile range exceeds a quarter of the median", "",
           "| n | pattern | backend | step (s), median (range) | tokens/s | vs full | peak RSS (GiB) |",
           "| ---: | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        full = next((x for x in rows if x["n"] == r["n"] and x["pattern"] == "full"), None)
        if "tokens_per_s" in r:
            ratio = (f"{r['tokens_per_s'] / full['tokens_per_s']:.2f}x"
                     if full is not None and "tokens_per_s" in full else "-")
            step = (f"{r['median_s']:.2f} ({min(r['step_s']):.2f}-{max(r['step_s']):.2f})"
                    + ("" if r.get("reliable", True) else " unreliable"))
            out.append(f"| {r['n']} | {r['pattern']} | {r['backend']} | {step} | "
                       f"{r['tokens_per_s']:.0f} | {ratio} | {_gib(r['peak'])} |")
        elif r["memory_status"] == "over budget":
            out.append(f"| {r['n']} | {r['pattern']} | {r['backend'] or '-'} | over budget | - | - | "
                       f"killed at > {_gib(r['peak'])} |")
        else:
            out.append(f"| {r['n']} | {r['pattern']} | {r['backend'] or '-'} | {r['memory_status']} "
                       f"| - | - | - |")
    return "\n".join(out)


def maxlen_table(searches: list[Search], budget: int) -> str:
    out = [f"Longest trainable sequence (batch 1, forward + backward + AdamW step) within "
           f"{budget / GIB:g} GiB of resident memory", "",
           "| pattern | checkpointing | longest n that trains | shortest n over budget | "
           "peak RSS at longest (GiB) | step time at longest (s) | trials |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for s in searches:
        t = s.at_longest()
        over = ("-" if s.shortest_over is None else str(s.shortest_over))
        longest = f">= {s.longest_ok} (cap)" if s.capped else str(s.longest_ok)
        if s.capped and s.extrapolated:
            longest += f"; extrapolated ~{s.extrapolated:.0f}"
        bad = [x for x in s.trials if x.status not in ("ok", "over budget")]
        if bad:
            over += f" ({bad[-1].status})"
        out.append(f"| {s.pattern} | {'on' if s.checkpoint else 'off'} | {longest} | {over} | "
                   f"{_gib(t.peak) if t else '-'} | "
                   f"{statistics.median(t.step_s) if t and t.step_s else float('nan'):.1f} | "
                   f"{len(s.trials)} |")
    out.append("")
    out.extend(maxlen_ratios(searches))
    return "\n".join(out)


#: Full-attention baselines of the max-length ratios, in the order they are reported:
#: ``full-eager`` (BERT's materialised probabilities: the baseline of BigBird's 8x claim) and
#: ``full`` (the framework's default, dense SDPA).
BASELINES = ("full-eager", "full")


def _bound(s: Search) -> str:
    """Why a search's ``longest_ok`` is not its memory limit, if it is not."""
    if s.capped:
        return "capped at --max-n"
    bad = [t.status for t in s.trials if t.status not in ("ok", "over budget")]
    return f"stopped by a {bad[-1]}" if bad else ""


def maxlen_ratios(searches: list[Search]) -> list[str]:
    """The ratio lines of ``maxlen_table``: with checkpointing off and on, each sparse variant's
    longest ``n`` against each full-attention baseline searched (``BASELINES``), then each
    variant's gain from checkpointing. A ratio is marked a lower bound when the sparse variant's
    search stopped below its limit (cap, timeout) and an upper bound when the baseline's did; when
    both stopped early the quotient bounds nothing and no ratio is printed."""
    out = []
    for ck in (False, True):
        pair = {s.pattern: s for s in searches if s.checkpoint == ck}
        for base in BASELINES:
            b = pair.get(base)
            if b is None or not b.longest_ok:
                continue
            for p, s in pair.items():
                if VARIANTS.get(p, ("",))[0] == "full" or not s.longest_ok:
                    continue
                head = f"- checkpointing {'on' if ck else 'off'}: {p} / {base} = {s.longest_ok} / {b.longest_ok}"
                if _bound(s) and _bound(b):
                    # Each side may be higher: the quotient bounds the true ratio in neither direction.
                    out.append(f"{head}: no ratio (neither search reached its limit: {p} "
                               f"{_bound(s)}, {base} {_bound(b)})")
                    continue
                notes = []
                if _bound(s):
                    notes.append(f"lower bound: {p} {_bound(s)}")
                if _bound(b):
                    notes.append(f"upper bound: {base} {_bound(b)}")
                note = f" ({'; '.join(notes)})" if notes else ""
                out.append(f"{head} = {s.longest_ok / b.longest_ok:.1f}x{note}")
    for p in dict.fromkeys(s.pattern for s in searches):
        off = next((s for s in searches if s.pattern == p and not s.checkpoint), None)
        on = next((s for s in searches if s.pattern == p and s.checkpoint), None)
        if off is not None and on is not None and off.longest_ok and on.longest_ok:
            head = f"- {p}: checkpointing on / off = {on.longest_ok} / {off.longest_ok}"
            if _bound(on) and _bound(off):
                out.append(f"{head}: no ratio (neither search reached its limit: on {_bound(on)}, "
                           f"off {_bound(off)})")
                continue
            notes = [f"{'lower' if x.checkpoint else 'upper'} bound: "
                     f"{'on' if x.checkpoint else 'off'} {_bound(x)}" for x in (on, off) if _bound(x)]
            note = f" ({'; '.join(notes)})" if notes else ""
            out.append(f"{head} = {on.longest_ok / off.longest_ok:.1f}x{note}")
    return out


# ---------------------------------------------------------------------- CLI
def _ints(text: str) -> list[int]:
    try:
        vals = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None
    if not vals or any(v < BLOCK or v % BLOCK for v in vals):
        raise argparse.ArgumentTypeError(f"lengths must be positive multiples of {BLOCK}, got {text!r}")
    return vals


def _names(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in names if t not in VARIANTS]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"variants must be among {sorted(VARIANTS)}, got {text!r}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sparsegraph.experiments.measure.throughput", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("speed", "maxlen", "all"):
        p = sub.add_parser(name)
        p.add_argument("--budget-gib", type=float, default=16.0, help="memory budget (GiB)")
        p.add_argument("--timeout", type=float, default=7200.0, help="seconds per trial")
        p.add_argument("--json", default=None, help="write every trial to this JSON file")
        p.add_argument("--threads", type=int, default=None,
                       help="torch threads in the measured processes (default: torch's default)")
        if name in ("speed", "all"):
            p.add_argument("--lengths", type=_ints, default=[1024, 4096, 16384])
            p.add_argument("--rounds", type=int, default=3)
            p.add_argument("--patterns", type=_names, default=list(VARIANTS))
        if name in ("maxlen", "all"):
            p.add_argument("--maxlen-patterns", type=_names, default=["full-eager", "bigbird"],
                           help="variants to search (full, dense SDPA, is memory-linear on CPU: its limit "
                                "is time, a search takes hours)")
            p.add_argument("--start", type=int, default=4096)
            p.add_argument("--max-n", type=int, default=262144)
            p.add_argument("--resolution", type=float, default=0.05)
    t = sub.add_parser("trial", help="(internal) one training trial in this process")
    t.add_argument("--pattern", required=True)
    t.add_argument("--n", type=int, required=True)
    t.add_argument("--steps", type=int, default=1)
    t.add_argument("--checkpoint", action="store_true")
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--budget-bytes", type=int, default=None,
                   help="cap the step's address space at this RSS budget")
    tm = sub.add_parser("timing", help="(internal) interleaved timing rounds in this process")
    tm.add_argument("--patterns", type=_names, required=True)
    tm.add_argument("--n", type=int, required=True)
    tm.add_argument("--rounds", type=int, default=3)
    tm.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            ap.error(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)

    if args.cmd == "trial":
        return child_trial(args.pattern, args.n, args.checkpoint, args.steps, args.budget_bytes)
    if args.cmd == "timing":
        child_timing(args.patterns, args.n, args.rounds)
        return 0
    if not sys.platform.startswith("linux"):
        print("this script measures memory through /proc: Linux only", file=sys.stderr)
        return 2
    if args.budget_gib <= 0:
        ap.error(f"--budget-gib must be > 0, got {args.budget_gib}")
    budget = int(args.budget_gib * GIB)
    record: dict[str, Any] = {"environment": _environment(), "model": MODEL, "variants": VARIANTS,
                              "budget_bytes": budget}
    print(f"environment: {record['environment']}\n")
    if args.cmd in ("speed", "all"):
        rows = speed(args.lengths, args.rounds, budget, args.timeout, args.patterns, args.threads)
        record["speed"] = rows
        print(speed_table(rows, budget, args.rounds) + "\n", flush=True)
    if args.cmd in ("maxlen", "all"):
        searches = []
        for ck in (False, True):
            for p in args.maxlen_patterns:
                def run(n: int, p: str = p, ck: bool = ck) -> Trial:
                    return run_trial(p, n, ck, budget, args.timeout, args.threads)

                searches.append(search_max_len(p, ck, budget, start=args.start, max_n=args.max_n,
                                               resolution=args.resolution, run=run))
        record["maxlen"] = [{**{k: v for k, v in asdict(s).items() if k != "trials"},
                             "trials": [asdict(t) for t in s.trials]} for s in searches]
        print(maxlen_table(searches, budget) + "\n", flush=True)
    record["environment_end"] = _environment()
    print(f"environment at the end: {record['environment_end']}")
    if args.json:
        from sparsegraph.experiments.infra.atomic import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(record, indent=1).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
