"""What training on fresh generated data costs per step, for the ``cpu`` presets of ListOps and Pathfinder.

    python -m sparsegraph.experiments.measure.fresh_data_cost [--tasks listops,pathfinder]
        [--pattern bigbird] [--repeats 15] [--steps-per-sample 3] [--threads 1] [--json out.json]

For each task it builds the preset's model (``get_recipe(task, "cpu")``, attention ``--pattern``,
a short name of ``sparsegraph compare``) and times, interleaved (the order rotated every round,
:func:`sparsegraph.kernels.measure.time_interleaved`), one sample of each of:

* ``generate``: drawing one batch of fresh examples in this process (``FreshTrain.arrays``);
* ``step fixed``: ``--steps-per-sample`` training steps (forward, backward, clipping, AdamW) on
  batches of the fixed train split;
* ``step fresh inline``: the same on fresh batches generated in this process at each step
  (``fresh_workers=0``);
* ``step fresh bg``: the same on fresh batches generated ahead by one background process
  (``fresh_workers=1``, the default).

It prints the median and the min-max range of each, wall-clock and this process's CPU time (which
leaves out the background worker's: what the training process itself spends), and the slowdown of
the fresh variants against the fixed data (median per step). The wall clock shows the background
worker's help only where a core is free for it; on a machine whose cores are all busy its CPU
time is taken from the others. The fixed split is small (``n_train`` 512: the batching cost does
not depend on it); generated data are cached as usual. Progress goes to stderr; ``--json`` writes
every sample (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["main", "measure_task"]


def _progress(text: str) -> None:
    print(f"[fresh_data_cost {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _cycle(data: Any, batch_size: int, seed: int) -> Iterator[dict[str, Any]]:
    """Full batches of the fixed train split, epoch after epoch (what the trainer trains on)."""
    epoch = 0
    while True:
        for batch in data.batches("train", batch_size, seed=seed, epoch=epoch, drop_last=True):
            yield batch
        epoch += 1


def measure_task(task: str, *, pattern: str, repeats: int, steps_per_sample: int,
                 cache_dir: str | None) -> dict[str, Any]:
    """Time generation and training steps of ``task``'s cpu preset; returns the record."""
    import torch

    from sparsegraph.experiments.compare.specs import resolve
    from sparsegraph.experiments.lra import load_task
    from sparsegraph.experiments.lra.recipes import get_recipe
    from sparsegraph.experiments.models import SequenceClassifier
    from sparsegraph.experiments.train.classification import ClassificationObjective
    from sparsegraph.kernels.measure import Timing, time_interleaved

    recipe = get_recipe(task, "cpu")
    params = dict(recipe.data, n_train=512)
    _progress(f"{task}: loading the fixed data and the fresh streams ({recipe.describe()})")
    fixed = load_task(task, cache_dir=cache_dir, progress=False, **params)
    inline = load_task(task, cache_dir=cache_dir, progress=False, fresh=True, fresh_workers=0,
                       **params)
    background = load_task(task, cache_dir=cache_dir, progress=False, fresh=True,
                           fresh_workers=1, **params)
    m = recipe.model
    base = recipe.model_config(vocab_size=fixed.vocab_size, pad_id=fixed.pad_id, pattern="full",
                               max_len=fixed.seq_len)
    spec = resolve(pattern, length=base.padded_length(fixed.seq_len), block=m.block_size,
                   pooling=m.pooling).spec
    torch.manual_seed(0)
    model = SequenceClassifier(recipe.model_config(vocab_size=fixed.vocab_size, pad_id=fixed.pad_id,
                                                   pattern=spec, max_len=fixed.seq_len),
                               fixed.num_classes)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.optim.lr,
                            weight_decay=recipe.optim.weight_decay)
    objective = ClassificationObjective()
    clip = recipe.train.clip_norm
    bs = recipe.train.batch_size

    def train_step(batch: dict[str, Any]) -> None:
        loss, _ = objective.loss_and_metrics(model, batch)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        opt.zero_grad(set_to_none=True)

    sources = {"step fixed": _cycle(fixed, bs, 0),
               "step fresh inline": inline.batches("train", bs, seed=0),
               "step fresh bg": background.batches("train", bs, seed=0)}
    gen_step = iter(range(10**9, 2 * 10**9))  # steps no training iterator reaches

    def steps(it: Iterator[dict[str, Any]]) -> None:
        for _ in range(steps_per_sample):
            train_step(next(it))

    raw = {"generate": lambda: inline.fresh.arrays(next(gen_step), bs, 0)}  # type: ignore[union-attr]
    raw.update({name: (lambda it=it: steps(it)) for name, it in sources.items()})
    # This process's CPU time of each sample too: what the training process itself spends, which
    # the wall clock shows only when the machine has a core to spare for the background worker.
    cpu: dict[str, list[float]] = {name: [] for name in raw}

    def with_cpu(name: str) -> Any:
        def run() -> None:
            c0 = time.process_time()
            raw[name]()
            cpu[name].append(time.process_time() - c0)
        return run

    fns = {name: with_cpu(name) for name in raw}
    _progress(f"{task}: pattern {spec!r}, batch {bs}; {repeats} interleaved rounds of "
              f"{steps_per_sample} step(s) per training variant")
    t0 = time.perf_counter()
    timings = time_interleaved(fns, repeats=repeats, warmup=1)
    for it in sources.values():
        close = getattr(it, "close", None)
        if close is not None:
            close()  # stops the background worker
    _progress(f"{task}: done in {time.perf_counter() - t0:.0f} s")
    cpu_timings = {k: Timing(tuple(v[1:])) for k, v in cpu.items()}  # the warm-up call dropped
    per_step = {k: t.median / (1 if k == "generate" else steps_per_sample)
                for k, t in timings.items()}
    cpu_per_step = {k: t.median / (1 if k == "generate" else steps_per_sample)
                    for k, t in cpu_timings.items()}
    return {
        "task": task, "preset": "cpu", "pattern": spec, "batch_size": bs,
        "steps_per_sample": steps_per_sample, "repeats": repeats,
        "timings_ms": {k: {**t.to_dict(), "samples": [1e3 * x for x in t.samples]}
                       for k, t in timings.items()},
        "cpu_ms": {k: {**t.to_dict(), "samples": [1e3 * x for x in t.samples]}
                   for k, t in cpu_timings.items()},
        "per_step_ms": {k: 1e3 * v for k, v in per_step.items()},
        "cpu_per_step_ms": {k: 1e3 * v for k, v in cpu_per_step.items()},
        "cpu_slowdown_inline": cpu_per_step["step fresh inline"] / cpu_per_step["step fixed"] - 1,
        "cpu_slowdown_bg": cpu_per_step["step fresh bg"] / cpu_per_step["step fixed"] - 1,
        "generate_over_step": per_step["generate"] / per_step["step fixed"],
        "slowdown_inline": per_step["step fresh inline"] / per_step["step fixed"] - 1,
        "slowdown_bg": per_step["step fresh bg"] / per_step["step fixed"] - 1,
    }


