"""Longformer's window ablation (Beltagy et al. 2020, Table 4) at small scale, on the offline corpus.

Seven variants of the ``cpu`` charlm recipe (:data:`experiments.text.charlm_config.CHARLM_RECIPES`:
4 layers, width 64, 4 heads, 256-byte windows of the stdlib prose corpus), trained with the same
budget and seeds:

- windows **decreasing** with depth (``window_schedule:window=HI,last=LO``), **fixed** at the mean
  of the schedule (the same total keys per token), and **increasing** (``window=LO,last=HI``);
- each without and with **dilation 2 on two heads** of the upper half of the layers
  (``dilation=[1,1,2,2],dilate_from=2``; Longformer dilates 2 heads of its upper layers);
- **full causal** attention (SDPA ``is_causal``) as the reference.

Every run is one process-local :class:`Trainer` (one thread by default) in a run directory under
``--out``; the table gives the validation ("dev") and test bits per byte, mean ± standard
deviation over the seeds, of the final weights (validation: the first ``eval_windows`` windows of
the recipe), the unigram baseline, training tokens/s (median, min-max) and seconds per run.
A difference from the fixed window whose size is within the seeds' min-max spread is marked
"not a result".

    python -m sparsegraph.experiments.measure.charlm_ablation [--steps 300] [--seeds 0,1] [--threads 1]

How it differs from the paper: 4 layers of width 64 (the paper: 12 layers of 512), 256-byte
windows (the paper: up to 23K), windows 8 to 128 (the paper: 32 to 512), a few hundred updates on
2 MB of Python docstrings and comments (the paper: text8 / enwik8, 100M bytes, days on GPUs), no
staged training, dilation fixed at 2 (the paper increases it with depth); the paper reports one
run per variant.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from sparsegraph.experiments.measure.lm_speed import environment, git_commit, spread

__all__ = ["VARIANTS", "variants", "run_ablation", "ablation_table", "main"]

MODULE = "sparsegraph.experiments.measure.charlm_ablation"


def variants(lo: int, hi: int, layers: int, heads: int) -> dict[str, str]:
    """Variant name -> pattern spec, for windows between ``lo`` and ``hi`` over ``layers``."""
    from sparsegraph.patterns.causal import schedule_windows

    mean = round(sum(schedule_windows(lo, hi, layers)) / layers)
    dil = [1] * (heads - 2) + [2, 2]
    dilated = f",dilation=[{','.join(map(str, dil))}],dilate_from={layers // 2}"
    out = {}
    for name, (a, b) in (("decreasing", (hi, lo)), ("fixed", (mean, mean)), ("increasing", (lo, hi))):
        base = f"window_schedule:window={a},last={b},layers={layers}"
        out[f"{name} w"] = base
        out[f"{name} w, dilation on 2 heads"] = base + dilated
    out["full causal"] = "causal"
    return out


#: The default variants (windows 8..128 over the cpu recipe's 4 layers and 4 heads).
VARIANTS = variants(8, 128, 4, 4)


def _raw(steps: int, seed: int, pattern: str, overrides: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "run": {"name": "x", "seed": seed},
        "data": {"task": "charlm", "preset": "cpu"},
        "model": {"attention": {"pattern": pattern}},
        "train": {"steps": steps, "progress": "off", "plots": False},
    }
    for key, value in overrides.items():
        node = raw
        *path, last = key.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    return raw


def run_ablation(out: Path, *, steps: int, seeds: Sequence[int], threads: int,
                 names: Sequence[str] | None = None, overrides: dict[str, Any] | None = None,
                 specs: dict[str, str] | None = None, windows: tuple[int, int] = (8, 128)) -> dict[str, Any]:
    """Train every variant with every seed; returns (and writes ``out/summary.json``) the results.
    The variants' specs default to :func:`variants` over ``windows`` for the model's layers and heads."""
    import torch

    from sparsegraph.experiments.text.charlm import load_corpus, unigram_bits
    from sparsegraph.experiments.text.charlm_train import build_run, resolve_charlm_config
    from sparsegraph.experiments.train import Trainer
    from sparsegraph.experiments.train.metrics import read_metrics

    torch.set_num_threads(threads)
    overrides = dict(overrides or {})
    first = resolve_charlm_config(_raw(steps, 0, "causal", overrides))
    specs = dict(specs or variants(windows[0], windows[1], first.model.n_layers, first.model.n_heads))
    names = list(names or specs)
    t0 = time.perf_counter()
    corpus = load_corpus(first.data)
    print(f"[ablation] corpus {corpus.summary()} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    results: dict[str, Any] = {"unigram_bits": unigram_bits(corpus.train), "corpus_sha256": corpus.sha256,
                               "steps": steps, "seeds": list(seeds), "threads": threads, "runs": {}}
    total = len(names) * len(seeds)
    k = 0
    for name in names:
        for seed in seeds:
            k += 1
            cfg = resolve_charlm_config(_raw(steps, seed, specs[name], overrides))
            data, model, objective, phases = build_run(cfg, corpus)
            run_dir = out / f"{name.replace(' ', '_').replace(',', '')}-seed{seed}"
            trainer = Trainer(model, objective, data, train=cfg.train, optim=cfg.optim, run=cfg.run, config=cfg,
                              run_dir=run_dir, phases=phases)
            t = time.perf_counter()
            res = trainer.fit()
            wall = time.perf_counter() - t
            results["runs"].setdefault(name, []).append({
                "seed": seed, "spec": specs[name],
                "val_bpc": [r for r in read_metrics(run_dir / "metrics.jsonl") if r.get("split") == "val"][-1]["bpc"],
                "test_bpc": res.test_final["bpc"], "tokens_per_s": res.tokens_per_s,
                "train_seconds": res.train_seconds, "wall_seconds": wall, "parameters": res.parameters})
            r = results["runs"][name][-1]
            print(f"[ablation] {k}/{total} {name} seed {seed}: val {r['val_bpc']:.4f} test {r['test_bpc']:.4f} "
                  f"bpc, {r['tokens_per_s']:.0f} tokens/s, {wall:.0f} s", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(results, indent=1))
    return results


def _mean_std(xs: list[float]) -> str:
    if len(xs) < 2:
        return f"{xs[0]:.3f}"
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}"


def ablation_table(results: dict[str, Any]) -> str:
    """The markdown table of :func:`run_ablation`'s results."""
    runs = results["runs"]
    ref = runs.get("fixed w")
    lines = ["| variant | pattern | dev bpc (mean ± std) | test bpc (mean ± std) | vs fixed w (dev) | tokens/s, median (min-max) | s per run |",
             "| --- | --- | ---: | ---: | --- | ---: | ---: |"]
    for name, rs in runs.items():
        val = [r["val_bpc"] for r in rs]
        test = [r["test_bpc"] for r in rs]
        tps = [r["tokens_per_s"] for r in rs]
        if ref is None or name == "fixed w":
            cmp = "-"
        else:
            rv = [r["val_bpc"] for r in ref]
            diff = statistics.mean(val) - statistics.mean(rv)
            spread_ = max(max(val) - min(val), max(rv) - min(rv))
            cmp = f"{diff:+.3f}" + (" (not a result: within the seeds' spread)" if abs(diff) <= spread_ else "")
        lines.append(f"| {name} | `{rs[0]['spec']}` | {_mean_std(val)} | {_mean_std(test)} | {cmp} | {spread(tps)} | "
                     f"{statistics.mean(r['wall_seconds'] for r in rs):.0f} |")
    lines.append(f"| unigram baseline | entropy of the training bytes | {results['unigram_bits']:.3f} | | | | |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="updates per run (default 300)")
    ap.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--out", default="", help="run directory (default runs/charlm-ablation-<time>)")
    ap.add_argument("--variants", default="", help="semicolon-separated variant names (default: all)")
    ap.add_argument("--windows", default="8,128", help="smallest and largest window of the schedules (default 8,128)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value of every run, e.g. --set data.max_bytes=500000 (TOML value)")
    args = ap.parse_args(argv)
    import tomllib

    overrides = {}
    for text in args.sets:
        key, _, value = text.partition("=")
        try:
            overrides[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            overrides[key.strip()] = value
    names = [v.strip() for v in args.variants.split(";") if v.strip()] or None
    unknown = [n for n in names or [] if n not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    out = Path(args.out or f"runs/charlm-ablation-{time.strftime('%Y%m%d-%H%M%S')}")
    start = time.time()
    header = [f"commit {git_commit()}; `python -m {MODULE} {' '.join(argv)}`".rstrip(),
              f"environment: {environment()} (set to {args.threads} torch thread(s) for the runs)"]
    lo, hi = (int(x) for x in args.windows.split(","))
    results = run_ablation(out, steps=args.steps, seeds=seeds, threads=args.threads, names=names, overrides=overrides,
                           windows=(lo, hi))
    elapsed = time.time() - start
    table = ablation_table(results)
    footer = (f"{len(seeds)} seeds x {len(results['runs'])} variants, {args.steps} updates each; whole ablation "
              f"{elapsed / 60:.1f} min; load average at the end {'/'.join(f'{x:.1f}' for x in os.getloadavg())}; "
              f"runs in {out}")
    text = "\n".join(header) + "\n\n" + table + "\n\n" + footer
    (out / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
