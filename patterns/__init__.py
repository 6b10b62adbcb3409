"""The pattern library: attention patterns as functions that build AttentionGraphs.

``patterns.get("bigbird:block=64,window=3,random=3,global=2").build(n, heads=4, seed=0)`` is the one
route from a spec string to a graph; ``@patterns.register("name")`` makes a user's own pattern
first-class. See ``patterns.registry`` for the spec syntax.
"""

from sparsegraph.patterns.registry import (
    ParamInfo,
    Pattern,
    PatternInfo,
    UnionPattern,
    available,
    build,
    format_spec,
    get,
    info,
    parse_spec,
    register,
    rng,
    unregister,
)
from sparsegraph.patterns import library  # noqa: F401  (registers the built-ins)
from sparsegraph.patterns.library import *  # noqa: F401,F403

__all__ = [
    "ParamInfo",
    "Pattern",
    "PatternInfo",
    "UnionPattern",
    "available",
    "build",
    "format_spec",
    "get",
    "info",
    "parse_spec",
    "register",
    "rng",
    "unregister",
    *library.__all__,
]
