"""Typed configurations: dataclasses loaded from TOML, overridable from the command line.

A configuration is a (nested) dataclass. Each field's type annotation is its schema::

    @dataclass
    class OptimConfig:
        lr: float = 1e-3
        schedule: Literal["linear", "cosine", "rsqrt", "constant"] = "linear"

:func:`load` reads a TOML file (``tomllib``), applies ``section.key=value`` overrides (the
``--set`` option of ``sparsegraph train`` / ``pretrain``) and builds the dataclass, checking every
key and value on the way:

- an unknown key is an error naming the key, the closest valid key (``difflib``) and all valid keys
  of its table; nothing is silently ignored;
- a value of the wrong type is an error naming the key, the value and the expected type (``bool``
  is not accepted for ``int``; ``int`` is accepted for ``float``; ``Literal`` fields list their
  choices);
- a field without a default that the file does not set is an error naming the key.

:func:`to_toml` writes any such dataclass back as TOML (a small writer: ``tomli_w`` is not a
dependency), so the whole resolved configuration of a run is saved as ``runs/<name>/config.toml``
and ``load`` of that file rebuilds an equal object.

Supported field types: ``bool``, ``int``, ``float``, ``str``, ``pathlib.Path``, ``Literal[...]``,
``list[T]``, ``tuple[T, ...]``, ``tuple[T1, T2]``, ``dict[str, T]``, nested dataclasses,
unions (``int | str``; ``T | None`` where ``None`` is spelt by omitting the key, or ``none`` in an
override) and ``Any`` (taken as it comes).

The public pieces the commands build on: :func:`merge` (lay one table over another, nested
dataclass tables key by key), :func:`convert` (check and convert one value against a type),
:class:`RawValue` (an override value as typed, converted once its field's type is known) and
:func:`suggest` (the "did you mean" tail of an error). The trainer's own sections live with the
trainer (:mod:`sparsegraph.experiments.train.config`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Sequence, TypeVar

__all__ = [
    "ConfigError",
    "RawValue",
    "convert",
    "merge",
    "suggest",
    "load",
    "loads",
    "from_dict",
    "to_dict",
    "to_toml",
    "save",
    "parse_override",
    "apply_overrides",
    "replace_path",
]

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or override that does not match its dataclass schema."""


# ---------------------------------------------------------------------------------------------
# Reading: dict -> dataclass with checks
# ---------------------------------------------------------------------------------------------


class RawValue(str):
    """An override value as typed on the command line; converted once its field type is known."""


def suggest(word: str, choices: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean 'prefix.closest'?)`` when a choice is close to ``word`` (difflib), else ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {prefix + close[0]!r}?)" if close else ""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "none"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple, dict, Sequence):
        args = typing.get_args(tp)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return f"array of {_type_name(args[0])}"
        if origin is tuple:
            return "array of [" + ", ".join(_type_name(a) for a in args) + "]"
        if origin is dict:
            return f"table of {_type_name(args[1]) if len(args) == 2 else 'values'}"
        return f"array of {_type_name(args[0])}" if args else "array"
    if dataclasses.is_dataclass(tp):
        return f"table [{tp.__name__}]"
    if tp is Any:
        return "any value"
    return getattr(tp, "__name__", str(tp))


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception as e:  # unresolvable annotation: a programming error in the schema
        raise TypeError(f"cannot resolve the type annotations of {cls.__name__}: {e}") from e


def _parse_raw(raw: RawValue, key: str) -> Any:
    """An override's text as a TOML value; text that is not valid TOML is a bare string."""
    text = str(raw).strip()
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _fail(key: str, value: Any, tp: Any, extra: str = "") -> ConfigError:
    return ConfigError(f"config key {key!r}: expected {_type_name(tp)}, got {value!r}{extra}")


def convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert it (arrays -> tuples, ...)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)

    if isinstance(value, RawValue):
        # A string field takes the override text verbatim (`--set run.name=123` is the name "123");
        # a quoted TOML string is unquoted. Other types parse the text as a TOML value.
        if tp is str or tp is Path or (origin is Literal and all(isinstance(a, str) for a in args)):
            parsed = _parse_raw(value, key)
            value = parsed if isinstance(parsed, str) else str(value).strip()
        elif origin in (typing.Union, types.UnionType):
            if type(None) in args and str(value).strip().lower() in ("none", "null"):
                return None
            parsed = _parse_raw(value, key)
            # A bare word for a union containing str stays a string.
            value = parsed
        elif tp is Any:
            value = _parse_raw(value, key)
        else:
            value = _parse_raw(value, key)

    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, Mapping):
            raise _fail(key, value, tp)
        return from_dict(tp, value, _prefix=key)
    if origin is Literal:
        if value in args and all(type(value) is type(a) for a in args if a == value):
            return value
        raise ConfigError(
            f"config key {key!r}: expected {_type_name(tp)}, got {value!r}{suggest(value, map(str, args))}"
        )
    if origin in (typing.Union, types.UnionType):
        # TOML has no null: an optional field is None when its key is absent, or when it holds the
        # string "none" (how to_toml writes None where the default is not None).
        if type(None) in args and str not in args and isinstance(value, str) and value.lower() == "none":
            return None
        for a in args:
            if a is type(None):
                if value is None:
                    return None
                continue
            try:
                return convert(value, a, key)
            except (ConfigError, TypeError, ValueError):
                pass
        raise _fail(key, value, tp)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(key, value, tp)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(key, value, tp)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _fail(key, value, tp)
    if tp is str:
        if isinstance(value, str):
            return str(value)
        raise _fail(key, value, tp)
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise _fail(key, value, tp)
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise _fail(key, value, tp)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise _fail(key, value, tp, f" ({len(value)} items, expected {len(args)})")
            return tuple(convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise _fail(key, value, tp)
        kt, vt = (args if len(args) == 2 else (str, Any))
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _fail(key, value, tp, f" (key {k!r} is not a string)")
            out[k] = convert(v, vt, f"{key}.{k}")
        return out
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _fail(key, value, tp)
    raise TypeError(f"config key {key!r}: unsupported field type {tp!r} in the schema")


def from_dict(cls: type[T], data: Mapping[str, Any], *, _prefix: str = "") -> T:
    """Build the dataclass ``cls`` from a (TOML-shaped) mapping, checking every key and value.

    Raises :class:`ConfigError` (a ``ValueError``) for unknown keys, missing required keys and
    values of the wrong type; a ``ValueError`` from the dataclass's own ``__post_init__`` checks is
    passed through.
    """
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f"from_dict needs a dataclass type, got {cls!r}")
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"config {'table ' + repr(_prefix) if _prefix else 'root'}: expected a table, got {data!r}"
        )
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    where = f"[{_prefix}]" if _prefix else "the top level"
    for k in data:
        if k not in fields:
            full = f"{_prefix}.{k}" if _prefix else k
            valid = ", ".join(sorted(fields)) or "(none)"
            raise ConfigError(
                f"unknown config key {full!r}{suggest(k, fields, _prefix + '.' if _prefix else '')}; "
                f"valid keys in {where}: {valid}"
            )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        full = f"{_prefix}.{name}" if _prefix else name
        if name in data:
            value = data[name]
            tp = hints[name]
            if (dataclasses.is_dataclass(tp) and isinstance(value, Mapping)
                    and f.default_factory is not dataclasses.MISSING):
                # A table given for a section starts from the *parent's* default of that section
                # (e.g. a task preset's [train]), not from the section class's bare defaults.
                default = f.default_factory()
                if dataclasses.is_dataclass(default) and type(default) is tp:
                    value = merge(tp, to_dict(default), value)
            kwargs[name] = convert(value, tp, full)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing config key {full!r} (expected {_type_name(hints[name])})")
    return cls(**kwargs)


def parse_override(text: str) -> tuple[list[str], RawValue]:
    """``"optim.lr=3e-4"`` -> (``["optim", "lr"]``, raw value). The value is typed later."""
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"override must look like section.key=value, got {text!r}")
    key, _, value = text.partition("=")
    parts = [p.strip() for p in key.strip().split(".")]
    if not all(parts):
        raise ConfigError(f"override key must look like section.key, got {key.strip()!r} in {text!r}")
    return parts, RawValue(value)


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str], cls: type | None = None) -> dict:
    """A copy of ``data`` with each ``section.key=value`` override set.

    With ``cls`` (the dataclass the data is for), an override naming an unknown table or key fails
    here with the closest valid key, before anything else is built.
    """
    out = _deep_copy(data)
    for text in overrides:
        parts, raw = parse_override(text)
        node = out
        schema = cls
        for depth, part in enumerate(parts):
            if schema is not None and dataclasses.is_dataclass(schema):
                names = [f.name for f in dataclasses.fields(schema) if f.init]
                if part not in names:
                    prefix = ".".join(parts[:depth])
                    where = f"[{prefix}]" if prefix else "the top level"
                    raise ConfigError(
                        f"unknown config key {'.'.join(parts[: depth + 1])!r} in override {text!r}"
                        f"{suggest(part, names, prefix + '.' if prefix else '')}; valid keys in {where}: "
                        f"{', '.join(sorted(names))}"
                    )
                sub = _hints(schema)[part]
                schema = sub if dataclasses.is_dataclass(sub) else None
            if depth == len(parts) - 1:
                node[part] = raw
            else:
                nxt = node.get(part)
                if nxt is None:
                    nxt = node[part] = {}
                elif not isinstance(nxt, dict):
                    raise ConfigError(
                        f"override {text!r}: {'.'.join(parts[: depth + 1])!r} is a value, not a table"
                    )
                node = nxt
    return out


