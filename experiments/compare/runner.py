"""``sparsegraph compare``: train every (pattern, seed) on the same task and budget, then report.

For each task (in order):

1. build its :class:`~experiments.lra.recipes.Recipe` (preset + ``--set`` overrides) and load
   its data (generated tasks are generated once and cached; the majority-class baseline is
   computed on the val and test splits);
2. resolve each pattern entry to a full spec for the model's padded length (printed; the one
   resolution), build the layer-0 graph that each seed will train at that length and measure it
   (:mod:`sparsegraph.experiments.compare.graphs`) — a pattern that cannot be built at this length
   fails here, before any training;
3. train each (pattern, seed) in its own process (:mod:`sparsegraph.experiments.compare.worker`) in the run
   directory ``OUT/<task>/<pattern>/seed<s>/``. A run whose ``results.json`` exists and whose
   ``run.toml`` equals the one it would get now is finished and is not retrained; an unfinished
   one resumes from its newest checkpoint; one that was set up differently is an error (use
   another ``--out``);
4. measure the forward+backward time and peak memory of one attention layer of each pattern at a
   few lengths (:mod:`sparsegraph.experiments.compare.sweep`), unless ``sweep=False``.

Then :mod:`sparsegraph.experiments.compare.results` gathers everything into ``results.json``,
``results.csv`` and ``results.md`` and :mod:`sparsegraph.experiments.compare.plots` draws the figures.

Each invocation (its command line, the git commit of the code and whether it had uncommitted
changes) is appended to ``OUT/invocations.json`` with every run it trains, recorded as the run
starts (:mod:`sparsegraph.experiments.compare.invocations`); ``results.json`` carries a copy, so
the tables can always name the commit and command that made them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TextIO

from sparsegraph.experiments.compare import charlm
from sparsegraph.experiments.compare import graphs as graphmod
from sparsegraph.experiments.compare.invocations import InvocationLog
from sparsegraph.experiments.compare import results as resmod
from sparsegraph.experiments.compare.specs import PatternChoice, resolve_all, run_label
from sparsegraph.experiments.compare.runspec import RUN_FILE, RunSpec, read_spec, write_spec
from sparsegraph.experiments.infra.atomic import atomic_write_bytes
from sparsegraph.kernels.measure import MEMORY_MALLOC_ENV
from sparsegraph.experiments.lra.recipes import Recipe, get_recipe
from sparsegraph.experiments.train.progress import format_duration as _fmt_time

__all__ = ["CompareOptions", "run_compare", "default_out_dir"]



@dataclass
class CompareOptions:
    """What ``sparsegraph compare`` was asked to do (see its ``--help``)."""

    tasks: list[str]
    entries: list[str]
    preset: str = "cpu"
    seeds: list[int] = field(default_factory=lambda: [0])
    #: seeds of a task when it differs from ``seeds`` (``--seeds needles=2,listops=1``)
    task_seeds: dict[str, list[int]] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    out: Path | None = None
    data_dir: str = ""
    cache_dir: str = ""
    backend: str = "auto"
    imports: list[str] = field(default_factory=list)
    threads: int = 0
    jobs: int = 1
    sweep: bool = True
    plots: bool = True
    command: str = ""

    def seeds_for(self, task: str) -> list[int]:
        """The seeds ``task`` is trained with."""
        return self.task_seeds.get(task, self.seeds)


def default_out_dir(tasks: Sequence[str], now: float | None = None) -> Path:
    """``runs/compare-<task>[+<task>...]-<YYYYmmdd-HHMMSS>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path("runs") / f"compare-{'+'.join(tasks)}-{stamp}"


