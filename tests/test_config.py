"""Typed TOML configs: round trips, overrides, and clear errors for every kind of mistake."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import assume, given, strategies as st

from sparsegraph.experiments.infra import config as C
from sparsegraph.experiments.infra.config import ConfigError
from sparsegraph.experiments.train.config import OptimConfig, RunConfig, TrainConfig


@dataclass
class Inner:
    a: int = 0
    b: float = 0.0
    s: str = ""
    flag: bool = False
    choice: Literal["x", "y", "zeta"] = "x"
    opt: int | None = 3
    maybe: str | None = None


@dataclass
class Outer:
    required: int
    inner: Inner = field(default_factory=Inner)
    items: tuple[int, ...] = ()
    names: list[str] = field(default_factory=list)
    table: dict[str, float] = field(default_factory=dict)
    pair: tuple[float, str] = (0.0, "")
    either: int | str = 0
    path: Path = Path(".")


@dataclass
class Sections:
    run: RunConfig = field(default_factory=RunConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


finite = st.floats(allow_nan=False, allow_infinity=True, width=64)
keys = st.text(min_size=1, max_size=8)

inner_st = st.builds(
    Inner, a=st.integers(-2**63, 2**63 - 1), b=finite, s=st.text(), flag=st.booleans(),
    choice=st.sampled_from(["x", "y", "zeta"]), opt=st.none() | st.integers(-5, 5),
    maybe=st.none() | st.text(),
)
outer_st = st.builds(
    Outer, required=st.integers(), inner=inner_st, items=st.lists(st.integers(-9, 9), max_size=4).map(tuple),
    names=st.lists(st.text(max_size=5), max_size=3), table=st.dictionaries(keys, finite, max_size=3),
    pair=st.tuples(finite, st.text(max_size=5)), either=st.integers() | st.text(max_size=5),
    path=st.text(alphabet="abc/._-", min_size=1, max_size=8).map(Path),
)


@given(outer_st)
def test_toml_round_trip(obj: Outer) -> None:
    """to_toml -> load gives an equal object, for every field type (unicode, escapes, inf, None)."""
    text = C.to_toml(obj)
    back = C.loads(Outer, text)
    # `either: int | str`: a string that spells an int still comes back as the string (TOML is typed).
    assert back == obj


@given(st.text())
def test_toml_strings_are_valid_toml(s: str) -> None:
    """Every string (control characters, DEL, quotes, backslashes, unicode) is escaped correctly."""
    assert tomllib.loads(f"v = {C._toml_str(s)}")["v"] == s


def test_standard_sections_round_trip_and_nan() -> None:
    cfg = Sections(optim=OptimConfig(lr=3e-4, betas=(0.9, 0.98), schedule="rsqrt", warmup_steps=10),
                   train=TrainConfig(steps=7, batch_size=12, grad_accum=3, precision="bf16"))
    assert C.loads(Sections, C.to_toml(cfg)) == cfg
    # NaN is written as TOML nan (and comes back as nan).
    @dataclass
    class F:
        x: float = 0.0
    assert math.isnan(C.loads(F, C.to_toml(F(x=float("nan")))).x)


@given(st.sampled_from([f.name for f in dataclasses.fields(TrainConfig)]), st.data())
def test_mistyped_key_names_key_suggestion_and_valid_keys(name: str, data) -> None:
    i = data.draw(st.integers(0, len(name) - 1))
    typo = name[:i] + name[i + 1:] if len(name) > 3 else name + "x"  # drop a letter
    assume(typo and typo not in {f.name for f in dataclasses.fields(TrainConfig)})
    with pytest.raises(ConfigError) as e:
        C.loads(Sections, f"[train]\n{typo} = 1\n", source="my.toml")
    msg = str(e.value)
    assert "my.toml" in msg and f"'train.{typo}'" in msg and "valid keys in [train]" in msg
    assert f"did you mean 'train.{name}'" in msg or "did you mean 'train." in msg
    # The same typo as a command-line override fails the same way, before anything is built.
    with pytest.raises(ConfigError) as e2:
        C.loads(Sections, "", [f"train.{typo}=1"])
    assert f"'train.{typo}'" in str(e2.value) and "valid keys in [train]" in str(e2.value)


def test_unknown_section_suggests_closest() -> None:
    with pytest.raises(ConfigError, match=r"unknown config key 'optimizer' \(did you mean 'optim'\?\); valid keys in the top level: optim, run, train"):
        C.loads(Sections, "[optimizer]\nlr = 1.0\n")


@pytest.mark.parametrize(
    "toml, key, expected",
    [
        ('[train]\nsteps = "ten"', "train.steps", "expected int, got 'ten'"),
        ("[train]\nsteps = 2.0", "train.steps", "expected int, got 2.0"),
        ("[train]\nsteps = true", "train.steps", "expected int, got True"),
        ("[optim]\nlr = true", "optim.lr", "expected float, got True"),
        ('[train]\nprecision = "bf61"', "train.precision", "did you mean 'bf16'"),
        ("[optim]\nbetas = [0.9]", "optim.betas", "(1 items, expected 2)"),
        ('[run]\nname = 3', "run.name", "expected str, got 3"),
        ("train = 3", "train", "expected table [TrainConfig], got 3"),
    ],
)
def test_wrong_value_type_names_key_value_and_type(toml: str, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as e:
        C.loads(Sections, toml)
    assert f"'{key}'" in str(e.value) and expected in str(e.value)


@given(st.integers(-10**9, 10**9))
def test_int_is_accepted_for_float(x: int) -> None:
    @dataclass
    class F:
        v: float = 0.5
    out = C.loads(F, f"v = {x}")
    assert isinstance(out.v, float) and out.v == float(x)


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match=r"missing config key 'required' \(expected int\)"):
        C.loads(Outer, "")


def test_post_init_checks_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"optim.lr must be a finite number > 0, got -1.0"):
        C.loads(Sections, "[optim]\nlr = -1")
    with pytest.raises(ValueError, match=r"train.batch_size \(10\) must be divisible by train.grad_accum \(3\)"):
        C.loads(Sections, "[train]\nbatch_size = 10\ngrad_accum = 3")


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12))
def test_override_of_a_string_field_is_taken_verbatim(text: str) -> None:
    """``--set run.out_dir=...``: whatever is typed is the string (numbers and words alike)."""
    assume(text == text.strip() and "\n" not in text and "\r" not in text)
    try:
        quoted = isinstance(tomllib.loads(f"v = {text}")["v"], str)
    except tomllib.TOMLDecodeError:
        quoted = False
    assume(not quoted)
    cfg = C.loads(Sections, "", [f"run.out_dir={text}"])
    assert cfg.run.out_dir == text


def test_overrides_are_typed_by_the_schema() -> None:
    cfg = C.loads(
        Sections, "[train]\nsteps = 5\n",
        ["train.steps=40", "optim.lr=3e-4", "optim.betas=[0.9, 0.98]", "run.name=123",
         'run.out_dir="quoted dir"', "optim.no_decay=[]", "train.precision=bf16"],
    )
    assert cfg.train.steps == 40 and cfg.optim.lr == 3e-4 and cfg.optim.betas == (0.9, 0.98)
    assert cfg.run.name == "123" and cfg.run.out_dir == "quoted dir" and cfg.optim.no_decay == ()
    assert cfg.train.precision == "bf16"
    o = C.loads(Outer, "required = 1", ["inner.opt=none", "inner.maybe=hello", "either=abc", "either=7"])
    assert o.inner.opt is None and o.inner.maybe == "hello" and o.either == 7
    with pytest.raises(ConfigError, match=r"override must look like section.key=value, got 'train.steps'"):
        C.loads(Sections, "", ["train.steps"])
    with pytest.raises(ConfigError, match=r"'train.steps': expected int, got 'x1'"):
        C.loads(Sections, "", ["train.steps=x1"])


def test_load_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        C.load(Sections, tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nsteps = 1\n")
    with pytest.raises(ConfigError, match=r"bad.toml: not valid TOML"):
        C.load(Sections, bad)
    with pytest.raises(IsADirectoryError):
        C.load(Sections, tmp_path)


def test_save_writes_loadable_file(tmp_path: Path) -> None:
    cfg = Sections(run=RunConfig(name="x", seed=3))
    C.save(cfg, tmp_path / "config.toml")
    assert C.load(Sections, tmp_path / "config.toml") == cfg
    assert not list(tmp_path.glob(".tmp-*"))


@dataclass
class Preset:
    """A parent whose sections have their own defaults (like a task preset)."""

    train: TrainConfig = field(default_factory=lambda: TrainConfig(steps=77, batch_size=6, metric="loss", mode="min"))
    table: dict[str, int] = field(default_factory=lambda: {"a": 1, "b": 2})


def test_partial_table_keeps_the_parents_section_defaults() -> None:
    """``[train] steps = 5`` changes steps only; the rest of [train] keeps the parent's defaults,
    not TrainConfig's own. A dict-typed field is replaced, not merged."""
    cfg = C.loads(Preset, "[train]\nsteps = 5\n[table]\nc = 3\n")
    assert cfg.train == TrainConfig(steps=5, batch_size=6, metric="loss", mode="min")
    assert cfg.table == {"c": 3}
    cfg2 = C.loads(Preset, "", ["train.eval_every=4"])
    assert (cfg2.train.steps, cfg2.train.eval_every, cfg2.train.metric) == (77, 4, "loss")
