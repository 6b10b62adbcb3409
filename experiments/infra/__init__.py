"""Shared infrastructure of the experiments wing, free of torch.

- :mod:`sparsegraph.experiments.infra.config` — typed TOML configurations: load, ``--set``
  overrides, :func:`~sparsegraph.experiments.infra.config.merge`,
  :func:`~sparsegraph.experiments.infra.config.convert`, write back;
- :mod:`sparsegraph.experiments.infra.atomic` — files that a kill cannot tear;
- :mod:`sparsegraph.experiments.infra.source` — the git commit of the running code, recorded
  beside results;
- :mod:`sparsegraph.experiments.infra.user_modules` — ``--import``: a user's module or file that
  registers patterns.
"""
