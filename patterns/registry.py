"""The pattern registry and spec strings.

A *pattern* is a plain function that builds an :class:`~sparsegraph.AttentionGraph`::

    @patterns.register("stripes")
    def stripes(n: int, *, stride: int = 8) -> np.ndarray:
        i, j = np.ogrid[:n, :n]
        return (j % stride == 0) | (i == j)          # a bool mask, or an AttentionGraph

Its first parameter is the sequence length ``n``. Keyword parameters named ``heads``, ``layer``
and ``seed`` are *context*: they are passed when the function declares them (a function without
``heads`` builds one graph shared by all heads; one without ``seed`` is deterministic). Every other
keyword parameter is a pattern *parameter*: listed by ``sparsegraph patterns``, settable from a
spec string, converted to its annotated type.

A *spec string* names a pattern and its parameters::

    bigbird:block=64,window=3,random=3,global=2
    dilated_window:window=8,dilation=[1,1,2,2]
    sliding_window:window=256|global_itc:indices=[0,5]

``name[:key=value,...]``; values are ints, floats, ``true``/``false``, bare strings, or lists in
``[a,b,...]``; a key that Python reserves (``global``) maps to the parameter ``global_``; ``|``
composes specs by union. ``get(spec)`` returns a :class:`Pattern` whose ``build(n, heads=1,
layer=0, seed=0)`` gives the graph: one route for built-ins and user patterns alike.

The registry dict is the only module-level mutable state in sparsegraph (by design).
"""

from __future__ import annotations

import dataclasses
import inspect
import keyword
import re
import types
import typing
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from sparsegraph.graph import AttentionGraph, Provenance

__all__ = [
    "Pattern",
    "PatternInfo",
    "ParamInfo",
    "UnionPattern",
    "register",
    "unregister",
    "get",
    "build",
    "available",
    "info",
    "parse_spec",
    "format_spec",
    "rng",
    "NO_GLOBALS",
]

CONTEXT_ARGS = ("heads", "layer", "seed")


def NO_GLOBALS(params: Mapping[str, Any]) -> int:
    """The ``global_tokens`` declaration of a pattern that never adds ETC global tokens."""
    return 0


#: name -> PatternInfo. The only module-level mutable state of the project.
_REGISTRY: dict[str, "PatternInfo"] = {}


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a registered pattern."""

    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    @property
    def spec_key(self) -> str:
        """The key used in spec strings (``global_`` is written ``global``)."""
        return _spec_key(self.name)

    def describe(self) -> str:
        typ = _type_name(self.annotation)
        if self.required:
            return f"{self.spec_key}: {typ} (required)"
        return f"{self.spec_key}: {typ} = {_format_value(self.default)}"


@dataclass(frozen=True)
class PatternInfo:
    """A registered pattern: its builder function and what it accepts."""

    name: str
    fn: Callable[..., Any]
    params: tuple[ParamInfo, ...]
    context: frozenset[str]
    summary: str
    #: ``params -> g``: the ETC global tokens the pattern adds, when it declared them (see
    #: :func:`register`); ``None``: count them on a built graph.
    global_tokens: Callable[[Mapping[str, Any]], int] | None = None

    def param(self, name: str) -> ParamInfo:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)


def _spec_key(name: str) -> str:
    if name.endswith("_") and keyword.iskeyword(name[:-1]):
        return name[:-1]
    return name


def _param_name(key: str) -> str:
    return key + "_" if keyword.iskeyword(key) else key


def register(name: str, *, replace: bool = False,
             global_tokens: Callable[[Mapping[str, Any]], int] | None = None,
             ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: make a pattern function first-class under ``name``.

    The function is returned unchanged, so it can still be called directly.
    Registering a name twice raises unless ``replace=True``.

    ``global_tokens``: for a pattern that adds ETC global tokens (``num_global > 0``), a function
    of its parameters (a dict with every parameter, defaults included) giving their number, so a
    model learns how many global embeddings it needs without building a graph. Patterns that do not
    declare it are counted on a graph built at the model's length (:meth:`Pattern.global_tokens`).
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"pattern name must be an identifier like 'my_pattern', got {name!r}")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY and not replace and _REGISTRY[name].fn is not fn:
            raise ValueError(
                f"pattern {name!r} is already registered (by {_REGISTRY[name].fn.__module__}); "
                "pass replace=True to override it"
            )
        _REGISTRY[name] = dataclasses.replace(_inspect_pattern(name, fn), global_tokens=global_tokens)
        return fn

    return deco


def unregister(name: str) -> None:
    """Remove a registered pattern (mainly for tests and notebooks)."""
    if name not in _REGISTRY:
        raise KeyError(f"no pattern named {name!r} is registered")
    del _REGISTRY[name]


def _inspect_pattern(name: str, fn: Callable[..., Any]) -> PatternInfo:
    sig = inspect.signature(fn)
    plist = list(sig.parameters.values())
    if not plist or plist[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD
    ):
        raise TypeError(f"pattern {name!r}: its first parameter must be the sequence length n")
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolved forward references: fall back to raw annotations
        hints = {}
    params: list[ParamInfo] = []
    context: set[str] = set()
    for p in plist[1:]:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(f"pattern {name!r}: *args/**kwargs are not allowed; declare each parameter")
        if p.name in CONTEXT_ARGS:
            context.add(p.name)
            continue
        ann = hints.get(p.name, p.annotation)
        if ann is inspect.Parameter.empty:
            ann = type(p.default) if p.default not in (inspect.Parameter.empty, None) else Any
        params.append(ParamInfo(p.name, ann, p.default))
    doc = inspect.getdoc(fn) or ""
    summary = doc.strip().splitlines()[0] if doc.strip() else ""
    return PatternInfo(name, fn, tuple(params), frozenset(context), summary)


def available() -> list[PatternInfo]:
    """Every registered pattern, sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def info(name: str) -> PatternInfo:
    """The registered pattern called ``name``; a ValueError lists the known names otherwise."""
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown pattern {name!r}; registered patterns: {known}")
    return _REGISTRY[name]


