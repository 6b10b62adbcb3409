"""``sparsegraph compare``: train several attention graphs on the same LRA task and budget and
report accuracy, speed, memory and each graph's measurements side by side (docs/compare.md).

- :mod:`sparsegraph.experiments.compare.specs` — ``--patterns`` parsing, short names -> full specs;
- :mod:`sparsegraph.experiments.compare.graphs` — each pattern's graph at the task's length, its metrics;
- :mod:`sparsegraph.experiments.compare.runner` — the comparison (data, runs, resume, sweep, reports);
- :mod:`sparsegraph.experiments.compare.worker` — one (pattern, seed) run, in its own process;
- :mod:`sparsegraph.experiments.train.classification` — the classification task the trainer optimises;
- :mod:`sparsegraph.experiments.compare.sweep` — speed/memory of one attention layer against length;
- :mod:`sparsegraph.experiments.compare.results` — records, summaries, ``results.json/csv/md``;
- :mod:`sparsegraph.experiments.compare.plots` — the figures.
"""

from sparsegraph.experiments.compare.runner import CompareOptions, default_out_dir, run_compare
from sparsegraph.experiments.compare.specs import PatternChoice, resolve, resolve_all, split_patterns

__all__ = ["CompareOptions", "run_compare", "default_out_dir", "PatternChoice", "resolve",
           "resolve_all", "split_patterns"]
