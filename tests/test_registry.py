"""The pattern registry and spec strings: parsing, formatting, coercion, unions, user patterns."""

from __future__ import annotations

import keyword
from typing import Iterator, Literal

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from sparsegraph import patterns
from sparsegraph.patterns import examples
from sparsegraph.patterns.registry import format_spec, parse_spec
from sparsegraph.graph import AttentionGraph

# ---------------------------------------------------------------------- generated specs
RESERVED_WORDS = {"true", "false", "none", "inf", "nan", "infinity"}

identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True).filter(lambda s: not keyword.iskeyword(s))
bare_strings = st.from_regex(r"[A-Za-z][A-Za-z_]{0,7}", fullmatch=True).filter(
    lambda s: s.lower() not in RESERVED_WORDS
)
scalars = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    bare_strings,
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)


@st.composite
def specs(draw):
    name = draw(identifiers)
    keys = draw(st.lists(st.one_of(identifiers, st.sampled_from(["global_", "lambda_", "class_"])),
                         max_size=5, unique_by=lambda k: k.rstrip("_")))
    return name, {k: draw(values) for k in keys}


def spec_key(k: str) -> str:
    return k[:-1] if k.endswith("_") and keyword.iskeyword(k[:-1]) else k


@given(spec=specs())
def test_format_then_parse_round_trip(spec) -> None:
    name, params = spec
    text = format_spec(name, params)
    (parsed_name, parsed), = parse_spec(text)
    assert parsed_name == name
    # python keywords travel as their bare spelling: global_ is written (and read back) as global
    assert parsed == {spec_key(k): v for k, v in params.items()}
    assert format_spec(parsed_name, parsed) == text  # canonical text is a fixed point


@given(parts=st.lists(specs(), min_size=1, max_size=3))
def test_union_specs_parse_part_by_part(parts) -> None:
    text = "|".join(format_spec(n, p) for n, p in parts)
    parsed = parse_spec(text)
    assert [n for n, _ in parsed] == [n for n, _ in parts]
    assert [p for _, p in parsed] == [{spec_key(k): v for k, v in p.items()} for _, p in parts]


def test_whitespace_is_ignored() -> None:
    assert parse_spec(" bigbird : block = 64 , window=3 | full ") == [
        ("bigbird", {"block": 64, "window": 3}), ("full", {})
    ]


@pytest.mark.parametrize(
    "text",
    ["", "   ", "a:", "a:b", "a:b=", "a:=1", "a|", "|a", "a||b", "a:b=[1,2", "a:b=1]", "1abc",
     "a:b=1,b=2", "a b", "a:b=1,", "a:b-c=1"],
)
def test_malformed_specs_raise(text: str) -> None:
    with pytest.raises(ValueError, match="spec"):
        parse_spec(text)