def merge(cls: type, base: Mapping[str, Any], update: Mapping[str, Any]) -> dict:
    """``base`` (a table of the dataclass ``cls``) with ``update`` laid over it: tables of nested
    dataclass fields are merged key by key, every other value (including dict-typed fields) is
    replaced."""
    hints = _hints(cls)
    out = dict(base)
    for k, v in update.items():
        sub = hints.get(k)
        if (sub is not None and dataclasses.is_dataclass(sub) and isinstance(v, Mapping)
                and isinstance(out.get(k), Mapping)):
            out[k] = merge(sub, out[k], v)
        else:
            out[k] = v
    return out


def _deep_copy(data: Mapping[str, Any]) -> dict:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def loads(cls: type[T], text: str, overrides: Sequence[str] = (), *, source: str = "<string>") -> T:
    """Parse TOML ``text`` into ``cls``, after applying ``overrides``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from e
    data = apply_overrides(data, overrides, cls)
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from e


def load(cls: type[T], path: str | os.PathLike[str] | None, overrides: Sequence[str] = ()) -> T:
    """Read the TOML file ``path`` (or start from the defaults when ``None``) into ``cls``.

    A missing file raises ``FileNotFoundError`` naming it; see the module docstring for checks.
    """
    if path is None:
        return loads(cls, "", overrides, source="defaults")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"config file {str(p)!r} does not exist")
    if p.is_dir():
        raise IsADirectoryError(f"config file {str(p)!r} is a directory, expected a .toml file")
    return loads(cls, p.read_text(encoding="utf-8"), overrides, source=str(p))


# ---------------------------------------------------------------------------------------------
# Writing: dataclass -> TOML
# ---------------------------------------------------------------------------------------------


def to_dict(obj: Any) -> Any:
    """A dataclass as nested plain dicts/lists (tuples become lists, Paths strings).

    TOML has no null: a field holding ``None`` is left out when ``None`` is its default, and
    written as the string ``"none"`` otherwise (which :func:`from_dict` reads back as ``None``).
    """
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            if not f.init:
                continue  # derived fields are not configuration
            v = getattr(obj, f.name)
            if v is None:
                if f.default is not None:
                    out[f.name] = "none"
            else:
                out[f.name] = to_dict(v)
        return out
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _toml_key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else _toml_str(k)


def _toml_str(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:  # TOML forbids raw control characters
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(v: Any, key: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)  # shortest round-tripping form; always has '.', 'e' or is inf/nan
    if isinstance(v, str):
        return _toml_str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x, f"{key}[]") for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x, key + '.' + k)}" for k, x in v.items()) + "}"
    raise TypeError(f"config key {key!r}: cannot write {type(v).__name__} value {v!r} as TOML")


def _write_table(d: Mapping[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = [(k, v) for k, v in d.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in d.items() if isinstance(v, dict)]
    if path and (scalars or not tables):
        if lines:
            lines.append("")
        lines.append("[" + ".".join(_toml_key(p) for p in path) + "]")
    for k, v in scalars:
        lines.append(f"{_toml_key(k)} = {_toml_value(v, '.'.join(path + [k]))}")
    for k, v in tables:
        _write_table(v, path + [k], lines)


def to_toml(obj: Any) -> str:
    """TOML text for a dataclass (or a mapping); ``load`` of it gives an equal object back."""
    d = to_dict(obj)
    if not isinstance(d, dict):
        raise TypeError(f"to_toml needs a dataclass instance or a mapping, got {type(obj).__name__}")
    lines: list[str] = []
    _write_table(d, [], lines)
    return "\n".join(lines) + "\n"


def save(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``to_toml(obj)`` to ``path`` atomically (temporary file in the same directory, rename)."""
    from sparsegraph.experiments.infra.atomic import atomic_write_bytes

    atomic_write_bytes(Path(path), to_toml(obj).encode("utf-8"))


def replace_path(obj: T, dotted: str, value: Any) -> T:
    """A copy of the dataclass ``obj`` with the field at ``dotted`` (``"train.steps"``) replaced."""
    head, _, rest = dotted.partition(".")
    if not any(f.name == head for f in dataclasses.fields(obj)):
        raise ConfigError(f"unknown config key {head!r}")
    if rest:
        return dataclasses.replace(obj, **{head: replace_path(getattr(obj, head), rest, value)})
    return dataclasses.replace(obj, **{head: value})
