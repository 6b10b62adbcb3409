"""Pathfinder / Path-X generator (experiments.lra.pathfinder)."""

from __future__ import annotations

import numpy as np
import pytest

from sparsegraph.experiments.lra import pathfinder as pf

CFG32 = pf.pathfinder_config(32, 14)
N_IMAGES = 120


@pytest.fixture(scope="module")
def examples32() -> list[tuple[np.ndarray, int, pf.PathfinderTrace]]:
    return [pf.generate_example(CFG32, 11, i, return_trace=True) for i in range(N_IMAGES)]


def test_parameter_table() -> None:
    assert (CFG32.paddle_length, CFG32.paddle_thickness, CFG32.paddle_margin_list) == (2.0, 0.5, (1,))
    assert (CFG32.seed_distance, CFG32.continuity, CFG32.marker_radius) == (7.0, 1.0, 1.5)
    assert (CFG32.distractor_length, CFG32.num_distractor_snakes) == (4, 5)
    easy = pf.pathfinder_config(32, 6)
    assert (easy.distractor_length, easy.num_distractor_snakes) == (2, 10)
    px = pf.pathfinder_config(128, 14)
    assert (px.paddle_margin_list, px.seed_distance, px.num_distractor_snakes) == ((2, 3), 20.0, 8)
    assert pf.pathfinder_config(256, 14).num_distractor_snakes == 7
    assert pf.pathfinder_config(32, 9, continuity=1.4).continuity == 1.4


@pytest.mark.parametrize("kwargs, name", [
    (dict(resolution=48), "resolution"),
    (dict(contour_length=7), "contour_length"),
    (dict(contour_length=15), "contour_length"),
])
def test_bad_parameters(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        pf.pathfinder_config(**kwargs)
    with pytest.raises(ValueError, match=name):
        pf.PathfinderConfig(**kwargs)


def test_bad_overrides_and_arguments() -> None:
    with pytest.raises(TypeError, match="paddle_lenght"):
        pf.pathfinder_config(32, 14, paddle_lenght=3)
    with pytest.raises(ValueError, match="continuity"):
        pf.pathfinder_config(32, 14, continuity=-1.0)
    with pytest.raises(ValueError, match="split"):
        pf.generate_example(CFG32, 0, 0, split="dev")
    with pytest.raises(ValueError, match="n_train"):
        pf.generate_pathfinder(CFG32, n_train=-5, n_val=0, n_test=0)


def test_images_and_structure(examples32: list) -> None:
    for img, label, trace in examples32:
        assert img.shape == (32, 32) and img.dtype == np.uint8
        assert img.max() == 255 and img.min() == 0
        assert label == trace.label and label in (0, 1)
        assert len(trace.targets) == 2
        for angles, pivots in trace.targets:
            assert angles.shape == (CFG32.contour_length,) and pivots.shape == (14, 2)
        assert len(trace.distractors) <= CFG32.num_distractor_snakes
        for angles, _ in trace.distractors:
            assert angles.shape == (CFG32.distractor_length,)
        # markers are rendered at full intensity at their centres
        assert np.abs(trace.markers - trace.tips).max() <= 0.5
        for r, c in trace.markers.astype(int):
            assert img[r, c] >= 170  # intensity 1; dashes (contrast 1.5) may be brighter
        # the background dominates
        assert (img == 0).mean() > 0.5
    mean_distractors = np.mean([len(t.distractors) for _, _, t in examples32])
    assert mean_distractors > 2.5


def test_labels_verified_by_flood_fill(examples32: list) -> None:
    for _, label, trace in examples32:
        assert pf.markers_connected(trace, CFG32) == bool(label)
        # distractors never touch the target paths, so they cannot bridge them either
        assert pf.markers_connected(trace, CFG32, include_distractors=True) == bool(label)


@pytest.mark.parametrize("resolution, contour_length, n", [(32, 6, 25), (64, 9, 10), (128, 14, 6)])
def test_labels_verified_other_settings(resolution: int, contour_length: int, n: int) -> None:
    cfg = pf.pathfinder_config(resolution, contour_length)
    labels = []
    for i in range(n):
        img, label, trace = pf.generate_example(cfg, 5, i, return_trace=True)
        assert img.shape == (resolution, resolution)
        assert pf.markers_connected(trace, cfg) == bool(label)
        assert pf.markers_connected(trace, cfg, include_distractors=True) == bool(label)
        labels.append(label)
    assert 0 < sum(labels) < n


def test_flood_fill_detects_swapped_marker(examples32: list) -> None:
    """Sanity check of the checker itself: moving the second marker to the other target's
    terminal tip flips the answer."""
    _, label, trace = examples32[0]
    other = 1 - trace.origin if label == 1 else trace.origin
    angles, pivots = trace.targets[other]
    _, _, end, _ = pf._step_points(int(angles[-1]), CFG32.paddle_length, trace.margin)
    moved = pf.PathfinderTrace(label=1 - label, origin=trace.origin, margin=trace.margin,
                               targets=trace.targets, distractors=trace.distractors,
                               markers=trace.markers,
                               tips=np.stack([trace.tips[0], pivots[-1] + end]),
                               pair_attempts=trace.pair_attempts)
    assert pf.markers_connected(moved, CFG32) == (not label)


def test_label_balance(examples32: list) -> None:
    labels = np.array([lab for _, lab, _ in examples32])
    assert abs(labels.mean() - 0.5) < 0.17  # > 3.5 sigma for n = 120


def test_deterministic_per_seed_and_index(examples32: list) -> None:
    img, label, _ = examples32[7]
    again, label2 = pf.generate_example(CFG32, 11, 7)
    np.testing.assert_array_equal(img, again)
    assert label == label2
    other, _ = pf.generate_example(CFG32, 12, 7)
    assert not np.array_equal(img, other)
    val, _ = pf.generate_example(CFG32, 11, 7, split="val")
    assert not np.array_equal(img, val)


def test_dataset_independent_of_workers_and_chunks(examples32: list) -> None:
    a = pf.generate_pathfinder(CFG32, n_train=20, n_val=6, n_test=6, seed=11, workers=1,
                               progress=False, chunk_size=7)
    b = pf.generate_pathfinder(CFG32, n_train=20, n_val=6, n_test=6, seed=11, workers=2,
                               progress=False, chunk_size=4)
    for name in ("train", "val", "test"):
        for field in ("tokens", "labels", "lengths"):
            np.testing.assert_array_equal(a[name][field], b[name][field])
    assert a["train"]["tokens"].shape == (20, 1024) and a["train"]["tokens"].dtype == np.uint8
    assert (a["train"]["lengths"] == 1024).all()
    # image i of the train split is generate_example(seed, i), flattened row-major
    for i in range(20):
        np.testing.assert_array_equal(a["train"]["tokens"][i], examples32[i][0].ravel())
        assert a["train"]["labels"][i] == examples32[i][1]