class _Log:
    """Progress lines on stderr (the trainer's bar goes there too), the report on stdout."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[compare {_fmt_time(time.monotonic() - self.t0)}] {text}", file=self.stream, flush=True)


@dataclass
class _Prepared:
    name: str
    config: dict[str, Any]   # the task's whole setting, as results.json records it
    recipe: Recipe | None    # classification tasks; None for charlm
    length: int          # padded attention length (CLS included): the model's padded_length
    seq_len: int         # input tokens per sequence
    baseline: dict[str, float]
    data_summary: str
    choices: list[PatternChoice]
    graphs: dict[str, dict[str, Any]]   # label -> graphmod.PatternGraphs.to_dict()
    steps: int
    d_model: int
    heads: int
    block: int
    score: str = "accuracy"
    pretrain_steps: int = 0   # self-pretraining's MLM updates before the `steps` (0 = none)


def _prepare_task(task: str, opts: CompareOptions, log: _Log) -> _Prepared:
    if task == charlm.TASK:
        return _prepare_charlm(opts, log)
    from sparsegraph.experiments.lra import load_task

    cfg = get_recipe(task, opts.preset, opts.overrides)
    log(f"{task}: {cfg.describe()}")
    log(f"{task}: loading data (generated tasks are generated once and cached)")
    data = load_task(task, data_dir=opts.data_dir or None, cache_dir=opts.cache_dir or None,
                     progress=True, **cfg.data)
    baseline = {s: data.majority_baseline(s) for s in ("val", "test") if s in data.splits}
    log(f"{task}: {data.summary()}; majority-class baseline: "
        + ", ".join(f"{s} {100 * v:.2f}%" for s, v in baseline.items()))

    def model_config(spec: str, seed: int = 0) -> Any:
        return cfg.model_config(vocab_size=data.vocab_size, pad_id=data.pad_id, pattern=spec,
                                max_len=data.seq_len, graph_seed=seed, backend=opts.backend,
                                grid_width=data.grid_width(cfg.model.position))

    m = cfg.model
    length = model_config("full").padded_length(data.seq_len)
    choices = resolve_all(opts.entries, length=length, block=m.block_size, pooling=m.pooling)
    needed = data["test"].needed if "test" in data.splits else None
    graphs: dict[str, dict[str, Any]] = {}
    for c in choices:
        g = model_config(c.spec).global_tokens
        routing = graphmod.routing_problem(needed, pooling=m.pooling, global_tokens=g,
                                           layers=m.n_layers)
        log(f"{task}: pattern {c.label} = {c.spec!r}; measuring its layer-0 graph at n={length} "
            f"for seed(s) {', '.join(map(str, opts.seeds_for(task)))}"
            + (f", and whether its {m.n_layers} layers route each test example's answer to the "
               "readout" if routing is not None else ""))
        graphs[c.label] = graphmod.measure_pattern(
            c.spec, length, heads=m.n_heads, seeds=opts.seeds_for(task), global_tokens=g,
            routing=routing).to_dict()
    return _Prepared(task, cfg.to_dict(), cfg, length, data.seq_len, baseline, data.summary(),
                     choices, graphs, cfg.train.steps, m.d_model, m.n_heads, m.block_size,
                     pretrain_steps=cfg.pretrain.steps)


def _prepare_charlm(opts: CompareOptions, log: _Log) -> _Prepared:
    from sparsegraph.experiments.infra import config as cfgmod
    from sparsegraph.experiments.text.charlm import CharLMData

    if opts.data_dir:
        raise ValueError("--data-dir: the charlm corpus is chosen with --set data.corpus=... "
                         "and --set data.data_dir=...")
    cfg = charlm.config(opts.preset, opts.overrides)
    log(f"{charlm.TASK}: loading the corpus ({cfg.data.corpus})")
    data = CharLMData.from_config(cfg.data)
    bits = data.unigram_bits()
    log(f"{charlm.TASK}: {data.summary()}; unigram baseline {bits:.3f} bits per byte")
    m, n = cfg.model, cfg.data.seq_len
    length = -(-n // m.attention.block_size) * m.attention.block_size  # DecoderLM.padded_length
    choices = []
    for entry in opts.entries:
        spec = charlm.resolve_entry(entry)
        if any(c.label == entry or c.spec == spec for c in choices):
            raise ValueError(f"pattern {entry!r} is listed twice")
        choices.append(PatternChoice(label=entry, spec=spec))
    graphs: dict[str, dict[str, Any]] = {}
    for c in choices:
        for seed in opts.seeds_for(charlm.TASK):
            charlm.check_causal(c.spec, length, heads=m.n_heads, layers=m.n_layers, seed=seed)
        log(f"{charlm.TASK}: pattern {c.label} = {c.spec!r}; measuring its layer-0 graph at n={length}")
        graphs[c.label] = graphmod.measure_pattern(c.spec, length, heads=m.n_heads,
                                                   seeds=opts.seeds_for(charlm.TASK),
                                                   global_tokens=0).to_dict()
    return _Prepared(charlm.TASK, cfgmod.to_dict(cfg), None, length, n,
                     {"val": bits, "test": bits}, data.summary(), choices, graphs, cfg.train.steps,
                     m.d_model, m.n_heads, m.attention.block_size, score="bpc")


def _run_dir(out: Path, task: str, label: str, seed: int) -> Path:
    return out / task / run_label(label) / f"seed{seed}"


def _check_same(run_dir: Path, spec: RunSpec) -> None:
    from sparsegraph.experiments.infra import config as cfgmod

    try:
        old = read_spec(run_dir)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{run_dir / RUN_FILE} cannot be read ({e}); use another --out") from None
    if old != spec:
        a, b = cfgmod.to_dict(old), cfgmod.to_dict(spec)
        diff = [k for k in sorted(set(_flat(a)) | set(_flat(b))) if _flat(a).get(k) != _flat(b).get(k)]
        raise ValueError(
            f"{run_dir} holds a run set up differently (differs in: {', '.join(diff[:6])}); "
            "it is not mixed with this comparison - use another --out, or the same settings")


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def _child_env() -> dict[str, str]:
    # The workers import the installed sparsegraph (editable or wheel): nothing is put on
    # PYTHONPATH, so a foreign top-level `kernels` or `patterns` on the user's path is never shadowed
    # and never shadows ours.
    return dict(os.environ)


def _add_wall(run_dir: Path, seconds: float) -> float:
    path = run_dir / "wall.json"
    total = 0.0
    if path.exists():
        try:
            total = float(json.loads(path.read_text())["seconds"])
        except (ValueError, KeyError, TypeError):
            total = 0.0
    total += seconds
    atomic_write_bytes(path, (json.dumps({"seconds": total}) + "\n").encode())
    return total


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def run_threads(threads: int, jobs: int) -> int:
    """Torch threads of each run: ``threads`` if given (> 0); with several runs at once, the
    machine's cores shared out between them (at least 1 each); else 0 (torch's default)."""
    if threads > 0:
        return threads
    if jobs > 1:
        return max(1, _cpu_count() // jobs)
    return 0


@dataclass
class _Job:
    head: str
    run_dir: Path
    spec: RunSpec
    steps: int
    pretrain_steps: int = 0


class _Running:
    """One worker process. With several at once, its stderr is read by a thread and each line is
    shown prefixed with the run's name (the progress display switches to plain lines)."""

    def __init__(self, job: _Job, parallel: bool, stream: TextIO) -> None:
        self.job = job
        self.t0 = time.monotonic()
        env = _child_env()
        if parallel:
            env["SPARSEGRAPH_PROGRESS"] = "lines"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sparsegraph.experiments.compare.worker", str(job.run_dir)], env=env,
            stderr=subprocess.PIPE if parallel else None, text=parallel or None)
        self.reader: threading.Thread | None = None
        if parallel:
            name = job.spec.name
            self.reader = threading.Thread(target=self._relay, args=(name, stream), daemon=True)
            self.reader.start()

    def _relay(self, name: str, stream: TextIO) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            line = line.rstrip("\n")
            # progress lines already start with the run's name
            stream.write((line if line.startswith(name) else f"{name}: {line}") + "\n")
            stream.flush()

    def finish(self) -> tuple[int, float]:
        code = self.proc.wait()
        if self.reader is not None:
            self.reader.join()
        seconds = time.monotonic() - self.t0
        _add_wall(self.job.run_dir, seconds)
        return code, seconds


