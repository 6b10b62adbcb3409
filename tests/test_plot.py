"""Plots: the pixels match the mask, every figure saves as PNG and SVG, bad paths fail early."""

from __future__ import annotations

import os

import matplotlib.image as mpimg
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from sparsegraph import patterns
from analysis_graphs import masks
from sparsegraph import AttentionGraph
from sparsegraph.analysis import compare_table, information_flow
from sparsegraph.plot import (
    KIND_COLORS,
    check_output_path,
    draw_graph,
    mask_image,
    plot_coverage,
    plot_degree_histogram,
    plot_heads,
    plot_mask,
    plot_metrics,
    save,
)
from sparsegraph.plot._style import EDGE_COLOR, KIND_PRIORITY


@given(masks(max_n=20))
def test_token_pixels_are_the_mask(mask: np.ndarray) -> None:
    img = mask_image(AttentionGraph.from_mask(mask))
    assert img.tile == 1 and img.rgb.shape == mask.shape + (3,)
    assert np.array_equal(img.category >= 0, mask)
    assert np.allclose(img.rgb[~mask], 1.0)  # white where there is no edge
    assert np.allclose(img.rgb[mask], to_rgb(EDGE_COLOR))  # no kinds recorded: one colour


@settings(max_examples=20)
@given(st.sampled_from(["bigbird:block=4,random=2", "watts_strogatz:k=4,p=0.3", "longformer:window=6,global_indices=[0,9]",
                        "sliding_window:window=5|global_etc:g=2", "erdos_renyi:degree=3"]),
       st.integers(0, 100))
def test_kind_colours_follow_the_priority(spec: str, seed: int) -> None:
    g = patterns.build(spec, 32, seed=seed)
    img = mask_image(g)
    dense = g.to_dense(0)
    names = [k for k in KIND_PRIORITY if k in g.kinds] + [k for k in g.kinds if k not in KIND_PRIORITY]
    kinds = {k: g.kind(k, 0).toarray() for k in names}
    for i, j in zip(*np.nonzero(dense)):
        first = next((k for k in names if kinds[k][i, j]), "edge")
        assert img.labels[img.category[i, j]] == first
        want = to_rgb(KIND_COLORS.get(first, EDGE_COLOR)) if first in KIND_COLORS or first == "edge" else None
        if want is not None:
            assert np.allclose(img.rgb[i, j], want)
    assert (img.category[~dense] == -1).all()


def test_downsampled_pixels_shade_the_share_of_edges() -> None:
    n = 1000
    g = patterns.build("watts_strogatz:k=10,p=0.3", n, seed=3)
    img = mask_image(g, max_pixels=100)
    assert img.tile == 10 and img.rgb.shape == (100, 100, 3)
    dense = g.to_dense(0)
    share = dense.reshape(100, 10, 100, 10).mean(axis=(1, 3))
    assert np.allclose(img.fill, share)
    assert np.array_equal(img.category >= 0, share > 0)
    # darker = denser: any edge is visible, a full tile is the full colour
    edge = share > 0
    lightness = img.rgb.mean(axis=2)
    assert (lightness[edge] < 1.0).all() and (lightness[~edge] == 1.0).all()


def test_png_pixels_match_the_mask(tmp_path) -> None:
    """Render, save, read the PNG back and look at the centre of every cell."""
    g = patterns.build("bigbird:block=4,window=3,random=1,global=1", 24, seed=5)
    fig = plot_mask(g)
    dpi = 100
    fig.set_dpi(dpi)
    fig.canvas.draw()  # final layout at the saving resolution
    path = save(fig, tmp_path / "mask.png", dpi=dpi)
    png = mpimg.imread(path)[..., :3]
    height = png.shape[0]
    ax = fig.axes[0]
    img = mask_image(g)
    for i in range(24):
        for j in range(24):
            x, y = ax.transData.transform((j + 0.5, i + 0.5))
            pixel = png[int(round(height - y)), int(round(x))]
            assert np.allclose(pixel, img.rgb[i, j], atol=0.03), (i, j, pixel, img.rgb[i, j])


def test_every_figure_saves_as_png_and_svg(tmp_path) -> None:
    g = patterns.build("bigbird:block=8,random=1", 128, heads=3, seed=1)
    ws = patterns.build("watts_strogatz:k=4,p=0.2", 30, seed=1)
    rows = compare_table([patterns.get("sliding_window:window=5"), patterns.get("bigbird:block=8")], [64, 128],
                         metrics=["degrees", "paths", "flow", "spectral", "clustering"])
    figures = {
        "mask": plot_mask(g, 1, block=8),
        "merged": plot_mask(g, merged=True, kinds=False),
        "heads": plot_heads(g),
        "graph": draw_graph(ws),
        "metrics": plot_metrics(rows, ["path_length", "diameter", "spectral_gap", "clustering"]),
        "coverage": plot_coverage({"bigbird": g, "ws": information_flow(ws), "row": rows[0]}),
        "degrees": plot_degree_histogram(ws),
    }
    for name, fig in figures.items():
        assert isinstance(fig, Figure)
        for suffix in (".png", ".svg"):
            p = save(fig, tmp_path / f"{name}{suffix}")
            data = p.read_bytes()
            assert len(data) > 2000, name
            assert data.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in data[:2000]


def test_draw_graph_layouts_and_limits() -> None:
    ws = patterns.build("watts_strogatz:k=4,p=0.2", 30, seed=1)
    assert "circular layout" in draw_graph(ws).axes[0].get_title()
    er = patterns.build("erdos_renyi:degree=2", 30, seed=1)
    assert "spring layout" in draw_graph(er).axes[0].get_title()
    with pytest.raises(ValueError, match="at most max_nodes=256"):
        draw_graph(patterns.build("full", 300))
    with pytest.raises(ValueError, match="layout must be one of"):
        draw_graph(ws, layout="grid")


def test_output_paths_are_checked_before_any_work(tmp_path, monkeypatch) -> None:
    with pytest.raises(ValueError, match="must end in one of .png, .svg, .pdf"):
        check_output_path(tmp_path / "mask.jpg")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "mask.png")
    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(PermissionError, match="permission denied"):
        check_output_path(tmp_path / "mask.png")


def test_plot_metrics_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="rows is empty"):
        plot_metrics([])
    with pytest.raises(ValueError, match="metrics must be a non-empty list"):
        plot_metrics([{"pattern": "x", "n": 4}], ["nope"])


@given(st.integers(1, 64), st.integers(1, 300))
def test_tiles_line_up_with_blocks(block: int, max_pixels: int) -> None:
    g = patterns.build("sliding_window:window=3", 600)
    img = mask_image(g, max_pixels=max_pixels, align=block)
    plain = mask_image(g, max_pixels=max_pixels)
    assert img.tile >= plain.tile and max(img.rgb.shape[:2]) <= max_pixels
    assert img.tile == 1 or block % img.tile == 0 or img.tile % block == 0
