"""``sparsegraph compare``: train every (pattern, seed) on the same LRA task(s) and budget."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

HELP = "train several attention patterns on the same LRA task(s) and budget and compare them"

_EPILOG = """\
patterns: a short name (full, bigbird, longformer, window, window_only, dilated, watts_strogatz,
erdos_renyi, erdos_renyi_blocks, sparse_transformer: resolved to a full spec for the task's length and printed) or
any pattern spec string, including your own registered pattern (--import). Specs contain commas,
so --patterns splits on a comma only where the next piece starts a new pattern: a piece that
starts with "key=" continues the previous spec's parameters, and commas inside [...] never split.
  --patterns full,bigbird:block=32,random=2,window   ->  full | bigbird:block=32,random=2 | window
Or give each spec whole with a repeated --pattern SPEC.

self-pretraining: --set pretrain.steps=N first trains each run's encoder (same graph) as a masked
LM on the task's own training inputs for N steps, then fine-tunes it (Amos et al., ICLR 2024;
docs/compare.md, "Self-pretraining").

resume: run again with the same --out; finished (pattern, seed) runs are not retrained and an
interrupted run continues from its last checkpoint.

examples:
  sparsegraph compare --task needles,listops --patterns full,bigbird,longformer,window_only,erdos_renyi_blocks --preset cpu --seeds needles=2,listops=1 --jobs 2
  sparsegraph compare --task listops --patterns full,bigbird,longformer,window,watts_strogatz --preset cpu --seeds 3
  sparsegraph compare --task listops,pathfinder --patterns full,bigbird,longformer --preset cpu
  sparsegraph compare --task listops --pattern "sliding_window:window=33|global_itc:indices=[0]" --pattern full --set train.steps=100
  sparsegraph compare --task needles --patterns full,bigbird --set pretrain.steps=200
  sparsegraph compare --task charlm --patterns full,sink_window:window=64,sinks=4 --seeds 2 --jobs 2
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("--task", required=True, metavar="TASK[,TASK...]",
                        help="LRA task(s): listops, pathfinder, pathx, image, fashion_mnist, text, "
                             "retrieval; the diagnostic needles (its answer's positions are "
                             "known, so the table predicts what each graph can route); several "
                             "comma-separated; or charlm (the byte-level "
                             "language model, on its own, causal patterns only)")
    parser.add_argument("--patterns", metavar="LIST", default=None,
                        help="comma-separated pattern names/specs (see below); default "
                             "full,bigbird,longformer (charlm: full,sink_window:window=64,sinks=4)")
    parser.add_argument("--pattern", dest="pattern_list", action="append", default=[], metavar="SPEC",
                        help="one pattern name or spec, taken whole; repeatable")
    parser.add_argument("--preset", default="cpu", metavar="PRESET",
                        help="lra (the paper/repo settings) or cpu (minutes on 2 cores); default cpu")
    parser.add_argument("--seeds", default="1", metavar="S|TASK=S,...",
                        help="train seeds 0..S-1 of every pattern (default 1); or per task, "
                             "e.g. needles=2,listops=1 (every task of --task named once)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a task setting: data.n_train=2000, model.d_model=64, "
                             "train.steps=100, optim.lr=1e-3, pretrain.steps=200 "
                             "(self-pretraining); repeatable")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output directory (default runs/compare-<task>-<time>); reuse it to resume")
    parser.add_argument("--data-dir", default="", metavar="DIR",
                        help="directory with the data files of image, fashion_mnist, text, retrieval")
    parser.add_argument("--cache-dir", default="", metavar="DIR",
                        help="cache of generated data (default $SPARSEGRAPH_DATA or ~/.cache/sparsegraph/lra)")
    parser.add_argument("--backend", default="auto", metavar="NAME",
                        help="sparsegraph.kernels.attention backend: auto, torch, dense, reference, triton")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="torch threads per run (default: torch's choice; with --jobs, "
                             "the cores shared out between the runs)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="train N runs at once, each in its own process (default 1); on a "
                             "small machine 2 single-thread runs finish sooner than 2 runs of 2 "
                             "threads one after the other")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import MODULE or a .py file first (your own @register'ed patterns); repeatable")
    parser.add_argument("--no-sweep", dest="sweep", action="store_false",
                        help="skip the speed/memory-against-length sweep")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="write no figures")