def _train_all(prepared: list[_Prepared], opts: CompareOptions, out: Path, log: _Log,
               invocation: InvocationLog) -> int:
    """Train every unfinished (task, pattern, seed), ``opts.jobs`` processes at a time; each
    run is recorded in ``invocation`` as it starts."""
    combos: list[tuple[_Prepared, PatternChoice, int]] = [
        (p, c, s) for p in prepared for s in opts.seeds_for(p.name) for c in p.choices]
    threads = run_threads(opts.threads, opts.jobs)
    pending: list[_Job] = []
    for i, (p, c, seed) in enumerate(combos, 1):
        spec = RunSpec(task=p.name, label=c.label, spec=c.spec, seed=seed, recipe=p.recipe,
                       preset=opts.preset if p.recipe is None else "",
                       overrides=tuple(opts.overrides) if p.recipe is None else (),
                       backend=opts.backend,
                       data_dir=opts.data_dir, cache_dir=opts.cache_dir,
                       imports=tuple(opts.imports), threads=threads)
        run_dir = _run_dir(out, p.name, c.label, seed)
        head = f"[{i}/{len(combos)}] {p.name} {c.label} seed {seed}"
        if (run_dir / RUN_FILE).exists():
            _check_same(run_dir, spec)
            if (run_dir / "results.json").exists():
                log(f"{head}: finished earlier, not retrained ({run_dir})")
                continue
            log(f"{head}: resuming from its newest checkpoint")
        pending.append(_Job(head, run_dir, spec, p.steps, p.pretrain_steps))
    parallel = opts.jobs > 1 and len(pending) > 1
    if parallel:
        log(f"training {len(pending)} runs, {opts.jobs} at a time, {threads} torch thread(s) each")
    stream = log.stream
    failures = 0
    done_seconds: list[float] = []
    running: list[_Running] = []
    total = len(pending)
    try:
        while pending or running:
            while pending and len(running) < max(1, opts.jobs):
                job = pending.pop(0)
                write_spec(job.spec, job.run_dir)
                # before the process starts: a run killed mid-way was still trained (in part)
                # by this invocation's code
                invocation.trained(job.spec.task, job.spec.label, job.spec.seed)
                left = len(pending) + len(running) + 1
                eta = ""
                if done_seconds:
                    mean = sum(done_seconds) / len(done_seconds)
                    eta = f", about {_fmt_time(mean * left / max(1, opts.jobs))} left"
                pre = f"{job.pretrain_steps} self-pretraining MLM steps, then " if job.pretrain_steps else ""
                log(f"{job.head}: training {job.spec.spec!r} ({pre}{job.steps} steps{eta})")
                running.append(_Running(job, parallel, stream))
            finished = None
            while finished is None:
                for r in running:
                    if r.proc.poll() is not None:
                        finished = r
                        break
                else:
                    time.sleep(0.2)
            running.remove(finished)
            code, seconds = finished.finish()
            done_seconds.append(seconds)
            if code != 0:
                failures += 1
                log(f"{finished.job.head}: FAILED (exit status {code}); see {finished.job.run_dir}")
            else:
                log(f"{finished.job.head}: done in {_fmt_time(seconds)} "
                    f"({total - len(pending) - len(running)}/{total} runs finished)")
    except KeyboardInterrupt:
        for r in running:
            r.proc.wait()  # the workers got the same SIGINT and save nothing half-written
            r.finish()
        raise
    return failures


