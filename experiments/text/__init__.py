"""Text: tokenizers, masked-language-model data, and text classification from folders.

- :mod:`sparsegraph.experiments.text.mlm` — tokenizers (bytes or a HF ``tokenizer.json``), text
  files, MLM masking and the MLM objective;
- :mod:`sparsegraph.experiments.text.mlm_config` — the ``[data]`` section of ``sparsegraph pretrain``;
- :mod:`sparsegraph.experiments.text.folder` — classification from ``root/<split>/<class>/*.txt``.
"""
