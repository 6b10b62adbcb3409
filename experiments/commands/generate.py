"""``sparsegraph generate``: continue a text with a trained byte-level language model.

    sparsegraph generate runs/charlm-cpu --prompt "The attention " --max-new 300 --temperature 0.8 --top-k 20
    sparsegraph generate runs/charlm-cpu --greedy --checkpoint last

Reads the run's ``config.toml`` (a ``sparsegraph train`` run with ``data.task = "charlm"``), builds
its :class:`~experiments.models.decoder.DecoderLM`, puts it in the phase its checkpoint was written
in (staged training), loads the weights and decodes with the key/value cache of
:mod:`experiments.models.decoding`: for a window pattern the cache keeps the sinks and a ring of
the last ``window`` keys, so memory stays constant however many bytes are generated. Sampling
(``--temperature``, ``--top-k``, ``--seed``: same seed, same text) or ``--greedy``. The text goes
to stdout; what the cache kept and the speed go to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HELP = "continue a text with a trained charlm model (sampling or greedy, a cache bounded by the graph)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run directory of a charlm `sparsegraph train` run")
    parser.add_argument("--checkpoint", default="best",
                        help="'best' (default), 'last', or a checkpoint file")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--prompt", default=None, help="the text to continue (default: a newline)")
    src.add_argument("--prompt-file", metavar="FILE", help="read the prompt from a file")
    parser.add_argument("--max-new", type=int, default=200, help="bytes to generate (default 200)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1.0)")
    parser.add_argument("--top-k", type=int, default=0, help="sample among the k most likely bytes (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--greedy", action="store_true", help="always take the most likely byte")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: a decoding step is many tiny ops, which "
                             "a second thread slows down on a busy machine)")


def load_model(run_dir: str | Path, checkpoint: str = "best", device: str = "cpu"):
    """``(model, config, checkpoint path, step)`` of a charlm run, weights loaded, in eval mode."""
    import tomllib

    from sparsegraph.experiments.text.charlm import build_decoder
    from sparsegraph.experiments.text.charlm_train import is_charlm, phases_from_config, resolve_charlm_config
    from sparsegraph.experiments.train.checkpoint import CheckpointManager, load_checkpoint

    run = Path(run_dir)
    cfg_path = run / "config.toml"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{str(cfg_path)!r} does not exist: give the directory of a `sparsegraph train` run")
    raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    if not is_charlm(raw, []):
        raise ValueError(f"{str(run)!r} is not a charlm run (its data.task is {raw.get('data', {}).get('task')!r})")
    cfg = resolve_charlm_config(raw)
    manager = CheckpointManager(run / "checkpoints")
    if checkpoint == "best":
        path = manager.best_path
        if not path.is_file():
            found = manager.latest()
            if found is None:
                raise FileNotFoundError(f"no checkpoint in {str(manager.dir)!r}")
            path = found[0]
        state = load_checkpoint(path)
    elif checkpoint == "last":
        found = manager.latest()
        if found is None:
            raise FileNotFoundError(f"no checkpoint in {str(manager.dir)!r}")
        path, state = found
    else:
        path = Path(checkpoint)
        state = load_checkpoint(path)
    model = build_decoder(cfg.model, seed=cfg.run.seed)
    phases = phases_from_config(cfg.stages, cfg.data.seq_len)
    step = int(state.get("step", 0))
    if phases is not None and any(p.params for p in phases.phases):
        model.set_pattern_params(**phases.phase(max(step - 1, 0)).params)  # the checkpoint's phase
    model.load_state_dict(state["model"])
    return model.to(device).eval(), cfg, path, step


def run(args: argparse.Namespace) -> int:
    import torch

    from sparsegraph.experiments.models.decoding import cache_rules, generate

    for name, lo in (("max_new", 0), ("top_k", 0), ("seed", 0)):
        if getattr(args, name) < lo:
            raise ValueError(f"--{name.replace('_', '-')} must be >= {lo}, got {getattr(args, name)}")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    if not args.greedy and not args.temperature > 0:
        raise ValueError(f"--temperature must be > 0 (or use --greedy), got {args.temperature}")
    model, cfg, path, step = load_model(args.run_dir, args.checkpoint, args.device)
    if args.prompt_file:
        prompt = Path(args.prompt_file).read_bytes()
    else:
        prompt = (args.prompt if args.prompt is not None else "\n").encode("utf-8")
    if not prompt:
        raise ValueError("the prompt is empty: give at least one byte")
    max_len = cfg.model.max_len
    if len(prompt) > max_len:
        print(f"[generate] the prompt has {len(prompt)} bytes; keeping its last {max_len} (model.max_len)",
              file=sys.stderr)
        prompt = prompt[-max_len:]
    ids = torch.tensor([list(prompt)], dtype=torch.long, device=args.device)
    rules = cache_rules(model, ids.shape[1] + args.max_new)
    t0 = time.perf_counter()
    out, cache = generate(model, ids, args.max_new, greedy=args.greedy, temperature=args.temperature,
                          top_k=args.top_k, seed=args.seed, rules=rules, return_cache=True)
    dt = time.perf_counter() - t0
    text = bytes(out[0].tolist()).decode("utf-8", errors="replace")
    sys.stdout.write(text + ("" if text.endswith("\n") else "\n"))
    kinds = sorted({r.describe() for r in rules})
    print(f"[generate] {path} (step {step}); pattern per layer {model.layer_specs()}; cache: {'; '.join(kinds)}; "
          f"{cache.nbytes / 1024:.1f} KiB of keys and values; {args.max_new} bytes in {dt:.2f} s "
          f"({args.max_new / dt if dt > 0 else float('inf'):.0f} bytes/s)", file=sys.stderr)
    return 0


__all__ = ["HELP", "add_arguments", "run", "load_model"]
