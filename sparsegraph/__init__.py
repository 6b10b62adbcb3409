"""sparsegraph: attention patterns as directed graphs.

The core type is :class:`AttentionGraph`; ``sparsegraph.analysis`` measures graphs,
``sparsegraph.layout`` compiles them to block layouts, ``sparsegraph.plot`` draws them.
Nothing here imports torch; the optional ``sparsegraph.hf`` (Hugging Face interop, the ``hf``
extra) loads torch and transformers when its names are first used.
"""

from sparsegraph.graph import AttentionGraph, Provenance

__all__ = ["AttentionGraph", "Provenance"]
__version__ = "0.1.0"
