"""Long ListOps generator, tokeniser and evaluator (LRA, Tay et al. 2021; docs/lra_tasks.md, ListOps).

ListOps expressions are trees of the operators ``[MIN``, ``[MAX``, ``[MED`` (median, truncated
to int) and ``[SM`` (sum modulo 10) over the digits 0-9; the label is the value of the tree.

Distribution (identical to ``lra_benchmarks/data/listops.py``):

* ``gen(depth)`` starts with depth 1 at the root. At depth < ``max_depth`` a node is an operator
  with probability 0.25 (``u <= 0.25`` for ``u ~ U[0, 1)``), otherwise a leaf; at
  ``max_depth`` it is always a leaf. Leaves are uniform digits.
* An operator node has ``k ~ U{2..max_args}`` children and a uniform operator; its length is
  2 (operator token and closing ``]``) plus the children's lengths; a leaf's length is 1.
* A root tree is kept only if ``min_length < length < max_length`` (strict) and if no identical
  tree was kept before (dedup by tree structure).

Implementation: instead of LRA's recursive pure-Python ``gen`` this module grows a *batch* of
root trees breadth-first, one depth level at a time, with vectorised numpy draws. Every node
still gets independent draws with the same probabilities, so the distribution of trees is the
same as LRA's; only the random stream differs. A root is abandoned as soon as its token count
provably reaches ``max_length`` (such trees are rejected by LRA too), which bounds the work.
Values, lengths and tokens are then computed bottom-up / top-down per level with segment
reductions. Dedup uses the token sequence, which is in bijection with the tree.

Determinism: roots are drawn in chunks of ``ROOTS_PER_CHUNK``; chunk ``c`` uses the numpy
stream ``SeedSequence(seed, spawn_key=(c,))``. Chunks are merged in chunk order and the first
``n_test + n_val + n_train`` unique accepted trees are kept, so the dataset depends only on the
parameters and the seed, never on the number of worker processes.

Per-example draws (:func:`generate_example`, used for training data drawn fresh every step, see
:mod:`sparsegraph.experiments.lra.fresh`): example ``index`` of ``split`` is the first accepted
tree grown, one tree at a time in Python, from the numpy stream
``SeedSequence(seed, spawn_key=(EXAMPLE_STREAM, split_id, index))``: the same distribution
(tested against the dataset's), a different stream from the dataset chunks' ``spawn_key=(c,)``,
and no effect on the cached splits (``GENERATOR_VERSION`` is unchanged).

Split order: LRA converts a Python set to a list (arbitrary hash order) and takes the first
96k as train. We take the pool in generation order and assign **test first, then val, then
train**, so the val/test sets stay the same when only ``n_train`` changes.

Tokens (LRA ``listops/input_pipeline.py``): the Source string ``( ( ( [MAX 4 ) 3 ) ] )``
becomes ``[MAX 4 3 X`` (``]`` -> ``X``, parentheses dropped). Ids: 0 = pad, digits ``0``-``9``
-> 1-10, ``[MIN`` 11, ``[MAX`` 12, ``[MED`` 13, ``[SM`` 14, ``X`` 15 (vocabulary size 16).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Union

import numpy as np

from .parallel import WorkerPool
from .progress import Progress

__all__ = [
    "OPERATORS", "VOCAB", "PAD_ID", "VOCAB_SIZE", "TOKEN_TO_ID", "CLOSE_TOKEN",
    "Node", "Tree", "ListOpsConfig", "LISTOPS_LRA", "LISTOPS_CPU",
    "tree_to_tokens", "tokens_to_tree", "evaluate_tree", "evaluate",
    "to_lra_string", "from_lra_string", "encode_tokens", "decode_ids",
    "generate_listops", "generate_example", "GENERATOR_VERSION", "SPLIT_IDS", "EXAMPLE_BLOCK",
    "EXAMPLE_STREAM",
]

#: Bumped whenever the generated data for a given config changes (part of the cache key).
GENERATOR_VERSION = 1

OPERATORS: tuple[str, ...] = ("[MIN", "[MAX", "[MED", "[SM")
CLOSE_TOKEN = "X"
PAD_ID = 0
VOCAB: tuple[str, ...] = ("<pad>", *[str(d) for d in range(10)], *OPERATORS, CLOSE_TOKEN)
VOCAB_SIZE = len(VOCAB)  # 16
TOKEN_TO_ID: dict[str, int] = {tok: i for i, tok in enumerate(VOCAB)}
_DIGIT_ID0 = TOKEN_TO_ID["0"]  # 1
_OP_ID0 = TOKEN_TO_ID[OPERATORS[0]]  # 11
_CLOSE_ID = TOKEN_TO_ID[CLOSE_TOKEN]  # 15

#: Probability that a node above max_depth is an operator (LRA: leaf iff u > 0.25).
OPERATOR_PROB = 0.25
#: Root draws per chunk (fixed: part of the definition of the dataset for a given seed).
ROOTS_PER_CHUNK = 8192
#: Uniforms per block of :func:`generate_example`, beyond the 3 per token of one longest tree
#: (part of the definition of its examples).
EXAMPLE_BLOCK = 4096
#: First spawn-key word of the per-example streams: keeps them apart from the chunk streams.
EXAMPLE_STREAM = 0x4C4F5845  # "LOXE"
#: Split ids of the per-example streams.
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
#: Root draws of :func:`generate_example` before it gives up on a config that accepts nothing.
_MAX_EXAMPLE_TREES = 1_000_000


class Node(NamedTuple):
    """An operator node: ``op`` is one of :data:`OPERATORS`, ``args`` the child trees."""

    op: str
    args: tuple["Tree", ...]


#: A ListOps tree: a digit leaf (``int`` 0-9) or an operator :class:`Node`.
Tree = Union[int, Node]


# --------------------------------------------------------------------------------------------
# Tree <-> tokens <-> LRA strings
# --------------------------------------------------------------------------------------------

def _apply(op: str, values: Sequence[int]) -> int:
    if op == "[MIN":
        return min(values)
    if op == "[MAX":
        return max(values)
    if op == "[MED":
        ordered = sorted(values)
        n = len(ordered)
        # int(numpy.median(values)): mean of the two middle values truncated toward zero.
        return int((ordered[(n - 1) // 2] + ordered[n // 2]) / 2)
    if op == "[SM":
        return sum(values) % 10
    raise ValueError(f"unknown ListOps operator {op!r}; expected one of {OPERATORS}")


def _check_tree(tree: Tree) -> None:
    if isinstance(tree, Node):
        if tree.op not in OPERATORS:
            raise ValueError(f"unknown ListOps operator {tree.op!r}; expected one of {OPERATORS}")
        if len(tree.args) == 0:
            raise ValueError(f"operator {tree.op} has no arguments")
    elif isinstance(tree, (int, np.integer)) and not isinstance(tree, bool):
        if not 0 <= int(tree) <= 9:
            raise ValueError(f"leaf value {tree!r} is not a digit 0-9")
    else:
        raise TypeError(f"tree node {tree!r}: expected an int digit or a Node")


def tree_to_tokens(tree: Tree) -> list[str]:
    """Pre-order LRA tokens of ``tree``, e.g. ``['[MAX', '4', '3', 'X']``."""
    out: list[str] = []
    stack: list[object] = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, str):  # a pending closing token
            out.append(item)
            continue
        _check_tree(item)  # type: ignore[arg-type]
        if isinstance(item, Node):
            out.append(item.op)
            stack.append(CLOSE_TOKEN)
            stack.extend(reversed(item.args))
        else:
            out.append(str(int(item)))  # type: ignore[arg-type]
    return out


def _as_token_strings(tokens: Iterable[str | int] | np.ndarray) -> list[str]:
    if isinstance(tokens, np.ndarray) or (not isinstance(tokens, str) and _looks_like_ids(tokens)):
        return decode_ids(tokens)  # type: ignore[arg-type]
    if isinstance(tokens, str):
        raise TypeError("tokens: expected a sequence of token strings or ids, got a str "
                        "(use from_lra_string() for LRA Source strings)")
    return list(tokens)  # type: ignore[arg-type]


def _looks_like_ids(tokens: Iterable[object]) -> bool:
    if not isinstance(tokens, Sequence):
        return False
    return len(tokens) > 0 and isinstance(tokens[0], (int, np.integer))


def tokens_to_tree(tokens: Iterable[str | int] | np.ndarray) -> Tree:
    """Parse LRA tokens (strings or ids; pads ignored) back into a tree."""
    toks = _as_token_strings(tokens)
    stack: list[tuple[str, list[Tree]]] = []
    result: Tree | None = None
    for pos, tok in enumerate(toks):
        if result is not None:
            raise ValueError(f"tokens: trailing token {tok!r} at position {pos} after a complete tree")
        if tok in OPERATORS:
            stack.append((tok, []))
        elif tok == CLOSE_TOKEN:
            if not stack:
                raise ValueError(f"tokens: unmatched closing token at position {pos}")
            op, args = stack.pop()
            if not args:
                raise ValueError(f"tokens: operator {op} closed without arguments at position {pos}")
            node = Node(op, tuple(args))
            if stack:
                stack[-1][1].append(node)
            else:
                result = node
        elif len(tok) == 1 and tok.isdigit():
            if stack:
                stack[-1][1].append(int(tok))
            else:
                result = int(tok)
        else:
            raise ValueError(f"tokens: unknown token {tok!r} at position {pos}; expected a digit, "
                             f"one of {OPERATORS} or {CLOSE_TOKEN!r}")
    if stack or result is None:
        raise ValueError("tokens: incomplete expression (missing closing tokens or empty input)")
    return result


def evaluate_tree(tree: Tree) -> int:
    """Value of ``tree`` (recursive reference evaluation)."""
    _check_tree(tree)
    if isinstance(tree, Node):
        return _apply(tree.op, [evaluate_tree(a) for a in tree.args])
    return int(tree)


def evaluate(tokens: Iterable[str | int] | np.ndarray) -> int:
    """Value of a token sequence (strings or ids, pads ignored), iterative stack evaluation."""
    toks = _as_token_strings(tokens)
    stack: list[tuple[str, list[int]]] = []
    for pos, tok in enumerate(toks):
        if tok in OPERATORS:
            stack.append((tok, []))
        elif tok == CLOSE_TOKEN:
            if not stack:
                raise ValueError(f"tokens: unmatched closing token at position {pos}")
            op, values = stack.pop()
            if not values:
                raise ValueError(f"tokens: operator {op} closed without arguments at position {pos}")
            value = _apply(op, values)
            if not stack:
                if pos != len(toks) - 1:
                    raise ValueError(f"tokens: trailing tokens after position {pos}")
                return value
            stack[-1][1].append(value)
        elif len(tok) == 1 and tok.isdigit():
            if not stack:
                if len(toks) != 1:
                    raise ValueError("tokens: a bare digit must be the whole expression")
                return int(tok)
            stack[-1][1].append(int(tok))
        else:
            raise ValueError(f"tokens: unknown token {tok!r} at position {pos}")
    raise ValueError("tokens: incomplete expression (missing closing tokens or empty input)")


def to_lra_string(tree_or_tokens: Tree | Iterable[str | int] | np.ndarray) -> str:
    """LRA ``Source`` string, e.g. ``( ( ( [MAX 4 ) 3 ) ] )`` for ``[MAX 4 3]``.

    LRA stores an operator with children v1..vk as nested pairs ``(((op v1) v2) ... vk) ]``
    and prints each pair as ``( left right )``.
    """
    if isinstance(tree_or_tokens, (Node, int, np.integer)):
        tree = tree_or_tokens
    else:
        tree = tokens_to_tree(tree_or_tokens)  # type: ignore[arg-type]

    def render(t: Tree) -> str:
        if isinstance(t, Node):
            parts = ["( " * (len(t.args) + 1), t.op]
            parts.extend(f" {render(a)} )" for a in t.args)
            parts.append(" ] )")
            return "".join(parts)
        return str(int(t))

    _check_tree(tree)  # type: ignore[arg-type]
    return render(tree)  # type: ignore[arg-type]


def from_lra_string(source: str) -> list[str]:
    """Tokenise an LRA ``Source`` string as LRA does: ``]`` -> ``X``, drop ``(``/``)``, split."""
    if not isinstance(source, str):
        raise TypeError(f"source: expected str, got {type(source).__name__}")
    return [t for t in source.replace("]", CLOSE_TOKEN).split() if t not in ("(", ")")]


def encode_tokens(tokens: Iterable[str]) -> np.ndarray:
    """Token strings -> uint8 ids (see module docstring for the vocabulary)."""
    try:
        return np.array([TOKEN_TO_ID[t] for t in tokens], dtype=np.uint8)
    except KeyError as exc:
        raise ValueError(f"unknown ListOps token {exc.args[0]!r}; vocabulary is {VOCAB[1:]}") from None


def decode_ids(ids: Iterable[int] | np.ndarray) -> list[str]:
    """Ids -> token strings, dropping pad ids."""
    out = []
    for i in np.asarray(ids).ravel().tolist():
        if i == PAD_ID:
            continue
        if not 0 < i < VOCAB_SIZE:
            raise ValueError(f"token id {i} outside the ListOps vocabulary 0..{VOCAB_SIZE - 1}")
        out.append(VOCAB[i])
    return out


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------

def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}={value!r}: expected an int")
    if value < minimum:
        raise ValueError(f"{name}={value!r}: expected an int >= {minimum}")


def _max_possible_length(max_depth: int, max_args: int) -> float:
    length = 1.0
    for _ in range(max_depth - 1):
        length = 2 + max_args * length
    return length


@dataclasses.dataclass(frozen=True)
class ListOpsConfig:
    """Parameters of a ListOps dataset (defaults = LRA's ``listops.py`` flags).

    Attributes:
        n_train, n_val, n_test: split sizes (LRA: 96,000 / 2,000 / 2,000).
        min_length, max_length: keep trees with ``min_length < length < max_length``.
        max_depth: depth of the deepest (always leaf) level; operators at depths 1..max_depth-1.
        max_args: maximum number of operator arguments (minimum is 2).
        seed: non-negative int; the dataset is a deterministic function of the config.
    """

    n_train: int = 96_000
    n_val: int = 2_000
    n_test: int = 2_000
    min_length: int = 500
    max_length: int = 2000
    max_depth: int = 10
    max_args: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_train", "n_val", "n_test", "min_length", "seed"):
            _check_int(name, getattr(self, name), 0)
        _check_int("max_length", self.max_length, 2)
        _check_int("max_depth", self.max_depth, 1)
        _check_int("max_args", self.max_args, 2)
        if self.n_train + self.n_val + self.n_test == 0:
            raise ValueError("n_train + n_val + n_test is 0: expected at least one example")
        if self.min_length >= self.max_length - 1:
            raise ValueError(f"min_length={self.min_length} and max_length={self.max_length}: "
                             f"expected min_length < max_length - 1 (lengths are strictly "
                             f"between them)")
        if self.max_length > 65535:
            raise ValueError(f"max_length={self.max_length}: expected <= 65535")
        reachable = _max_possible_length(self.max_depth, self.max_args)
        if reachable <= self.min_length:
            raise ValueError(f"min_length={self.min_length}: trees with max_depth={self.max_depth} "
                             f"and max_args={self.max_args} have at most {reachable:.0f} tokens; "
                             f"expected min_length < {reachable:.0f}")

    @property
    def n_total(self) -> int:
        return self.n_train + self.n_val + self.n_test

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


#: LRA's Long ListOps (lengths 501-1999, 96k/2k/2k).
LISTOPS_LRA = ListOpsConfig()
#: A CPU-sized variant: the same process with lengths 101-499 and 20k/1k/1k examples.
LISTOPS_CPU = ListOpsConfig(n_train=20_000, n_val=1_000, n_test=1_000, min_length=100,
                            max_length=500)


# --------------------------------------------------------------------------------------------
# Vectorised generation
# --------------------------------------------------------------------------------------------

class _Level(NamedTuple):
    root: np.ndarray     # root id of every node of this level
    parent: np.ndarray   # index of the parent in the previous level (-1 at the root level)
    op_idx: np.ndarray   # indices of operator nodes
    leaf_idx: np.ndarray  # indices of leaf nodes
    k: np.ndarray        # number of children of each operator node
    ops: np.ndarray      # operator code (0..3) of each operator node
    digits: np.ndarray   # digit of each leaf node


def _generate_chunk(task: tuple[int, int, int, int, int, int, int]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Draw ``n_roots`` root trees; return the accepted ones as (flat tokens, lengths, labels).

    ``task`` = (seed, chunk_id, n_roots, min_length, max_length, max_depth, max_args).
    """
    seed, chunk_id, n_roots, min_length, max_length, max_depth, max_args = task
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk_id,)))

    root = np.arange(n_roots, dtype=np.int64)
    parent = np.full(n_roots, -1, dtype=np.int64)
    ntok = np.zeros(n_roots, dtype=np.int64)
    alive = np.ones(n_roots, dtype=bool)
    levels: list[_Level] = []
    for depth in range(1, max_depth + 1):
        n = root.size
        if n == 0:
            break
        if depth < max_depth:
            is_op = rng.random(n) <= OPERATOR_PROB
        else:
            is_op = np.zeros(n, dtype=bool)
        op_idx = np.flatnonzero(is_op)
        leaf_idx = np.flatnonzero(~is_op)
        k = rng.integers(2, max_args + 1, size=op_idx.size)
        ops = rng.integers(0, len(OPERATORS), size=op_idx.size)
        digits = rng.integers(0, 10, size=leaf_idx.size)
        levels.append(_Level(root, parent, op_idx, leaf_idx, k, ops, digits))
        # every node contributes 1 token, an operator one more (its closing bracket)
        ntok += np.bincount(root, minlength=n_roots) + np.bincount(root[op_idx], minlength=n_roots)
        child_parent = np.repeat(op_idx, k)
        child_root = root[child_parent]
        # each pending child adds >= 1 token: abandon roots that already reach max_length
        alive &= ntok + np.bincount(child_root, minlength=n_roots) < max_length
        keep = alive[child_root]
        root, parent = child_root[keep], child_parent[keep]

    accepted = alive & (ntok > min_length)
    n_acc = int(accepted.sum())
    if n_acc == 0:
        return np.zeros(0, np.uint8), np.zeros(0, np.int32), np.zeros(0, np.int8), n_roots

    # restrict every level to the accepted roots (their trees are complete)
    kept: list[_Level] = []
    prev_map: np.ndarray | None = None
    for lvl in levels:
        keep = accepted[lvl.root]
        if not keep.any():
            break
        new_index = np.cumsum(keep) - 1
        op_keep = keep[lvl.op_idx]
        leaf_keep = keep[lvl.leaf_idx]
        par = lvl.parent[keep]
        if prev_map is not None:
            par = prev_map[par]
        kept.append(_Level(lvl.root[keep], par, new_index[lvl.op_idx[op_keep]],
                           new_index[lvl.leaf_idx[leaf_keep]], lvl.k[op_keep], lvl.ops[op_keep],
                           lvl.digits[leaf_keep]))
        prev_map = new_index

    # bottom-up: values and lengths
    values: list[np.ndarray] = [np.empty(0)] * len(kept)
    lengths: list[np.ndarray] = [np.empty(0)] * len(kept)
    starts_per_level: list[np.ndarray] = [np.empty(0)] * len(kept)
    for d in range(len(kept) - 1, -1, -1):
        lvl = kept[d]
        n = lvl.root.size
        val = np.empty(n, dtype=np.int64)
        ln = np.empty(n, dtype=np.int64)
        val[lvl.leaf_idx] = lvl.digits
        ln[lvl.leaf_idx] = 1
        if lvl.op_idx.size:
            child = kept[d + 1]
            cv, cl = values[d + 1], lengths[d + 1]
            k = lvl.k
            starts = np.concatenate(([0], np.cumsum(k)[:-1]))
            starts_per_level[d] = starts
            mn = np.minimum.reduceat(cv, starts)
            mx = np.maximum.reduceat(cv, starts)
            sm = np.add.reduceat(cv, starts) % 10
            sv = np.sort(child.parent * 16 + cv) % 16  # children sorted by (parent, value)
            med = (sv[starts + (k - 1) // 2] + sv[starts + k // 2]) // 2
            val[lvl.op_idx] = np.stack([mn, mx, med, sm])[lvl.ops, np.arange(k.size)]
            ln[lvl.op_idx] = 2 + np.add.reduceat(cl, starts)
        values[d], lengths[d] = val, ln

    # top-down: token offsets and the flat token array
    root_len = lengths[0]
    offsets = np.concatenate(([0], np.cumsum(root_len)[:-1]))
    flat = np.zeros(int(root_len.sum()), dtype=np.uint8)
    for d, lvl in enumerate(kept):
        ln = lengths[d]
        flat[offsets[lvl.leaf_idx]] = (lvl.digits + _DIGIT_ID0).astype(np.uint8)
        if lvl.op_idx.size:
            op_off = offsets[lvl.op_idx]
            flat[op_off] = (lvl.ops + _OP_ID0).astype(np.uint8)
            flat[op_off + ln[lvl.op_idx] - 1] = _CLOSE_ID
            cl = lengths[d + 1]
            excl = np.cumsum(cl) - cl
            starts = starts_per_level[d]
            offsets = np.repeat(op_off + 1 - excl[starts], lvl.k) + excl
    return flat, root_len.astype(np.int32), values[0].astype(np.int8), n_roots


def _pad_rows(flat: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((lengths.size, width), dtype=np.uint8)
    out[np.arange(width)[None, :] < lengths[:, None]] = flat
    return out


def _draw_tree(u: list[float], pos: int, max_depth: int, max_args: int, max_length: int
               ) -> tuple[list[int] | None, int, int]:
    """Grow one root tree depth-first from the uniforms ``u[pos:]`` (LRA's process, see the
    module docstring); returns ``(token ids, value, next pos)``, or ``(None, 0, next pos)`` as
    soon as the tree provably reaches ``max_length`` tokens (it would be rejected).

    Uniforms per node: an operator-or-leaf draw (only above ``max_depth``), then ``k`` and the
    operator (an operator) or the digit (a leaf): at most 3 per token.
    """
    tokens: list[int] = []
    stack: list[tuple[int, int, list[int]]] = []  # open operators: (op, k, child values)
    while True:
        depth = len(stack) + 1
        if depth < max_depth:
            is_op = u[pos] <= OPERATOR_PROB
            pos += 1
        else:
            is_op = False
        if is_op:
            k = 2 + int(u[pos] * (max_args - 1))
            op = int(u[pos + 1] * len(OPERATORS))
            pos += 2
            tokens.append(_OP_ID0 + op)
            stack.append((op, k, []))
        else:
            value = int(u[pos] * 10)
            pos += 1
            tokens.append(_DIGIT_ID0 + value)
            while stack:  # close every operator this leaf completes
                op, k, values = stack[-1]
                values.append(value)
                if len(values) < k:
                    break
                stack.pop()
                tokens.append(_CLOSE_ID)
                if op == 0:
                    value = min(values)
                elif op == 1:
                    value = max(values)
                elif op == 2:
                    ordered = sorted(values)
                    value = (ordered[(k - 1) // 2] + ordered[k // 2]) // 2
                else:
                    value = sum(values) % 10
            else:
                return tokens, value, pos
        # every open operator still needs at least its closing token
        if len(tokens) + len(stack) >= max_length:
            return None, 0, pos


def generate_example(config: ListOpsConfig, seed: int, split: str, index: int
                     ) -> tuple[np.ndarray, int, None]:
    """One tree drawn from the stream of ``(seed, split, index)``: ``(tokens, label, None)``.

    ``tokens`` are the uint8 ids of the tree, unpadded (``min_length < len < max_length``);
    ``label`` is its value 0-9; the third item (``None``) stands where diagnostic tasks return
    the positions the answer needs. Only ``min_length, max_length, max_depth, max_args`` of
    ``config`` matter (its ``seed`` and split sizes are the dataset's, not the example's).

    The trees follow the dataset's distribution (LRA's process, rejection of lengths outside
    the range) but are grown one at a time, depth-first, in Python from blocks of uniforms of
    the numpy stream ``SeedSequence(seed, spawn_key=(EXAMPLE_STREAM, split_id, index))``: for
    one tree that is about 3x faster than the vectorised dataset generator, whose numpy calls
    cost the same for 1 tree as for 100. Deterministic in ``(config, seed, split, index)``; not
    deduplicated against anything.
    """
    if not isinstance(config, ListOpsConfig):
        raise TypeError(f"config: expected a ListOpsConfig, got {type(config).__name__}")
    _check_int("seed", seed, 0)
    _check_int("index", index, 0)
    if split not in SPLIT_IDS:
        raise ValueError(f"split={split!r}: expected one of {tuple(SPLIT_IDS)}")
    c = config
    rng = np.random.default_rng(np.random.SeedSequence(
        int(seed), spawn_key=(EXAMPLE_STREAM, SPLIT_IDS[split], int(index))))
    # A tree uses at most 3 uniforms per token and is abandoned below max_length tokens, so a
    # block always has room for the tree started at pos <= block - 3 * max_length.
    block = EXAMPLE_BLOCK + 3 * c.max_length
    trees = 0
    while trees < _MAX_EXAMPLE_TREES:
        u = rng.random(block).tolist()
        pos = 0
        while pos <= EXAMPLE_BLOCK and trees < _MAX_EXAMPLE_TREES:
            tokens, value, pos = _draw_tree(u, pos, c.max_depth, c.max_args, c.max_length)
            trees += 1
            if tokens is not None and c.min_length < len(tokens) < c.max_length:
                return np.array(tokens, dtype=np.uint8), value, None
    raise RuntimeError(f"ListOps: no tree accepted after {_MAX_EXAMPLE_TREES} root draws with "
                       f"{config}; widen min_length/max_length or raise max_depth")


def generate_listops(config: ListOpsConfig | None = None, *, workers: int | None = None,
                     progress: bool = True, **params: int
                     ) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, object]]:
    """Generate a ListOps dataset.

    Args:
        config: a :class:`ListOpsConfig`; or pass its fields as keyword ``params``.
        workers: processes to use (``None`` = all CPUs). The result does not depend on it.
        progress: show a stderr progress line if generation takes more than ~2 s.

    Returns:
        ``(splits, info)`` where ``splits[name]`` for ``name`` in train/val/test holds
        ``tokens`` (uint8 ``[N, max_length]``, 0-padded), ``lengths`` (int64) and ``labels``
        (int64, 0-9); ``info`` holds generation statistics (root draws, acceptance rate,
        duplicates dropped).
    """
    if config is None:
        config = ListOpsConfig(**params)
    elif params:
        config = dataclasses.replace(config, **params)
    c = config
    n_total = c.n_total
    flats: list[np.ndarray] = []
    lens: list[np.ndarray] = []
    labs: list[np.ndarray] = []
    seen: set[bytes] = set()
    n_unique = 0
    n_roots = 0
    n_accepted = 0
    n_dup = 0
    next_chunk = 0
    stalled = 0  # consecutive chunks without a new unique tree
    per_chunk_estimate: float | None = None
    with WorkerPool(workers) as pool, Progress(n_total, "ListOps", enabled=progress) as bar:
        while n_unique < n_total:
            remaining = n_total - n_unique
            if per_chunk_estimate is None:
                wave = pool.workers
            else:
                wave = math.ceil(1.1 * remaining / max(per_chunk_estimate, 1e-3))
                wave = int(min(max(wave, 1), 8 * pool.workers, 4096))
            tasks = [(c.seed, next_chunk + i, ROOTS_PER_CHUNK, c.min_length, c.max_length,
                      c.max_depth, c.max_args) for i in range(wave)]
            next_chunk += wave
            for flat, ln, lab, drawn in pool.map(_generate_chunk, tasks):
                if n_unique >= n_total:
                    break  # later chunks of this wave are not part of the dataset
                n_roots += drawn
                n_accepted += ln.size
                ends = np.cumsum(ln)
                starts = ends - ln
                keep = np.zeros(ln.size, dtype=bool)
                for i in range(ln.size):
                    key = flat[starts[i]:ends[i]].tobytes()
                    if key in seen:
                        n_dup += 1
                        continue
                    seen.add(key)
                    keep[i] = True
                    n_unique += 1
                    if n_unique == n_total:
                        break
                if keep.any():
                    tok_mask = np.repeat(keep, ln)
                    flats.append(flat[tok_mask])
                    lens.append(ln[keep])
                    labs.append(lab[keep])
                    stalled = 0
                else:
                    stalled += 1
                bar.update(int(keep.sum()))
            if stalled >= 64 and n_unique > 0:
                raise RuntimeError(f"ListOps: only {n_unique} distinct trees found after "
                                   f"{n_roots} root draws, fewer than the {n_total} requested "
                                   f"with {config}; widen the length range")
            per_chunk_estimate = max(n_unique, 1) / max(next_chunk, 1)
            if next_chunk >= 64 and n_unique == 0:
                raise RuntimeError(f"ListOps: no tree accepted after {n_roots} root draws with "
                                   f"{config}; widen min_length/max_length or raise max_depth")
    del seen
    flat_all = np.concatenate(flats)
    len_all = np.concatenate(lens).astype(np.int64)
    lab_all = np.concatenate(labs).astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(len_all)))
    splits: dict[str, dict[str, np.ndarray]] = {}
    start = 0
    for name, count in (("test", c.n_test), ("val", c.n_val), ("train", c.n_train)):
        stop = start + count
        sl_flat = flat_all[offsets[start]:offsets[stop]]
        ln = len_all[start:stop]
        splits[name] = {"tokens": _pad_rows(sl_flat, ln, c.max_length), "lengths": ln.copy(),
                        "labels": lab_all[start:stop].copy()}
        start = stop
    info = {"root_draws": n_roots, "accepted": n_accepted, "duplicates_dropped": n_dup,
            "acceptance_rate": n_accepted / max(n_roots, 1), "chunks": next_chunk}
    return {k: splits[k] for k in ("train", "val", "test")}, info