def _sweep(p: _Prepared, opts: CompareOptions, out: Path, log: _Log) -> list[dict[str, Any]]:
    path = out / p.name / "sweep.json"
    request = {"specs": {c.label: c.spec for c in p.choices},
               "lengths": _sweep_lengths(p.length, p.block),
               "d_model": p.d_model, "heads": p.heads, "block": p.block, "backend": opts.backend,
               "threads": opts.threads, "imports": list(opts.imports)}
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("request") == request:
            return old["rows"]
    log(f"{p.name}: speed/memory sweep of one attention layer at n = "
        + ", ".join(map(str, request["lengths"])))
    (out / p.name).mkdir(parents=True, exist_ok=True)
    req_path = out / p.name / "sweep_request.json"
    atomic_write_bytes(req_path, (json.dumps(request, indent=2) + "\n").encode())
    code = subprocess.call([sys.executable, "-m", "sparsegraph.experiments.compare.sweep", str(req_path), str(path)],
                           env={**_child_env(), **MEMORY_MALLOC_ENV})
    if code != 0:
        log(f"{p.name}: the speed/memory sweep failed (exit status {code}); no sweep plot")
        return []
    return json.loads(path.read_text())["rows"]


def _sweep_lengths(n: int, block: int) -> list[int]:
    """Four lengths around the task's: n/4, n/2, n, 2n (multiples of the block, >= 2 blocks)."""
    out = []
    for f in (0.25, 0.5, 1.0, 2.0):
        m = max(2 * block, int(round(n * f / block)) * block)
        if m not in out:
            out.append(m)
    return out


