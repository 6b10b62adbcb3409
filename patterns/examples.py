"""The example spec of every built-in pattern: used by the gallery (``docs/make_gallery.py``)
and by the tests that check every built-in against networkx.

``GALLERY``: name -> (spec, heads) drawn and measured in ``docs/patterns.md``.
``GALLERY_LAYERS``: the layer a gallery entry is built for (default 0), for per-layer patterns.
``SMALL``: specs small enough (n around 48) for exhaustive tests; every built-in appears at least once.
"""

from __future__ import annotations

#: (spec, heads) per built-in pattern, for the gallery; several entries may show one pattern.
GALLERY: dict[str, tuple[str, int]] = {
    "full": ("full", 1),
    "causal": ("causal", 1),
    "sliding_window": ("sliding_window:window=33", 1),
    "dilated_window": ("dilated_window:window=16,dilation=[1,2,4,8]", 4),
    "erdos_renyi": ("erdos_renyi:degree=8", 1),
    "watts_strogatz": ("watts_strogatz:k=8,p=0.1", 1),
    "global_itc": ("global_itc:indices=[0,1]", 1),
    "global_etc": ("global_etc:g=2", 1),
    "bigbird": ("bigbird:block=16,window=3,random=3,global=2", 4),
    "bigbird (ETC)": ("bigbird:block=16,window=3,random=3,global=2,mode=etc", 1),
    "bigbird_hf (Hugging Face's)": ("bigbird_hf:block=16,random=3,strict=false", 4),
    "longformer": ("longformer:window=32,global_indices=[0]", 1),
    "sparse_transformer": ("sparse_transformer:stride=16", 1),
    "sparse_transformer (fixed)": ("sparse_transformer:stride=16,mode=fixed", 1),
    "window + ETC globals": ("sliding_window:window=33|global_etc:g=2", 1),
    # causal patterns (language models; docs/language_modelling.md)
    "sliding_window (causal)": ("sliding_window:window=33,causal=true", 1),
    "sink_window": ("sink_window:window=32,sinks=4", 1),
    "window_schedule (top layer)": ("window_schedule:window=16,last=64,layers=4,dilation=[1,1,2,2],dilate_from=2", 4),
    "local_global": ("local_global:window=32,every=6", 1),
}

#: The layer a GALLERY entry is built for when it is not 0 (patterns that differ per layer).
GALLERY_LAYERS: dict[str, int] = {
    "window_schedule (top layer)": 3,
}

#: Small specs (use with n = 48, a multiple of every block size here) for the property tests.
SMALL: tuple[str, ...] = (
    "full",
    "causal",
    "sliding_window:window=5",
    "sliding_window:window=5,causal=true",
    "dilated_window:window=4,dilation=[1,3]",
    "erdos_renyi:degree=3",
    "erdos_renyi:p=0.08,self_loops=false",
    "watts_strogatz:k=4,p=0.2",
    "global_itc:indices=[0,7]",
    "global_etc:g=2",
    "bigbird:block=4,window=3,random=2,global=1",
    "bigbird:block=4,window=3,random=1,global=1,mode=etc",
    "bigbird_hf:block=2,random=1",
    "longformer:window=6,global_indices=[0]",
    "sparse_transformer:stride=4",
    "sparse_transformer:stride=4,mode=fixed,causal=false",
    "sliding_window:window=5|global_etc:g=1",
    "sink_window:window=4,sinks=2",
    "window_schedule:window=3,last=6,layers=2,dilation=[1,2]",
    "local_global:window=4,every=2",
)