def test_spec_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="spec must be a str"):
        parse_spec(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- user patterns
@pytest.fixture
def user_patterns() -> Iterator[None]:
    """Registers a few patterns for one test and removes them afterwards."""

    @patterns.register("t_band")
    def t_band(
        n: int,
        *,
        width: int,
        global_: int = 0,
        flag: bool = False,
        ratio: float = 0.5,
        items: tuple[int, ...] = (),
        mode: Literal["a", "b"] = "a",
        heads: int = 1,
        layer: int = 0,
        seed: int = 0,
    ) -> AttentionGraph:
        """A test band: |i - j| <= width, plus the first global_ rows; shifts with the seed."""
        i, j = np.ogrid[:n, :n]
        mask = np.abs(i - j) <= width
        mask[:global_] = True
        if flag:
            mask = mask.T.copy()
        return AttentionGraph.from_mask(np.stack([np.roll(mask, seed + layer + h, axis=1) for h in range(heads)]))

    @patterns.register("t_stripes")
    def t_stripes(n: int, *, stride: int = 2) -> np.ndarray:
        """Stripes: every stride-th key, as a bool mask."""
        i, j = np.ogrid[:n, :n]
        return np.broadcast_to(j % stride == 0, (n, n)) | (i == j)

    @patterns.register("t_sparse")
    def t_sparse(n: int) -> sp.csr_matrix:
        return sp.eye(n, dtype=bool, format="csr")

    @patterns.register("t_wrong_heads")
    def t_wrong_heads(n: int, *, heads: int = 1) -> AttentionGraph:
        return AttentionGraph.from_mask(np.ones((heads + 1, n, n), dtype=bool))

    @patterns.register("t_wrong_type")
    def t_wrong_type(n: int) -> list:
        return [[True]]

    @patterns.register("t_etc")
    def t_etc(n: int, *, g: int = 1) -> AttentionGraph:
        return patterns.global_etc(n, g=g)

    names = ["t_band", "t_stripes", "t_sparse", "t_wrong_heads", "t_wrong_type", "t_etc"]
    try:
        yield
    finally:
        for name in names:
            patterns.unregister(name)


def test_user_pattern_is_first_class(user_patterns, capsys) -> None:
    from sparsegraph.experiments import cli

    assert "t_band" in {p.name for p in patterns.available()}
    p = patterns.get("t_band:width=1,global=2,flag=true,ratio=1,items=[3,4],mode=b")
    assert p.params == {"width": 1, "global_": 2, "flag": True, "ratio": 1.0, "items": (3, 4), "mode": "b"}
    assert isinstance(p.params["ratio"], float)
    assert p.spec == "t_band:width=1,global=2,flag=true,ratio=1.0,items=[3,4],mode=b"
    assert patterns.get(p.spec) == p and hash(patterns.get(p.spec)) == hash(p)
    g = p.build(8, heads=2, layer=1, seed=3)
    assert g.heads == 2 and g.provenance.seed == 3 and g.provenance.layer == 1
    assert g == patterns.build(p.spec, 8, heads=2, layer=1, seed=3)
    # usable in a union with a built-in, and listed by the CLI
    u = patterns.build("t_band:width=0|sliding_window:window=3", 8)
    assert u == patterns.build("sliding_window:window=3", 8)
    assert cli.main(["patterns"]) == 0
    out = capsys.readouterr().out
    assert "t_band  [uses layer, seed]" in out and "global: int = 0" in out


def test_context_arguments_only_when_declared(user_patterns) -> None:
    stripes = patterns.get("t_stripes:stride=3")
    assert not stripes.uses_seed
    g = stripes.build(9, heads=3, seed=5)
    assert g.heads == 3 and g.shared and g.provenance.seed is None
    i, j = np.ogrid[:9, :9]
    assert (g.to_dense(2) == ((j % 3 == 0) | (i == j))).all()
    assert patterns.build("t_sparse", 4).nnz == 4
    with pytest.raises(ValueError, match="built 3 heads but heads=2"):
        patterns.build("t_wrong_heads", 4, heads=2)
    with pytest.raises(TypeError, match="returned list"):
        patterns.build("t_wrong_type", 4)


def test_union_pads_regular_parts_behind_etc_tokens(user_patterns) -> None:
    u = patterns.get("t_etc:g=2|t_band:width=0")
    assert isinstance(u, patterns.UnionPattern) and u.spec == "t_etc:g=2|t_band:width=0"
    g = u.build(5)
    assert g.num_global == 2 and g.n_q == 7
    d = g.to_dense(0)
    assert (d[2:, 2:] == np.eye(5, dtype=bool)).all() and d[:2].all() and d[:, :2].all()
    with pytest.raises(ValueError, match="num_global=3"):
        patterns.build("t_etc:g=2|t_etc:g=3", 5)
    both = patterns.get("t_band:width=0") | patterns.get("t_stripes")
    assert isinstance(both, patterns.UnionPattern) and len((both | both).parts) == 4


def test_registration_errors(user_patterns) -> None:
    with pytest.raises(ValueError, match="already registered"):
        patterns.register("t_band")(lambda n: np.eye(n, dtype=bool))
    with pytest.raises(ValueError, match="already registered"):
        patterns.register("sliding_window")(lambda n, *, window=1: np.eye(n, dtype=bool))
    with pytest.raises(ValueError, match="identifier"):
        patterns.register("not valid")
    with pytest.raises(TypeError, match="sequence length n"):
        patterns.register("t_no_n")(lambda *, k=1: None)
    with pytest.raises(TypeError, match=r"\*args/\*\*kwargs"):
        patterns.register("t_kwargs")(lambda n, **kw: None)
    with pytest.raises(KeyError, match="t_never"):
        patterns.unregister("t_never")
    # replace=True overrides, the original comes back for the fixture's cleanup
    original = patterns.info("t_stripes").fn
    patterns.register("t_stripes", replace=True)(lambda n: np.zeros((n, n), dtype=bool))
    assert patterns.build("t_stripes", 3).nnz == 0
    patterns.register("t_stripes", replace=True)(original)


@pytest.mark.parametrize(
    "spec, err, match",
    [
        ("no_such_pattern", ValueError, "unknown pattern 'no_such_pattern'; registered patterns: .*bigbird"),
        ("t_band", ValueError, "needs parameter.*width"),
        ("t_band:width=1,colour=3", ValueError, "has no parameter 'colour'; its parameters are: width"),
        ("t_band:width=abc", TypeError, r"t_band\.width: got 'abc', expected an int"),
        ("t_band:width=1.5", TypeError, r"t_band\.width: got 1.5, expected an int"),
        ("t_band:width=1,flag=1", TypeError, r"t_band\.flag: got 1, expected true or false"),
        ("t_band:width=1,ratio=fast", TypeError, r"t_band\.ratio: got 'fast', expected a number"),
        ("t_band:width=1,mode=c", ValueError, r"t_band\.mode: got 'c', expected one of \['a', 'b'\]"),
        ("t_band:width=1,items=[1,x]", TypeError, r"t_band\.items"),
        ("t_band:width=1,global=1,global_=2", ValueError, "given twice"),
    ],
)
def test_bad_specs_name_the_problem(user_patterns, spec: str, err: type, match: str) -> None:
    with pytest.raises(err, match=match):
        patterns.get(spec)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(n=0), ValueError, "n must be >= 1, got 0"),
        (dict(n=4, heads=0), ValueError, "heads must be >= 1"),
        (dict(n=4, seed=-1), ValueError, "seed must be >= 0"),
        (dict(n=4, layer=-2), ValueError, "layer must be >= 0"),
        (dict(n="4"), TypeError, "n must be an int"),
        (dict(n=4, heads=True), TypeError, "heads must be an int"),
    ],
)
def test_bad_build_arguments(kwargs: dict, err: type, match: str) -> None:
    n = kwargs.pop("n")
    with pytest.raises(err, match=match):
        patterns.get("full").build(n, **kwargs)