def run_compare(opts: CompareOptions, *, stream: TextIO | None = None) -> int:
    """Run the comparison; returns the exit status (0, or 1 if a run failed)."""
    log = _Log()
    if not opts.tasks:
        raise ValueError("no task given: --task listops (or several: --task listops,pathfinder)")
    if len(set(opts.tasks)) != len(opts.tasks):
        raise ValueError(f"--task lists a task twice: {','.join(opts.tasks)}")
    if not opts.seeds or any(not opts.seeds_for(t) for t in opts.tasks):
        raise ValueError("no seeds: --seeds must be >= 1")
    stray = sorted(set(opts.task_seeds) - set(opts.tasks))
    if stray:
        raise ValueError(f"--seeds names {', '.join(stray)}, which --task does not list "
                         f"({','.join(opts.tasks)})")
    out = opts.out if opts.out is not None else default_out_dir(opts.tasks)
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise PermissionError(f"--out {str(out)!r} is not writable")
    log(f"writing to {out}")
    prepared = [_prepare_task(t, opts, log) for t in opts.tasks]
    atomic_write_bytes(out / "graphs.json", (json.dumps(
        {p.name: p.graphs for p in prepared}, indent=2, default=str) + "\n").encode())
    invocation = InvocationLog(out, opts.command)
    if not invocation.entry["commit"]:
        log(f"no git commit recorded ({invocation.entry['commit_note']})")
    failures = _train_all(prepared, opts, out, log, invocation)
    sweeps = {p.name: (_sweep(p, opts, out, log) if opts.sweep else []) for p in prepared}
    tasks_out = []
    for p in prepared:
        runs = []
        for seed in opts.seeds_for(p.name):
            for c in p.choices:
                runs.append(resmod.read_run(_run_dir(out, p.name, c.label, seed), task=p.name,
                                            label=c.label, spec=c.spec, seed=seed, score=p.score))
        tasks_out.append(resmod.TaskResults(
            task=p.name, preset=opts.preset, config=p.config, length=p.length, score=p.score,
            seq_len=p.seq_len, data=p.data_summary, baseline=p.baseline,
            patterns=[{"label": c.label, **p.graphs[c.label]} for c in p.choices],
            runs=runs, sweep=sweeps[p.name]))
    invocation.record()  # one that trained nothing still wrote these tables
    every_seed = sorted({s for t in opts.tasks for s in opts.seeds_for(t)})
    report = resmod.write_all(out, tasks_out, command=opts.command, seeds=every_seed,
                              invocations=invocation.entries)
    if opts.plots:
        from sparsegraph.experiments.compare import plots

        for path in plots.write_all(out, tasks_out):
            log(f"plot {path}")
    log(f"results in {out}/results.json, results.csv, results.md")
    print(report, file=stream if stream is not None else sys.stdout, flush=True)
    if failures:
        log(f"{failures} run(s) failed; their rows say so")
        return 1
    return 0
