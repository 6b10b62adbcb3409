"""``kernels.attention``: exact graph attention over a compiled block layout, one entry point.

For every batch element, head and query ``i``, with ``E(i)`` the keys ``j`` that are edges
``i -> j`` of the layout's graph (of that head) and not padding,

    out[i] = sum_{j in E(i)} softmax_j(q_i . k_j * scale) v_j,      scale = 1 / sqrt(head_dim),

and ``out[i] = 0`` with zero gradients when ``E(i)`` is empty (never NaN). Differentiable in
``q``, ``k`` and ``v``. Semantics: docs/semantics.md; the block layout is ``sparsegraph.layout``.

Backends (all behind ``attention(..., backend=name)``), each a module exposing

    attention(q, k, v, layout: DeviceLayout, *, scale: float,
              key_padding_mask: Tensor | None) -> Tensor

which receives inputs already checked here (shapes, dtypes, devices, head counts, a DeviceLayout
on q's device, a bool padding mask on the device or None, a float scale):

- ``reference``: dense masked softmax in float64; the oracle; small sizes only.
- ``dense``: ``F.scaled_dot_product_attention`` with the layout's dense bool mask (fast when the
  layout is dense, quadratic memory).
- ``torch``: memory-linear block-sparse attention in plain torch (CPU, or GPU without triton).
- ``triton``: the block-sparse Triton kernel (``kernels.triton_backend``), used when importable.
- ``auto``: the fastest correct one for the device and layout (see :func:`choose_backend`).
"""

from __future__ import annotations

import importlib
import math
from types import ModuleType

import torch

from sparsegraph.kernels.device import DeviceLayout, prepare
from sparsegraph.layout import BlockLayout

__all__ = [
    "attention", "choose_backend", "available_backends", "BACKENDS", "DENSE_CROSSOVER", "DENSE_MAX_MASK",
    "SMALL_CROSSOVER", "SMALL_ENTRIES", "SERIAL_CROSSOVER", "SERIAL_SMALL_ENTRIES",
]

#: Backend name -> module implementing ``attention(q, k, v, layout, *, scale, key_padding_mask)``.
#: Imported lazily: ``triton`` may be absent or not importable.
BACKENDS: dict[str, str] = {
    "reference": "sparsegraph.kernels.reference",
    "dense": "sparsegraph.kernels.torch_dense",
    "torch": "sparsegraph.kernels.torch_backend",
    "triton": "sparsegraph.kernels.triton_backend",
}

#: On CPU with 2 or more threads, ``auto`` uses the dense SDPA path when the layout's computed
#: fraction (listed blocks times block area over heads * n_q * n_k) is at least this; else the
#: block-sparse ``torch`` backend. Chosen by measurement (docs/kernels.md, "Choosing a backend"):
#: per CPU-second the torch backend costs about 1.3 x fraction of dense SDPA, but with 2 threads
#: dense SDPA's one fused kernel scales better; at n=2048 a causal layout (fraction 0.52) tied.
DENSE_CROSSOVER = 0.5

#: Short sequences (``n_q * n_k`` at most ``SMALL_ENTRIES``) use dense SDPA from the lower fraction
#: ``SMALL_CROSSOVER`` (2 or more threads): at n=1024 with 2 threads dense SDPA matched or beat the
#: torch backend for every layout measured with fraction 0.29 .. 0.55 (docs/kernels.md).
SMALL_ENTRIES = 1024 * 1024
SMALL_CROSSOVER = 0.25

#: With one thread (``torch.get_num_threads() == 1``, e.g. each worker of ``sparsegraph compare
#: --jobs 2``) dense SDPA has no parallel advantage, and the work model decides: the torch backend
#: costs about 1.3 x fraction of dense SDPA, so dense from ``SERIAL_CROSSOVER`` ~ 1 / 1.3. Measured
#: on one thread (docs/kernels.md, "One thread"): at n = 640-1024 the torch backend won at every
#: fraction 0.29-0.55 (torch / dense fwd+bwd 0.39-0.91); only at ``n_q * n_k <= SERIAL_SMALL_ENTRIES``
#: (n = 512) did fixed costs make dense SDPA the better choice from ``SMALL_CROSSOVER``.
SERIAL_CROSSOVER = 0.75
SERIAL_SMALL_ENTRIES = 512 * 512

#: ``auto`` never materialises a dense mask larger than this many entries (heads * n_q * n_k):
#: the dense path's mask is quadratic memory. A complete layout (every block listed and full)
#: needs no mask and is exempt.
DENSE_MAX_MASK = 1 << 26

_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_MIN_D, _MAX_D = 16, 128


def _backend_module(name: str) -> ModuleType:
    if name not in BACKENDS:
        raise ValueError(f"backend must be 'auto' or one of {sorted(BACKENDS)}, got {name!r}")
    try:
        return importlib.import_module(BACKENDS[name])
    except ImportError as e:
        raise ValueError(f"backend {name!r} is not available here: {e}") from e


def available_backends() -> list[str]:
    """Backends whose module imports on this machine."""
    out = []
    for name in BACKENDS:
        try:
            _backend_module(name)
        except ValueError:
            continue
        out.append(name)
    return out