def rng(seed: int, *keys: int | str) -> np.random.Generator:
    """A NumPy generator for ``seed`` and the extra ``keys`` (layer, head, a salt string ...).

    PCG64 seeded through SeedSequence gives the same stream on every machine; strings are turned
    into integers with CRC-32 (stable across runs, unlike ``hash``).
    """
    ints = [int(seed)] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    if any(i < 0 for i in ints):
        raise ValueError(f"seed and rng keys must be non-negative, got {ints}")
    return np.random.default_rng(np.random.SeedSequence(ints))


# ---------------------------------------------------------------------- patterns (built specs)
class Pattern:
    """A registered pattern with its parameters bound: call ``build`` to get graphs.

    ``build(n, heads=1, layer=0, seed=0)`` is deterministic in all its arguments.
    """

    def __init__(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        self.info = info(name)
        self.name = name
        given = dict(params or {})
        resolved: dict[str, Any] = {}
        for key, value in given.items():
            pname = _param_name(key) if key not in {p.name for p in self.info.params} else key
            try:
                p = self.info.param(pname)
            except KeyError:
                expected = ", ".join(p.spec_key for p in self.info.params) or "none"
                raise ValueError(
                    f"pattern {name!r} has no parameter {key!r}; its parameters are: {expected}"
                ) from None
            if p.name in resolved:  # e.g. both "global" and "global_": one would silently win
                raise ValueError(f"pattern {name!r}: parameter {p.spec_key!r} given twice (as {key!r})")
            resolved[p.name] = _coerce(value, p.annotation, f"{name}.{p.spec_key}")
        missing = [p.spec_key for p in self.info.params if p.required and p.name not in resolved]
        if missing:
            raise ValueError(
                f"pattern {name!r} needs parameter(s) {', '.join(missing)}; "
                f"e.g. {name}:{','.join(m + '=...' for m in missing)}"
            )
        self.params: dict[str, Any] = resolved

    @property
    def all_params(self) -> dict[str, Any]:
        """Given parameters plus the defaults of the others."""
        out = {p.name: p.default for p in self.info.params if not p.required}
        out.update(self.params)
        return out

    @property
    def spec(self) -> str:
        """The canonical spec string (only the given parameters, sorted as declared)."""
        order = [p.name for p in self.info.params if p.name in self.params]
        return format_spec(self.name, {k: self.params[k] for k in order})

    @property
    def uses_seed(self) -> bool:
        return "seed" in self.info.context

    def global_tokens(self, n: int | None = None, heads: int = 1, layer: int = 0, seed: int = 0) -> int:
        """``g``: the ETC global tokens this pattern's graphs have (``num_global``; 0 for most).

        From the pattern's declaration (:func:`register`'s ``global_tokens``) when it has one;
        otherwise counted on ``build(n, heads, layer, seed)``, so ``n`` is then required.
        """
        declared = self.info.global_tokens
        if declared is not None:
            g = declared(self.all_params)
            if isinstance(g, bool) or not isinstance(g, int) or g < 0:
                raise ValueError(f"pattern {self.spec!r}: its global_tokens declaration returned "
                                 f"{g!r}, expected an int >= 0")
            return g
        if n is None:
            raise ValueError(
                f"pattern {self.spec!r} does not declare its ETC global tokens "
                f"(@register(..., global_tokens=...)); pass n to count them on a built graph")
        return int(self.build(n, heads=heads, layer=layer, seed=seed).num_global)

    def build(self, n: int, heads: int = 1, layer: int = 0, seed: int = 0) -> AttentionGraph:
        """The pattern's graph for sequence length ``n`` (plus any ETC global tokens)."""
        n = _check_arg("n", n, 1)
        heads = _check_arg("heads", heads, 1)
        layer = _check_arg("layer", layer, 0)
        seed = _check_arg("seed", seed, 0)
        ctx = {"heads": heads, "layer": layer, "seed": seed}
        kwargs = {**self.params, **{k: v for k, v in ctx.items() if k in self.info.context}}
        out = self.info.fn(n, **kwargs)
        if isinstance(out, AttentionGraph):
            graph = out
        elif sp.issparse(out) or hasattr(out, "shape"):
            graph = AttentionGraph.from_mask(out) if not sp.issparse(out) else AttentionGraph(out)
        else:
            raise TypeError(
                f"pattern {self.name!r} returned {type(out).__name__}; "
                "a pattern must return an AttentionGraph, a bool mask or a scipy sparse matrix"
            )
        if graph.heads != heads:
            if graph.heads == 1:
                graph = graph.expand_heads(heads)
            else:
                raise ValueError(
                    f"pattern {self.name!r} built {graph.heads} heads but heads={heads} was asked for"
                )
        prov = Provenance(
            name=self.name, params=self.all_params, seed=seed if self.uses_seed else None,
            layer=layer, spec=self.spec,
        )
        return graph.with_provenance(prov)

    def __or__(self, other: "Pattern | UnionPattern") -> "UnionPattern":
        return UnionPattern([self, other])

    def __repr__(self) -> str:
        return f"Pattern({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and self.spec == other.spec

    def __hash__(self) -> int:
        return hash(self.spec)


class UnionPattern:
    """The union of several patterns (a spec with ``|``).

    Parts are built with the same ``n``, ``heads``, ``layer`` and ``seed``. When some part adds
    ETC global tokens (``num_global = g > 0``), the other parts are placed over the ``n`` regular
    tokens behind them (``AttentionGraph.pad_front(g)``); parts with different nonzero ``g`` raise.
    """

    def __init__(self, parts: Sequence["Pattern | UnionPattern"]) -> None:
        flat: list[Pattern] = []
        for p in parts:
            flat.extend(p.parts if isinstance(p, UnionPattern) else [p])
        if not flat:
            raise ValueError("a union needs at least one pattern")
        self.parts: tuple[Pattern, ...] = tuple(flat)

    @property
    def spec(self) -> str:
        return "|".join(p.spec for p in self.parts)

    @property
    def name(self) -> str:
        return self.spec

    @property
    def uses_seed(self) -> bool:
        return any(p.uses_seed for p in self.parts)

    def global_tokens(self, n: int | None = None, heads: int = 1, layer: int = 0, seed: int = 0) -> int:
        """``g`` of the union: the parts' largest (parts without globals are placed behind them)."""
        return max(p.global_tokens(n, heads=heads, layer=layer, seed=seed) for p in self.parts)

    def build(self, n: int, heads: int = 1, layer: int = 0, seed: int = 0) -> AttentionGraph:
        graphs = [p.build(n, heads=heads, layer=layer, seed=seed) for p in self.parts]
        g = max(x.num_global for x in graphs)
        aligned = []
        for part, x in zip(self.parts, graphs):
            if x.num_global == g:
                aligned.append(x)
            elif x.num_global == 0:
                aligned.append(x.pad_front(g))
            else:
                raise ValueError(
                    f"cannot combine {part.spec!r} (num_global={x.num_global}) with a part that "
                    f"has num_global={g}"
                )
        out = aligned[0]
        for x in aligned[1:]:
            out = out | x
        prov = Provenance(
            name=self.spec, params={p.spec: p.all_params for p in self.parts},
            seed=seed if self.uses_seed else None, layer=layer, spec=self.spec,
        )
        return out.with_provenance(prov)

    def __or__(self, other: "Pattern | UnionPattern") -> "UnionPattern":
        return UnionPattern([self, other])

    def __repr__(self) -> str:
        return f"UnionPattern({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnionPattern) and self.spec == other.spec

    def __hash__(self) -> int:
        return hash(self.spec)


def get(spec: "str | Pattern | UnionPattern") -> "Pattern | UnionPattern":
    """The pattern a spec string names (``name:k=v,...``, ``|`` for union); patterns pass through."""
    if isinstance(spec, (Pattern, UnionPattern)):
        return spec
    parts = parse_spec(spec)
    pats = [Pattern(name, params) for name, params in parts]
    return pats[0] if len(pats) == 1 else UnionPattern(pats)


def build(spec: "str | Pattern | UnionPattern", n: int, heads: int = 1, layer: int = 0,
          seed: int = 0) -> AttentionGraph:
    """Shorthand for ``get(spec).build(n, heads, layer, seed)``."""
    return get(spec).build(n, heads=heads, layer=layer, seed=seed)


# ---------------------------------------------------------------------- spec strings
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_spec(spec: str) -> list[tuple[str, dict[str, Any]]]:
    """Parse ``name:k=v,...|name2:...`` into ``[(name, {key: value}), ...]``.

    Values are parsed literally (int, float, ``true``/``false``, ``none``, ``[list]``, else a bare
    string); conversion to the parameter's type happens in :class:`Pattern`.
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a str, got {type(spec).__name__}")
    if not spec.strip():
        raise ValueError("spec must not be empty; e.g. 'sliding_window:window=64'")
    out = []
    for part in _split_top(spec, "|", spec):
        part = part.strip()
        name, _, rest = part.partition(":")
        name = name.strip()
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"malformed spec {spec!r}: {name!r} is not a pattern name")
        params: dict[str, Any] = {}
        if rest.strip():
            for item in _split_top(rest, ",", spec):
                key, eq, value = item.partition("=")
                key = key.strip()
                if not eq or not _NAME_RE.fullmatch(key) or not value.strip():
                    raise ValueError(
                        f"malformed spec {spec!r}: expected key=value, got {item.strip()!r}"
                    )
                if key in params:
                    raise ValueError(f"malformed spec {spec!r}: parameter {key!r} given twice")
                params[key] = _parse_value(value.strip(), spec)
        elif _:
            raise ValueError(f"malformed spec {spec!r}: nothing after ':' in {part!r}")
        out.append((name, params))
    return out


def format_spec(name: str, params: Mapping[str, Any]) -> str:
    """Inverse of :func:`parse_spec` for one pattern."""
    if not params:
        return name
    items = ",".join(f"{_spec_key(k)}={_format_value(v)}" for k, v in params.items())
    return f"{name}:{items}"


def split_outside_brackets(text: str, sep: str, where: str) -> list[str]:
    """``text`` split on ``sep`` where it is not inside ``[...]`` (a spec's list values contain
    commas); unbalanced brackets raise a ``ValueError`` that starts with ``where``."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"{where}: unbalanced ']'")
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise ValueError(f"{where}: unbalanced '['")
    parts.append("".join(cur))
    return parts


def _split_top(text: str, sep: str, spec: str) -> list[str]:
    """Split on ``sep`` outside brackets; an empty part is an error."""
    parts = split_outside_brackets(text, sep, f"malformed spec {spec!r}")
    if any(not p.strip() for p in parts):
        raise ValueError(f"malformed spec {spec!r}: empty part around {sep!r}")
    return parts


def _parse_value(text: str, spec: str) -> Any:
    if text.startswith("["):
        if not text.endswith("]"):
            raise ValueError(f"malformed spec {spec!r}: list value {text!r} must end with ']'")
        inner = text[1:-1].strip()
        return [] if not inner else [_parse_value(t.strip(), spec) for t in _split_top(inner, ",", spec)]
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        pass
    return text


def _format_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_format_value(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _type_name(ann: Any) -> str:
    if ann is Any or ann is inspect.Parameter.empty:
        return "any"
    if isinstance(ann, type):
        return ann.__name__
    return str(ann).replace("typing.", "")


def _coerce(value: Any, ann: Any, where: str) -> Any:
    """Convert a parsed spec value (or a Python value) to the annotated type, or raise."""
    if ann is Any or ann is inspect.Parameter.empty:
        return value
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        # Prefer an exact type match, then conversions, in declaration order.
        for a in args:
            if a is type(None):
                continue
            if isinstance(a, type) and isinstance(value, a) and not (a is int and isinstance(value, bool)):
                return value
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except (TypeError, ValueError):
                pass
        raise TypeError(f"{where}: got {value!r}, expected {_type_name(ann)}")
    if origin is Literal:
        if value in args:
            return value
        raise ValueError(f"{where}: got {value!r}, expected one of {list(args)}")
    if origin in (tuple, list, Sequence, typing.Sequence) or ann in (tuple, list):
        item = args[0] if args else Any
        seq = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
        return tuple(_coerce(x, item, where) for x in seq)
    if ann is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise TypeError(f"{where}: got {value!r}, expected true or false")
    if ann is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError(f"{where}: got {value!r}, expected an int")
    if ann is float:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            return float(value)
        raise TypeError(f"{where}: got {value!r}, expected a number")
    if ann is str:
        if isinstance(value, str):
            return value
        return str(value)
    return value


def _check_arg(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