def _command_line(args: argparse.Namespace) -> str:
    """This command as typed, shell-quoted (recorded in the output directory): the words that
    ``sparsegraph.experiments.cli.main`` parsed, else those of this process."""
    words = getattr(args, "_argv", None)
    if words is None:
        words = sys.argv[1:]
    words = list(words)
    if words[:1] != ["compare"]:
        # run() called without main(): the words of this process are not this command's
        return "sparsegraph compare"
    return "sparsegraph " + shlex.join(words)


def parse_seeds(text: str, tasks: list[str]) -> tuple[list[int], dict[str, list[int]]]:
    """``--seeds``: ``"S"`` (seeds ``0..S-1`` for every task) or ``"TASK=S,..."`` naming every
    task of ``tasks`` once. Returns the default seeds and the per-task ones.

    >>> parse_seeds("2", ["listops"])
    ([0, 1], {})
    >>> parse_seeds("needles=2,listops=1", ["needles", "listops"])
    ([0, 1], {'needles': [0, 1], 'listops': [0]})
    """
    def count(word: str, where: str) -> int:
        try:
            n = int(word)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"--seeds {text!r}: {where}{word!r} is not an int >= 1")
        return n

    if "=" not in text:
        return list(range(count(text.strip(), ""))), {}
    per: dict[str, list[int]] = {}
    for piece in text.split(","):
        task, _, n = piece.partition("=")
        task = task.strip()
        if task not in tasks:
            raise ValueError(f"--seeds {text!r}: {task!r} is not a task of --task ({','.join(tasks)})")
        if task in per:
            raise ValueError(f"--seeds {text!r}: {task!r} is named twice")
        per[task] = list(range(count(n.strip(), f"{task}=")))
    missing = [t for t in tasks if t not in per]
    if missing:
        raise ValueError(f"--seeds {text!r}: no seed count for {', '.join(missing)}; name every "
                         f"task (TASK=S,...) or give one count for all")
    return max(per.values(), key=len), per


def run(args: argparse.Namespace) -> int:
    from sparsegraph.experiments.compare import CompareOptions, charlm, run_compare, split_patterns
    from sparsegraph.experiments.compare.specs import check_entries
    from sparsegraph.experiments.infra.user_modules import absolute_imports, import_user_modules
    from sparsegraph.experiments.lra.recipes import PRESETS, TASKS, get_recipe
    from sparsegraph.experiments.models.config import BACKENDS

    tasks = [t.strip() for t in args.task.split(",")]
    for t in tasks:
        if t not in (*TASKS, charlm.TASK):
            raise ValueError(f"--task {t!r}: unknown task; expected one of {', '.join((*TASKS, charlm.TASK))}")
    if charlm.TASK in tasks and len(tasks) > 1:
        raise ValueError(f"--task {args.task!r}: compare {charlm.TASK} on its own (its patterns must be "
                         "causal, the classification tasks' need not be)")
    if args.preset not in PRESETS:
        raise ValueError(f"--preset {args.preset!r}: unknown preset; expected one of {', '.join(PRESETS)}")
    seeds, task_seeds = parse_seeds(args.seeds, tasks)
    if args.threads < 0:
        raise ValueError(f"--threads {args.threads}: expected an int >= 0 (0 = torch's default)")
    if args.jobs < 1:
        raise ValueError(f"--jobs {args.jobs}: expected an int >= 1")
    if args.backend not in BACKENDS:
        raise ValueError(f"--backend {args.backend!r}: expected one of {', '.join(BACKENDS)}")
    import_user_modules(args.imports)
    entries = split_patterns(args.patterns) if args.patterns is not None else []
    entries += [p.strip() for p in args.pattern_list]
    if not entries:
        entries = list(charlm.DEFAULT_PATTERNS if tasks == [charlm.TASK] else ("full", "bigbird", "longformer"))
    # check every override and pattern spec before any data is generated (the runner resolves
    # the short names once per task, when its length is known)
    if tasks == [charlm.TASK]:
        charlm.config(args.preset, args.overrides)
        for entry in entries:
            charlm.resolve_entry(entry)
    else:
        for t in tasks:
            get_recipe(t, args.preset, args.overrides)
        check_entries(entries)
    opts = CompareOptions(
        tasks=tasks, entries=entries, preset=args.preset, seeds=seeds, task_seeds=task_seeds,
        overrides=list(args.overrides), out=args.out, data_dir=args.data_dir,
        cache_dir=args.cache_dir, backend=args.backend, imports=absolute_imports(args.imports),
        threads=args.threads, jobs=args.jobs, sweep=args.sweep, plots=args.plots,
        command=_command_line(args),
    )
    return run_compare(opts)
