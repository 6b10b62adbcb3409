"""Measurement scripts: each prints tables and is run as ``python -m sparsegraph.experiments.measure.<name>``.

- :mod:`~sparsegraph.experiments.measure.throughput` — training tokens/s and the longest trainable
  sequence in a memory budget, full against sparse attention;
- :mod:`~sparsegraph.experiments.measure.analysis_timing` — the time of every graph metric;
- :mod:`~sparsegraph.experiments.measure.lra_generators` — the speed of the LRA data generators;
- :mod:`~sparsegraph.experiments.measure.fresh_data_cost` — what drawing the training data fresh
  every step costs against a training step;
- :mod:`~sparsegraph.experiments.measure.pathfinder_cnn` — a convolutional calibration run on
  generated Pathfinder (its ``--out`` record: :mod:`~sparsegraph.experiments.measure.cnn_record`).

The kernel benchmark is ``sparsegraph bench`` (:mod:`sparsegraph.kernels.bench`).
"""
