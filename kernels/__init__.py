"""Attention kernels over compiled block layouts: ``attention(q, k, v, layout)`` and its backends.

``prepare(layout, device)`` converts a ``sparsegraph.layout.BlockLayout`` to device tensors once;
``attention`` dispatches to the ``reference``, ``dense``, ``torch`` or ``triton`` backend (``auto``
picks); ``to_flex_block_mask`` exports a layout to PyTorch FlexAttention.

The names are loaded on first use (PEP 562): importing a torch-free submodule such as
``kernels.bench_options`` (the command line's option parser) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparsegraph._lazy import lazy_exports

__all__ = [
    "BACKENDS",
    "DENSE_CROSSOVER",
    "DENSE_MAX_MASK",
    "DeviceLayout",
    "attention",
    "available_backends",
    "choose_backend",
    "prepare",
    "to_flex_block_mask",
]

# name -> the submodule defining it
_WHERE = {
    "BACKENDS": "sparsegraph.kernels.api",
    "DENSE_CROSSOVER": "sparsegraph.kernels.api",
    "DENSE_MAX_MASK": "sparsegraph.kernels.api",
    "attention": "sparsegraph.kernels.api",
    "available_backends": "sparsegraph.kernels.api",
    "choose_backend": "sparsegraph.kernels.api",
    "DeviceLayout": "sparsegraph.kernels.device",
    "prepare": "sparsegraph.kernels.device",
    "to_flex_block_mask": "sparsegraph.kernels.flex",  # imports torch.nn.attention.flex_attention (slow)
}

if TYPE_CHECKING:
    from sparsegraph.kernels.api import (BACKENDS, DENSE_CROSSOVER, DENSE_MAX_MASK, attention,
                                         available_backends, choose_backend)
    from sparsegraph.kernels.device import DeviceLayout, prepare
    from sparsegraph.kernels.flex import to_flex_block_mask


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