def _row(rec: dict[str, Any], clock: str) -> str:
    """One table row: wall-clock (``clock="wall"``) or this process's CPU time (``"cpu"``)."""
    t = rec["timings_ms" if clock == "wall" else "cpu_ms"]
    k = rec["steps_per_sample"]
    slow = "slowdown" if clock == "wall" else "cpu_slowdown"

    def cell(name: str, per: int) -> str:
        d = t[name]
        return f"{d['median'] / per:.0f} ({d['low'] / per:.0f}-{d['high'] / per:.0f})"

    gen = t["generate"]["median"] / (t["step fixed"]["median"] / k)
    return (f"| {rec['task']} | {clock} | {rec['batch_size']} | {cell('generate', 1)} | "
            f"{cell('step fixed', k)} | {100 * gen:.0f}% | "
            f"{cell('step fresh inline', k)} ({100 * rec[slow + '_inline']:+.0f}%) | "
            f"{cell('step fresh bg', k)} ({100 * rec[slow + '_bg']:+.0f}%) |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sparsegraph.experiments.measure.fresh_data_cost",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="listops,pathfinder",
                        help="comma-separated generated tasks with a cpu preset (default: %(default)s)")
    parser.add_argument("--pattern", default="bigbird",
                        help="attention: a short name of sparsegraph compare (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--steps-per-sample", type=int, default=3,
                        help="consecutive training steps per timed sample (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: %(default)s)")
    parser.add_argument("--cache-dir", default=None, help="generated-data cache (default: the usual one)")
    parser.add_argument("--json", default=None, help="write every sample to this JSON file")
    args = parser.parse_args(argv)
    for name in ("repeats", "steps_per_sample", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    bad = [t for t in tasks if t not in ("listops", "pathfinder")]
    if bad or not tasks:
        parser.error(f"--tasks: expected some of listops, pathfinder; got {args.tasks!r}")
    import torch

    torch.set_num_threads(args.threads)
    env = {"cpus": len(os.sched_getaffinity(0)), "load_average": list(os.getloadavg()),
           "threads": args.threads, "torch": torch.__version__}
    _progress(f"{env['cpus']} CPUs usable, load average "
              f"{', '.join(f'{x:.1f}' for x in env['load_average'])}, {args.threads} torch thread(s)")
    records = [measure_task(t, pattern=args.pattern, repeats=args.repeats,
                            steps_per_sample=args.steps_per_sample, cache_dir=args.cache_dir)
               for t in tasks]
    print("| task (cpu preset) | clock | batch | generate a batch, ms | train step, fixed data, ms | "
          "generate / step | step, fresh in-process, ms | step, fresh with 1 background worker, ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for rec in records:
        for clock in ("wall", "cpu"):
            print(_row(rec, clock))
    print(f"median (min-max) over {args.repeats} interleaved rounds; step times per step "
          f"({args.steps_per_sample} consecutive steps per sample); pattern {args.pattern}; "
          f"cpu = this process's CPU time (the background worker's is not counted); load average "
          f"at the end {', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    if args.json:
        from sparsegraph.experiments.infra.atomic import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps({"env": env, "records": records},
                                                 indent=1).encode())
        _progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