def choose_backend(q: torch.Tensor, layout: BlockLayout | DeviceLayout, threads: int | None = None) -> str:
    """The backend ``auto`` runs for queries like ``q`` on ``layout`` with ``threads`` CPU threads
    (default ``torch.get_num_threads()``).

    CUDA: ``triton`` when it imports, else ``torch``. CPU: ``dense`` when the layout computes at
    least a crossover fraction of the dense ``n_q * n_k`` entries per head and its mask is at most
    ``DENSE_MAX_MASK`` entries (or not needed), else ``torch``. The crossover, measured
    (docs/kernels.md, "Choosing a backend"):

    ============  =============================  ===============================
    threads       ``n_q * n_k`` up to the limit   longer
    ============  =============================  ===============================
    2 or more     ``SMALL_CROSSOVER`` (0.25) up   ``DENSE_CROSSOVER`` (0.5)
                  to ``SMALL_ENTRIES`` (1024**2)
    1             ``SMALL_CROSSOVER`` (0.25) up   ``SERIAL_CROSSOVER`` (0.75)
                  to ``SERIAL_SMALL_ENTRIES``
                  (512**2)
    ============  =============================  ===============================
    """
    bl = layout.layout if isinstance(layout, DeviceLayout) else layout
    if q.device.type == "cuda":
        try:
            _backend_module("triton")
            return "triton"
        except ValueError:
            return "torch"
    if threads is None:
        threads = torch.get_num_threads()
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an int >= 1 or None, got {threads!r}")
    dense_entries = bl.heads * bl.n_q * bl.n_k
    computed = bl.nnzb * bl.block_q * bl.block_k
    entries = bl.n_q * bl.n_k
    if threads == 1:
        crossover = SMALL_CROSSOVER if entries <= SERIAL_SMALL_ENTRIES else SERIAL_CROSSOVER
    else:
        crossover = SMALL_CROSSOVER if entries <= SMALL_ENTRIES else DENSE_CROSSOVER
    if dense_entries and computed >= crossover * dense_entries:
        if dense_entries <= DENSE_MAX_MASK or bl.complete:
            return "dense"
    return "torch"


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    layout: BlockLayout | DeviceLayout,
    *,
    scale: float | None = None,
    key_padding_mask: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Attention of ``q`` over exactly the edges of ``layout`` (see the module docstring).

    Args:
        q: ``[batch, heads, n_q, head_dim]``; k, v: ``[batch, heads, n_k, head_dim]``; one dtype
            of float32 / bfloat16 / float16; ``16 <= head_dim <= 128``; one device.
        layout: a compiled ``BlockLayout`` (converted to q's device on every call) or, better, a
            ``DeviceLayout`` from ``kernels.prepare(layout, device)`` kept by the caller. Its heads
            must be 1 (shared by all heads) or ``heads``.
        scale: multiplier of ``q . k``; default ``1 / sqrt(head_dim)``.
        key_padding_mask: bool ``[batch, n_k]``, True = padding key (ignored), as in
            ``torch.nn.MultiheadAttention``.
        backend: ``"auto"`` or a name in ``BACKENDS``.

    Returns:
        ``[batch, heads, n_q, head_dim]`` in q's dtype.
    """
    _check_tensors(q, k, v)
    batch, heads, n_q, d = q.shape
    n_k = k.shape[2]
    if not isinstance(layout, (BlockLayout, DeviceLayout)):
        raise TypeError(
            f"layout must be a BlockLayout or DeviceLayout (kernels.prepare), got {type(layout).__name__}"
        )
    dl = prepare(layout, q.device)
    bl = dl.layout
    if (bl.n_q, bl.n_k) != (n_q, n_k):
        raise ValueError(
            f"layout is for n_q={bl.n_q}, n_k={bl.n_k} but q has n_q={n_q} and k has n_k={n_k}"
        )
    if bl.heads not in (1, heads):
        raise ValueError(f"layout has heads={bl.heads}; expected 1 (shared) or heads={heads} of q")
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    elif isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"scale must be a float, got {type(scale).__name__} {scale!r}")
    elif not math.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")
    scale = float(scale)
    if key_padding_mask is not None:
        if not isinstance(key_padding_mask, torch.Tensor):
            raise TypeError(f"key_padding_mask must be a bool tensor, got {type(key_padding_mask).__name__}")
        if key_padding_mask.dtype != torch.bool:
            raise TypeError(f"key_padding_mask must have dtype torch.bool (True = padding), got {key_padding_mask.dtype}")
        if tuple(key_padding_mask.shape) != (batch, n_k):
            raise ValueError(
                f"key_padding_mask must have shape [batch, n_k] = [{batch}, {n_k}], got {list(key_padding_mask.shape)}"
            )
        if key_padding_mask.device != q.device:
            raise ValueError(f"key_padding_mask is on {key_padding_mask.device}, q on {q.device}")
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a str, got {type(backend).__name__}")
    name = choose_backend(q, bl) if backend == "auto" else backend
    return _backend_module(name).attention(q, k, v, dl, scale=scale, key_padding_mask=key_padding_mask)


def _check_tensors(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{name} must have shape [batch, heads, n, head_dim], got {list(t.shape)}")
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name} must be float32, bfloat16 or float16, got {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    if k.shape != v.shape:
        raise ValueError(f"k and v must have the same shape, got {list(k.shape)} and {list(v.shape)}")
    if q.shape[:2] != k.shape[:2]:
        raise ValueError(
            f"q and k must share [batch, heads], got {list(q.shape[:2])} and {list(k.shape[:2])}"
        )
    if q.shape[3] != k.shape[3]:
        raise ValueError(f"q and k must share head_dim, got {q.shape[3]} and {k.shape[3]}")
    d = q.shape[3]
    if not _MIN_D <= d <= _MAX_D:
        raise ValueError(f"head_dim must lie in [{_MIN_D}, {_MAX_D}], got {d}")