def test_builtin_keyword_parameter_maps_global() -> None:
    p = patterns.get("bigbird:block=4,global=1")
    assert p.params["global_"] == 1 and p.spec == "bigbird:block=4,global=1"
    assert patterns.get("bigbird:block=4,global_=1") == p
    assert "global: int = 2" in patterns.info("bigbird").param("global_").describe()


# ---------------------------------------------------------------------- rng
@given(seed=st.integers(0, 2**63), keys=st.lists(st.one_of(st.integers(0, 2**31), identifiers), max_size=3))
def test_rng_is_a_function_of_its_keys(seed: int, keys: list) -> None:
    a = patterns.rng(seed, *keys).integers(0, 2**62, size=4)
    b = patterns.rng(seed, *keys).integers(0, 2**62, size=4)
    assert np.array_equal(a, b)
    c = patterns.rng(seed, *keys, "other").integers(0, 2**62, size=4)
    assert not np.array_equal(a, c)


def test_rng_rejects_negative_keys() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        patterns.rng(-1)
    with pytest.raises(ValueError, match="non-negative"):
        patterns.rng(0, 1, -5)


# ---------------------------------------------------------------------- declared global tokens
@pytest.mark.parametrize("spec,n,heads", sorted({(s, 48, 2) for s in examples.SMALL}
                                                 | {(s, 256, h) for s, h in examples.GALLERY.values()}))
def test_declared_global_tokens_match_the_built_graph(spec: str, n: int, heads: int) -> None:
    # A model sizes its ETC embeddings from the declaration, without building a graph: every
    # built-in's declaration must agree with the graphs it builds.
    pat = patterns.get(spec)
    for length in (n, 2 * n):
        assert pat.global_tokens() == pat.build(length, heads=heads, seed=1).num_global


def test_every_builtin_declares_its_global_tokens() -> None:
    builtin = [p for p in patterns.available() if p.fn.__module__.startswith("sparsegraph.patterns.")]
    assert builtin and all(p.global_tokens is not None for p in builtin)


def test_undeclared_global_tokens_need_a_length() -> None:
    @patterns.register("test_undeclared_globals")
    def undeclared(n: int):
        return patterns.build("global_etc:g=3", n)

    try:
        pat = patterns.get("test_undeclared_globals")
        with pytest.raises(ValueError, match="does not declare its ETC global tokens"):
            pat.global_tokens()
        assert pat.global_tokens(16) == 3
        assert patterns.get("test_undeclared_globals|sliding_window:window=3").global_tokens(16) == 3
    finally:
        patterns.unregister("test_undeclared_globals")
