"""Configuration of the character-level (byte) language-model task: the ``[data]`` and
``[stages]`` tables, the whole run config of ``sparsegraph train`` with ``data.task = "charlm"``,
and the recipes (``cpu``).

Torch-free, so the command line parses without loading torch; :mod:`experiments.text.charlm`
holds the data, the objective and the model builder.

A config (``sparsegraph train charlm.toml``)::

    [run]
    name = "charlm-window"

    [data]
    task = "charlm"
    preset = "cpu"                 # model, optim, train, data defaults from CHARLM_RECIPES["cpu"]
    corpus = "stdlib"              # stdlib | dir | gcide | enwik8 | text8

    [model.attention]
    pattern = "sink_window:window=64,sinks=4"

    [stages]                       # optional: staged training
    preset = "doubling"            # Longformer's: each phase doubles seq_len and `params`, halves the LR
    phases = 3
    steps = [200, 200, 200]
    params = {window = 32}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sparsegraph.experiments.infra import config as cfgmod
from sparsegraph.experiments.train.config import OptimConfig, RunConfig, TrainConfig

__all__ = ["CORPORA", "CharLMDataConfig", "PhaseConfig", "StagesConfig", "CharLMRunConfig", "CHARLM_RECIPES",
           "charlm_recipe", "ENWIK8_SPLITS"]

#: Corpora: ``stdlib`` (prose from Python's standard library: docstrings and comments, no extra
#: install), ``dir`` (the text files of ``data_dir``), ``gcide`` (the GNU Collaborative
#: International Dictionary of English from Debian's ``dict-gcide``, or ``data_dir``), ``enwik8`` /
#: ``text8`` (the files of that name in ``data_dir``, with their standard splits).
CORPORA = ("stdlib", "dir", "gcide", "enwik8", "text8")

#: The standard enwik8 / text8 splits: the first 90M bytes train, the next 5M validation, the last
#: 5M test (Mahoney's files of 10^8 bytes; Al-Rfou et al. 2019, Dai et al. 2019, Beltagy et al. 2020).
ENWIK8_SPLITS = (90_000_000, 5_000_000, 5_000_000)


@dataclass
class CharLMDataConfig:
    """The ``[data]`` table of a character-level LM run.

    ``corpus`` (see :data:`CORPORA`); ``data_dir`` (``dir``, ``enwik8``, ``text8``; ``gcide``
    optionally); ``max_bytes`` caps the text read for ``stdlib`` / ``dir`` / ``gcide`` (files in
    sorted order; 0 = no cap); ``val_fraction`` / ``test_fraction``: the shares of fixed blocks
    spread through the text that form the validation and test splits (``stdlib``, ``dir``,
    ``gcide``; :func:`experiments.text.charlm.split_blocks`); ``splits``: the (train, val, test) byte counts of ``enwik8`` / ``text8``.
    ``seq_len``: the training and evaluation window (a phase schedule may change it);
    ``eval_windows``: evaluate the first this many disjoint windows of a split (0 = all).
    ``preset``: a recipe of :data:`CHARLM_RECIPES` supplying defaults for every table.
    """

    task: str = "charlm"
    preset: str = ""
    corpus: str = "stdlib"
    data_dir: str = ""
    max_bytes: int = 2_000_000
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    splits: tuple[int, int, int] = ENWIK8_SPLITS
    seq_len: int = 256
    eval_windows: int = 0

    def __post_init__(self) -> None:
        if self.task != "charlm":
            raise ValueError(f"data.task must be 'charlm' here, got {self.task!r}")
        if self.preset not in ("", *CHARLM_RECIPES):
            raise ValueError(f"data.preset must be '' or one of {list(CHARLM_RECIPES)}{cfgmod.suggest(self.preset, CHARLM_RECIPES)}, got {self.preset!r}")
        if self.corpus not in CORPORA:
            raise ValueError(f"data.corpus must be one of {list(CORPORA)}{cfgmod.suggest(self.corpus, CORPORA)}, got {self.corpus!r}")
        if self.corpus in ("dir", "enwik8", "text8") and not self.data_dir:
            raise ValueError(f"data.corpus = {self.corpus!r} needs data.data_dir (the directory with the files)")
        if self.max_bytes < 0:
            raise ValueError(f"data.max_bytes must be >= 0 (0 = no cap), got {self.max_bytes}")
        for name in ("val_fraction", "test_fraction"):
            v = getattr(self, name)
            if not 0.0 < v < 0.5:
                raise ValueError(f"data.{name} must be in (0, 0.5), got {v}")
        if len(self.splits) != 3 or any(s < 1 for s in self.splits):
            raise ValueError(f"data.splits must be three positive byte counts (train, val, test), got {list(self.splits)}")
        if self.seq_len < 2:
            raise ValueError(f"data.seq_len must be >= 2, got {self.seq_len}")
        if self.eval_windows < 0:
            raise ValueError(f"data.eval_windows must be >= 0 (0 = all), got {self.eval_windows}")


@dataclass
class PhaseConfig:
    """One phase of ``[stages]``: see :class:`experiments.train.phases.Phase`."""

    steps: int = 1
    seq_len: int = 0
    lr_scale: float = 1.0
    params: dict[str, int] = field(default_factory=dict)


@dataclass
class StagesConfig:
    """The ``[stages]`` table: staged training (off when it lists no phase).

    Either ``schedule``, an explicit list of phase tables (inline tables:
    ``schedule = [{steps = 100, seq_len = 128, params = {window = 32}}, ...]``), or ``preset = "doubling"``: ``phases`` phases of ``steps`` updates (one value, or
    one per phase) where phase ``k`` has ``seq_len * 2**k`` (``seq_len`` 0: ``data.seq_len /
    2**(phases - 1)``, so the last phase trains at ``data.seq_len``), ``params`` times ``2**k``
    and the learning rate divided by ``2**k`` (Longformer's 5-phase schedule with ``phases = 5``).
    """

    preset: str = ""
    phases: int = 0
    steps: tuple[int, ...] = ()
    seq_len: int = 0
    params: dict[str, int] = field(default_factory=dict)
    schedule: tuple[PhaseConfig, ...] = ()

    def __post_init__(self) -> None:
        if self.preset not in ("", "doubling"):
            raise ValueError(f"stages.preset must be '' or 'doubling', got {self.preset!r}")
        if self.preset and self.schedule:
            raise ValueError("stages: give either preset = 'doubling' or an explicit list, not both")
        if self.preset and self.phases < 1:
            raise ValueError(f"stages.preset = 'doubling' needs stages.phases >= 1, got {self.phases}")

    @property
    def enabled(self) -> bool:
        return bool(self.preset or self.schedule)


def _cpu_model() -> dict[str, Any]:
    return {"d_model": 64, "n_layers": 4, "n_heads": 4, "d_ff": 256, "dropout": 0.0,
            "attention": {"pattern": "sink_window:window=64,sinks=4", "block_size": 32}}


#: Recipes: default tables for a charlm run. ``cpu``: a 4-layer, 64-wide model on 256-byte
#: windows of the stdlib prose corpus, 600 updates of 16 windows, a few minutes on 2 cores; every
#: pattern of the ablation ends well below the unigram baseline (docs/language_modelling.md).
CHARLM_RECIPES: dict[str, dict[str, Any]] = {
    "cpu": {
        "data": {"corpus": "stdlib", "max_bytes": 2_000_000, "seq_len": 256, "eval_windows": 200},
        "model": _cpu_model(),
        "optim": {"lr": 6e-3, "betas": [0.9, 0.98], "eps": 1e-8, "weight_decay": 0.01, "schedule": "cosine",
                  "warmup_steps": 40, "min_lr_ratio": 0.1},
        "train": {"steps": 600, "batch_size": 16, "eval_every": 200, "eval_batches": 0, "eval_batch_size": 25,
                  "checkpoint_every": 100, "metric": "bpc", "mode": "min", "log_every": 20,
                  "clip_norm": 1.0, "test_split": "test"},
    },
}


def charlm_recipe(preset: str) -> dict[str, Any]:
    """A copy of the recipe's default tables (``data``, ``model``, ``optim``, ``train``)."""
    if preset not in CHARLM_RECIPES:
        raise ValueError(f"charlm preset must be one of {list(CHARLM_RECIPES)}, got {preset!r}")
    import copy

    return copy.deepcopy(CHARLM_RECIPES[preset])


def _default_train() -> TrainConfig:
    return TrainConfig(steps=1000, batch_size=16, eval_every=200, metric="bpc", mode="min", test_split="test")


@dataclass
class CharLMRunConfig:
    """The whole configuration of a charlm run (saved as ``runs/<name>/config.toml``).

    ``model`` is a :class:`experiments.models.decoder.DecoderConfig` table; its ``vocab_size`` is
    the data's (256 bytes) and ``max_len`` defaults to the longest sequence of the run.
    """

    run: RunConfig = field(default_factory=lambda: RunConfig(name="charlm"))
    data: CharLMDataConfig = field(default_factory=CharLMDataConfig)
    model: Any = None
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=_default_train)
    stages: StagesConfig = field(default_factory=StagesConfig)
