"""Time a Llama-style Hugging Face model's forward+backward at 4K tokens: sparsegraph vs sdpa.

    MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=68719476736 \\
        .venv/bin/python -m sparsegraph.experiments.measure.hf_speed          # the docs' table

One randomly initialised ``MistralForCausalLM`` (Llama's architecture plus
``config.sliding_window``), the same weights in three attention set-ups:

* ``sdpa causal``: transformers' sdpa, full causal attention (what the model does without a window);
* ``sdpa window``: transformers' sdpa with ``config.sliding_window = W`` (a dense ``n x n`` mask);
* ``sparsegraph window``: ``sparsegraph.hf.apply(model, "layer_types")`` = the same causal window
  ``sliding_window:window=W,causal=true`` through ``kernels.attention`` (backend ``auto``).

Each timed step is ``loss = model(ids, labels=ids).loss; loss.backward()``. The implementations are
interleaved within every round (the order rotates each round) after warm-up rounds, so load
changes on a shared machine hit all of them alike; the table gives the median seconds and the
min-max over the rounds, then the per-round (paired) ratios of ``sdpa window`` and ``sdpa causal``
to ``sparsegraph window``; a difference is claimed only when every paired ratio lies on the same
side of 1, otherwise the output says that the spread is larger than the effect. The allocator
settings (glibc ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``: without them large blocks
are page-faulted in again on every allocation) and the thread count are printed with the table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["main"]


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m sparsegraph.experiments.measure.hf_speed", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4096, help="tokens per sequence (default 4096)")
    ap.add_argument("--window", type=int, default=256, help="sliding window W (default 256)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2, help="key/value heads (grouped-query attention)")
    ap.add_argument("--vocab", type=int, default=1000)
    ap.add_argument("--block", type=int, default=64, help="sparsegraph layout block size")
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's own)")
    ap.add_argument("--seed", type=int, default=0)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("n", "window", "batch", "layers", "hidden", "heads", "kv_heads", "vocab", "rounds"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    import sparsegraph.hf as sghf

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    def config(window: int | None) -> MistralConfig:
        return MistralConfig(vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=2 * args.hidden,
                             num_hidden_layers=args.layers, num_attention_heads=args.heads,
                             num_key_value_heads=args.kv_heads, max_position_embeddings=args.n,
                             sliding_window=window, attention_dropout=0.0, attn_implementation="sdpa")

    base = MistralForCausalLM(config(None)).train()
    models = {"sdpa causal": base}
    win = MistralForCausalLM(config(args.window)).train()
    win.load_state_dict(base.state_dict())
    models["sdpa window"] = win
    sg = MistralForCausalLM(config(args.window)).train()
    sg.load_state_dict(base.state_dict())
    sghf.apply(sg, "layer_types", block_size=args.block)
    models["sparsegraph window"] = sg
    g = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(0, args.vocab, (args.batch, args.n), generator=g)

    def step(model: torch.nn.Module) -> float:
        t = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        dt = time.perf_counter() - t
        model.zero_grad(set_to_none=True)
        return dt

    names = list(models)
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(args.warmup + args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            dt = step(models[name])
            if r >= args.warmup:
                times[name].append(dt)
        print(f"round {r + 1}/{args.warmup + args.rounds}" + (" (warm-up)" if r < args.warmup else ""),
              file=sys.stderr, flush=True)

    env = {k: os.environ.get(k, "unset") for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    print(f"# MistralForCausalLM (Llama architecture): {args.layers} layers, hidden {args.hidden}, heads {args.heads} "
          f"(kv {args.kv_heads}), head dim {args.hidden // args.heads}, batch {args.batch} x {args.n} tokens, window "
          f"{args.window}; forward+backward")
    print(f"# commit {_commit()}, torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}, "
          f"MALLOC_MMAP_THRESHOLD_={env['MALLOC_MMAP_THRESHOLD_']} MALLOC_TRIM_THRESHOLD_={env['MALLOC_TRIM_THRESHOLD_']}, "
          f"{args.warmup} warm-up + {args.rounds} interleaved rounds")
    ref = statistics.median(times["sdpa causal"])
    print("| implementation | median s | min - max s | vs sdpa causal |")
    print("|---|---|---|---|")
    for name in names:
        t = times[name]
        print(f"| {name} | {statistics.median(t):.3f} | {min(t):.3f} - {max(t):.3f} | {statistics.median(t) / ref:.2f} |")
    ours = times["sparsegraph window"]
    for name in ("sdpa window", "sdpa causal"):
        ratios = [a / b for a, b in zip(times[name], ours)]
        med, lo, hi = statistics.median(ratios), min(ratios), max(ratios)
        line = f"# paired per-round ratio {name} / sparsegraph window: median {med:.2f}, min {lo:.2f}, max {hi:.2f}"
        if lo > 1:
            line += ": sparsegraph window was faster in every round"
        elif hi < 1:
            line += f": {name} was faster in every round"
        else:
            line += ": the rounds disagree; the spread is larger than the effect, no difference is claimed"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
