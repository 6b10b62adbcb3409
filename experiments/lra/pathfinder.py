"""Pathfinder / Path-X image generator (Linsley et al. 2018; LRA, Tay et al. 2021; docs/lra_tasks.md).

Each image shows two *target* dashed paths whose seeds are ``seed_distance`` pixels apart,
``num_distractor_snakes`` shorter distractor paths, and two circular markers. Label 1: both
markers sit on the two ends of the same target path; label 0: they sit on ends of different
target paths (origin tip of one, terminal tip of the other). Labels are Bernoulli(0.5).

This is a re-implementation with numpy / scipy.ndimage of drewlinsley/pathfinder
``snakes2.py`` (docs/lra_tasks.md, Pathfinder-32); it is *not* pixel-identical to the LRA
release. Geometry per image:

* A path is a chain of *steps*. A step has an integer pivot ``P`` (target-pixel coordinates,
  ``(row, col)``) and an integer-degree orientation ``a`` with unit vector
  ``u = (sin a, cos a)``. Its dash runs from ``P + m u`` to ``P + (L + m) u`` (``L`` =
  ``paddle_length``, ``m`` = the paddle margin) and the next pivot is
  ``round(P + (L + 2m) u)``. So consecutive dashes are separated by a gap of about ``2m``.
  (The original rounds with ``ceil``; ``round`` avoids a drift towards the bottom right.)
* Growth (``extend_snake``): candidate end points lie on the circle of radius ``L + m``
  around the new pivot at ~1 px arc spacing (random phase); each candidate gets weight
  ``max(cos(min(continuity * delta, pi/2)), 0)**2`` (``delta`` = turn angle in ``[0, pi]``)
  times 0 if the end point is inside the occupancy dilated by another ``m``. Candidates whose
  occupancy footprint overlaps the occupancy get weight 0 and one of the rest is sampled
  (the original samples up to ``max_paddle_retrial + 1`` times and then gives up; evaluating
  every candidate avoids needless regenerations). A dead end fails the path.
* Occupancy: each step's footprint is its *skeleton* (the polyline pivot -> dash start ->
  dash end -> next pivot) dilated by ``thickness/2 + m`` (computed at the antialiasing scale
  as a distance threshold, i.e. a binary dilation with a disc). A step's footprint is added to
  the occupancy only after the next step of the same path is placed, so consecutive dashes of
  one path may touch each other, but nothing else may touch them. Unlike the original, the
  footprint includes the gaps, so no path can cross through the gap of another one; this
  makes the label unambiguous and lets :func:`markers_connected` verify it by flood fill.
* Two target paths: the first pivot is uniform in the central square that excludes a
  ``2*seed_distance`` border band; the second is ``seed_distance`` away at a uniform integer
  angle (up to ``max_paddle_retrial + 1`` tries, and it must not touch the first); both
  orientations uniform. Then both grow alternately to ``contour_length`` steps. If anything
  fails, the pair is discarded and regenerated (up to ``max_target_pair_retrial`` times).
* Distractors: snakes of ``distractor_length`` steps seeded at uniform free positions with
  uniform orientation (rejection sampling), grown the same way; up to
  ``max_distractor_contour_retrial`` attempts each; stop when fewer than 1% of the pixels
  are free. Optional single-dash distractors (``use_single_paddles``; off, as in the
  published LRA wrapper) use the count formula of the original.
* Rendering: dashes are drawn at ``antialias_scale``x resolution (a capsule of width
  ``round(thickness * antialias_scale)``) and downsampled by **area averaging**, which
  replaces PIL's Lanczos resize; each dash is multiplied by ``snake_contrast *
  paddle_contrast`` and combined with ``max``. Markers are discs of radius ``marker_radius``
  centred on the whole pixel nearest to the path tip, rendered the same way with intensity 1.
  The image is ``max(paths, markers)`` byte-scaled min-max to 0..255 like the original
  ``scipy.misc.imsave`` (with contrast 2 x 0.75 at 32x32, dashes can outshine the markers).

Tokens: the uint8 image flattened row-major, a sequence of ``resolution**2`` tokens with
vocabulary 256 (LRA uses the decoded PNG pixel values as tokens).

Determinism: image ``index`` of split ``split`` uses the numpy stream
``SeedSequence(seed, spawn_key=(split_id, index))``, so any set of images can be produced in
any order by any number of worker processes with identical results.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, NamedTuple

import numpy as np

from .parallel import WorkerPool
from .progress import Progress

__all__ = [
    "PathfinderConfig", "pathfinder_config", "PathfinderTrace", "generate_example",
    "generate_pathfinder", "render_noiseless", "markers_connected", "RESOLUTIONS",
    "CONTOUR_LENGTHS", "DIFFICULTY", "GENERATOR_VERSION", "SPLIT_IDS",
]

GENERATOR_VERSION = 1
RESOLUTIONS = (32, 64, 128, 256)
CONTOUR_LENGTHS = (6, 9, 14)
#: LRA difficulty names: ``curv_baseline`` / ``curv_contour_length_9`` / ``_14``.
DIFFICULTY = {"easy": 6, "intermediate": 9, "hard": 14}
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}

# Per-resolution parameters from the LRA TFDS builder docstrings (docs/lra_tasks.md, Pathfinder-32).
_TABLE: dict[int, dict[str, Any]] = {
    32: dict(padding=1, antialias_scale=2, paddle_length=2.0, paddle_thickness=0.5,
             paddle_margin_list=(1,), marker_radius=1.5, seed_distance=7.0, continuity=1.0,
             snake_contrast_list=(2.0,), paddle_contrast_list=(0.75,), distractor_budget=20),
    64: dict(padding=1, antialias_scale=2, paddle_length=5.0, paddle_thickness=1.0,
             paddle_margin_list=(1,), marker_radius=2.5, seed_distance=12.0, continuity=1.8,
             snake_contrast_list=(0.8,), paddle_contrast_list=(1.0,), distractor_budget=22),
    128: dict(padding=1, antialias_scale=2, paddle_length=5.0, paddle_thickness=1.5,
              paddle_margin_list=(2, 3), marker_radius=3.0, seed_distance=20.0, continuity=1.8,
              snake_contrast_list=(0.9,), paddle_contrast_list=(1.0,), distractor_budget=35),
    256: dict(padding=22, antialias_scale=2, paddle_length=5.0, paddle_thickness=2.0,
              paddle_margin_list=(3,), marker_radius=5.0, seed_distance=27.0, continuity=1.8,
              snake_contrast_list=(1.0,), paddle_contrast_list=(1.0,), distractor_budget=30),
}


@dataclasses.dataclass(frozen=True)
class PathfinderConfig:
    """All generator parameters; build it with :func:`pathfinder_config`.

    Lengths are in target pixels. ``distractor_length = contour_length // 3`` and
    ``num_distractor_snakes = budget // distractor_length`` (budget 20/22/35/30 for
    32/64/128/256, Python-2 integer division as in LRA's wrapper).
    """

    resolution: int = 32
    contour_length: int = 14
    padding: int = 1
    antialias_scale: int = 2
    paddle_length: float = 2.0
    paddle_thickness: float = 0.5
    paddle_margin_list: tuple[int, ...] = (1,)
    marker_radius: float = 1.5
    seed_distance: float = 7.0
    continuity: float = 1.0
    distractor_length: int = 4
    num_distractor_snakes: int = 5
    snake_contrast_list: tuple[float, ...] = (2.0,)
    paddle_contrast_list: tuple[float, ...] = (0.75,)
    use_single_paddles: bool = False
    max_distractor_contour_retrial: int = 4
    max_paddle_retrial: int = 2
    max_target_pair_retrial: int = 2000

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution={self.resolution!r}: expected one of {RESOLUTIONS}")
        if self.contour_length not in CONTOUR_LENGTHS:
            raise ValueError(f"contour_length={self.contour_length!r}: expected one of "
                             f"{CONTOUR_LENGTHS} (easy/intermediate/hard)")
        for name in ("antialias_scale", "distractor_length", "max_target_pair_retrial"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r}: expected an int >= 1")
        for name in ("padding", "num_distractor_snakes", "max_distractor_contour_retrial",
                     "max_paddle_retrial"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name}={v!r}: expected an int >= 0")
        for name in ("paddle_length", "paddle_thickness", "marker_radius", "seed_distance",
                     "continuity"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not v > 0:
                raise ValueError(f"{name}={v!r}: expected a positive number")
        for name in ("paddle_margin_list", "snake_contrast_list", "paddle_contrast_list"):
            v = getattr(self, name)
            if not isinstance(v, tuple) or not v or any(not x > 0 for x in v):
                raise ValueError(f"{name}={v!r}: expected a non-empty tuple of positive numbers")
        if 2 * self.padding >= self.resolution:
            raise ValueError(f"padding={self.padding}: too large for resolution={self.resolution}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def pathfinder_config(resolution: int = 32, contour_length: int = 14,
                      **overrides: Any) -> PathfinderConfig:
    """LRA's parameters for ``resolution`` (32 = Pathfinder, 128 = Path-X) and difficulty.

    ``contour_length`` is 6 (easy, ``curv_baseline``), 9 (intermediate) or 14 (hard, the LRA
    task). Any :class:`PathfinderConfig` field can be overridden.
    """
    if resolution not in _TABLE:
        raise ValueError(f"resolution={resolution!r}: expected one of {RESOLUTIONS}")
    if contour_length not in CONTOUR_LENGTHS:
        raise ValueError(f"contour_length={contour_length!r}: expected one of {CONTOUR_LENGTHS} "
                         f"(easy/intermediate/hard)")
    params = dict(_TABLE[resolution])
    budget = params.pop("distractor_budget")
    distractor_length = contour_length // 3
    params.update(resolution=resolution, contour_length=contour_length,
                  distractor_length=distractor_length,
                  num_distractor_snakes=budget // distractor_length)
    fields = {f.name for f in dataclasses.fields(PathfinderConfig)}
    for key, value in overrides.items():
        if key not in fields:
            raise TypeError(f"unknown Pathfinder parameter {key!r}; expected one of "
                            f"{sorted(fields)}")
        if key.endswith("_list") and not isinstance(value, tuple):
            value = tuple(value)
        params[key] = value
    return PathfinderConfig(**params)


# --------------------------------------------------------------------------------------------
# Precomputed per-orientation stamps
# --------------------------------------------------------------------------------------------

class _Geometry(NamedTuple):
    aa: int
    R: int                 # fine half extent of a stamp window (multiple of aa)
    S: int                 # fine window size = 2R + aa
    pad: int               # fine padding of the occupancy arrays (multiple of aa)
    size: int              # side of the padded fine occupancy arrays
    core: np.ndarray       # [360, S/aa, S/aa] float32 downsampled dash intensity
    mask: np.ndarray       # [360, S, S] bool occupancy footprint
    mask2: np.ndarray      # [360, S, S] bool footprint dilated by another margin
    next_off: list[tuple[int, int]]  # next-pivot offset (target pixels) per angle
    phase_cands: np.ndarray    # [n_phase, n_c] candidate angles for each random phase
    phase_end_flat: np.ndarray  # [n_phase, n_c] flat offset of each candidate's dash end
    phase_weights: np.ndarray  # [360, n_phase, n_c] continuity weight given the last angle


def _seg_dist(py: np.ndarray, px: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from points (py, px) to segment a-b (all in the same units)."""
    d = b - a
    dd = float(d @ d)
    if dd == 0.0:
        return np.hypot(py - a[0], px - a[1])
    t = np.clip(((py - a[0]) * d[0] + (px - a[1]) * d[1]) / dd, 0.0, 1.0)
    return np.hypot(py - (a[0] + t * d[0]), px - (a[1] + t * d[1]))


def _step_points(angle_deg: int, length: float, margin: float) -> tuple[np.ndarray, ...]:
    """Pivot, dash start, dash end and next pivot of a step (relative to its pivot)."""
    th = math.radians(angle_deg)
    u = np.array([math.sin(th), math.cos(th)])
    p0 = np.zeros(2)
    start = margin * u
    end = (length + margin) * u
    nxt = np.round((length + 2 * margin) * u)
    return p0, start, end, nxt


@functools.lru_cache(maxsize=16)
def _geometry(resolution: int, aa: int, length: float, thickness: float, margin: int,
              continuity: float) -> _Geometry:
    """Stamps and lookup tables for every integer orientation (computed once per process)."""
    hw = max(1, round(thickness * aa)) / 2.0
    reach = aa * (length + 2 * margin + 0.75) + hw + 2 * margin * aa + 1
    R = int(math.ceil(reach / aa)) * aa
    S = 2 * R + aa
    pad = R + aa * int(math.ceil(length + 2 * margin + 2))
    size = resolution * aa + 2 * pad
    c0 = R + (aa - 1) / 2.0  # fine coordinate of the pivot's centre inside the window
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float64)
    n_t = S // aa
    core = np.zeros((360, n_t, n_t), np.float32)
    mask = np.zeros((360, S, S), bool)
    mask2 = np.zeros((360, S, S), bool)
    next_off: list[tuple[int, int]] = []
    end_flat = np.zeros(360, np.int64)
    for a in range(360):
        p0, start, end, nxt = _step_points(a, length, margin)
        s_f, e_f = c0 + aa * start, c0 + aa * end
        d_core = _seg_dist(yy, xx, s_f, e_f)
        d_skel = np.minimum(np.minimum(_seg_dist(yy, xx, c0 + aa * p0, s_f), d_core),
                            _seg_dist(yy, xx, e_f, c0 + aa * nxt))
        fine_core = (d_core <= hw + 1e-9).astype(np.float32)
        core[a] = fine_core.reshape(n_t, aa, n_t, aa).mean(axis=(1, 3))
        mask[a] = d_skel <= hw + margin * aa + 1e-9
        mask2[a] = d_skel <= hw + 2 * margin * aa + 1e-9
        next_off.append((int(nxt[0]), int(nxt[1])))
        er, ec = np.round(e_f).astype(np.int64)
        end_flat[a] = er * size + ec
    # candidate end points at ~1 px arc spacing on the circle of radius L + m, random phase
    n_c = max(8, int(math.ceil(2 * math.pi * (length + margin))))
    n_phase = max(1, 360 // n_c)
    phase_cands = ((np.arange(n_c)[None, :] * 360) // n_c + np.arange(n_phase)[:, None]) % 360
    delta = np.abs((phase_cands[None, :, :] - np.arange(360)[:, None, None] + 180) % 360 - 180)
    weights = np.maximum(np.cos(np.minimum(continuity * np.radians(delta), np.pi / 2)), 0.0) ** 2
    tables = (core, mask, mask2, phase_cands, end_flat[phase_cands], weights)
    for arr in tables:
        arr.setflags(write=False)
    return _Geometry(aa, R, S, pad, size, core, mask, mask2, next_off, phase_cands,
                     end_flat[phase_cands], weights)


# --------------------------------------------------------------------------------------------
# Per-image construction
# --------------------------------------------------------------------------------------------

@dataclasses.dataclass
class PathfinderTrace:
    """Geometry of one generated image (for tests, plots and label verification).

    ``targets[s]`` / ``distractors[i]`` are ``(angles, pivots)``: int arrays ``[n]`` (degrees)
    and ``[n, 2]`` (row, col) of the steps of each path. ``tips`` ``[2, 2]`` are the two path
    ends that carry a marker (continuous target-pixel coordinates): the origin tip of target
    ``origin`` and the terminal tip of target ``origin`` (label 1) or of the other target
    (label 0). ``markers`` ``[2, 2]`` are the disc centres, i.e. the tips rounded to whole
    pixels as in the original generator.
    """

    label: int
    origin: int
    margin: int
    targets: list[tuple[np.ndarray, np.ndarray]]
    distractors: list[tuple[np.ndarray, np.ndarray]]
    markers: np.ndarray
    tips: np.ndarray
    pair_attempts: int


class _Builder:
    """Occupancy bookkeeping for one image (fine-resolution boolean arrays, padded).

    ``occ`` holds the footprints of committed steps plus the border band and everything
    outside the image; ``occ2`` the same with footprints dilated by one more margin (used to
    weight candidate end points). Each snake's newest step is *pending*: not in ``occ`` yet,
    but checked against by the other snakes.
    """

    def __init__(self, cfg: PathfinderConfig, geo: _Geometry, margin: int,
                 rng: np.random.Generator) -> None:
        self.cfg, self.geo, self.margin, self.rng = cfg, geo, margin, rng
        aa, pad, n = geo.aa, geo.pad, cfg.resolution
        self.occ = np.ones((geo.size, geo.size), bool)
        inner = slice(pad + cfg.padding * aa, pad + (n - cfg.padding) * aa)
        self.occ[inner, inner] = False
        self.occ2 = self.occ.copy()
        self.inner = inner
        self.pending: dict[int, tuple[int, int, int]] = {}  # snake id -> (angle, row, col)
        self.lo = -(pad - geo.R) // aa  # pivots with windows inside the padded arrays
        self.hi = n + (pad - geo.R - aa) // aa

    def window(self, r: int, c: int, snake: int) -> np.ndarray | None:
        """Occupancy (plus other snakes' pending steps) in the stamp window of pivot (r, c)."""
        g = self.geo
        if not (self.lo <= r <= self.hi and self.lo <= c <= self.hi):
            return None
        fr, fc = g.pad + g.aa * r - g.R, g.pad + g.aa * c - g.R
        win = self.occ[fr:fr + g.S, fc:fc + g.S]
        copied = False
        for other, (a2, r2, c2) in self.pending.items():
            if other == snake:
                continue
            dr, dc = g.aa * (r2 - r), g.aa * (c2 - c)
            if abs(dr) >= g.S or abs(dc) >= g.S:
                continue
            if not copied:
                win = win.copy()
                copied = True
            ra, rb = max(0, dr), min(g.S, g.S + dr)
            ca, cb = max(0, dc), min(g.S, g.S + dc)
            win[ra:rb, ca:cb] |= g.mask[a2][ra - dr:rb - dr, ca - dc:cb - dc]
        return win

    def fits(self, a: int, r: int, c: int, snake: int) -> bool:
        """Does step (a, r, c) of ``snake`` avoid the occupancy and other pending steps?"""
        win = self.window(r, c, snake)
        return win is not None and not (win & self.geo.mask[a]).any()

    def commit(self, a: int, r: int, c: int) -> None:
        g = self.geo
        fr, fc = g.pad + g.aa * r - g.R, g.pad + g.aa * c - g.R
        self.occ[fr:fr + g.S, fc:fc + g.S] |= g.mask[a]
        self.occ2[fr:fr + g.S, fc:fc + g.S] |= g.mask2[a]

    def place(self, snake: int, a: int, r: int, c: int) -> None:
        """Make (a, r, c) the pending step of ``snake``; commit its previous pending step."""
        prev = self.pending.get(snake)
        if prev is not None:
            self.commit(*prev)
        self.pending[snake] = (a, r, c)

    def finish(self, snake: int) -> None:
        prev = self.pending.pop(snake, None)
        if prev is not None:
            self.commit(*prev)

    def extend(self, snake: int, steps: list[tuple[int, int, int]]) -> bool:
        """Add one step to ``steps`` (the snake's list of (angle, row, col)).

        Every candidate end point on the circle is weighted by continuity and by the dilated
        occupancy at the end point; candidates whose footprint overlaps the occupancy are
        removed, and one of the rest is sampled. Returns False at a dead end.
        """
        g, rng = self.geo, self.rng
        a_prev, r_prev, c_prev = steps[-1]
        dr, dc = g.next_off[a_prev]
        r, c = r_prev + dr, c_prev + dc
        win = self.window(r, c, snake)
        if win is None:
            return False
        origin = (g.pad + g.aa * r - g.R) * g.size + g.pad + g.aa * c - g.R
        ph = int(rng.random() * g.phase_cands.shape[0])
        w = g.phase_weights[a_prev, ph] * ~self.occ2.ravel()[origin + g.phase_end_flat[ph]]
        nz = np.flatnonzero(w)
        if nz.size == 0:
            return False
        cands = g.phase_cands[ph, nz]
        w = w[nz] * ~(g.mask[cands] & win).any(axis=(1, 2))
        cum = np.cumsum(w)
        total = cum[-1]
        if total <= 0:
            return False
        idx = min(int(np.searchsorted(cum, rng.random() * total, side="right")), w.size - 1)
        a = int(cands[idx])
        self.place(snake, a, r, c)
        steps.append((a, r, c))
        return True

    def free_fraction(self) -> float:
        return 1.0 - float(self.occ[self.inner, self.inner].mean())

    def seed_random(self, snake: int, tries: int = 64) -> tuple[int, int, int] | None:
        """Uniform free position for a new snake of uniform orientation.

        Rejection sampling: ``tries`` uniform pixels are drawn at once; the first whose centre
        is free and where the step fits is used (uniform over the valid positions).
        """
        g, rng, n = self.geo, self.rng, self.cfg.resolution
        a = int(rng.random() * 360)
        pos = rng.integers(0, n, size=(tries, 2))
        off = g.pad + (g.aa - 1) // 2
        free = ~self.occ[off + g.aa * pos[:, 0], off + g.aa * pos[:, 1]]
        for r, c in pos[free].tolist():
            if self.fits(a, r, c, snake):
                self.place(snake, a, r, c)
                return a, r, c
        return None


def _steps_to_arrays(steps: list[tuple[int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(steps, dtype=np.int64).reshape(-1, 3)
    return arr[:, 0].copy(), arr[:, 1:].copy()


def _grow_targets(cfg: PathfinderConfig, geo: _Geometry, margin: int,
                  rng: np.random.Generator) -> tuple[_Builder, list[list[tuple[int, int, int]]], int]:
    n = cfg.resolution
    border = int(math.ceil(2 * cfg.seed_distance))
    if n - 2 * border < 1:
        border = cfg.padding + 1
    for attempt in range(1, cfg.max_target_pair_retrial + 1):
        b = _Builder(cfg, geo, margin, rng)
        a0 = int(rng.integers(0, 360))
        r0, c0 = (int(v) for v in rng.integers(border, n - border, size=2))
        if not b.fits(a0, r0, c0, 0):
            continue
        b.place(0, a0, r0, c0)
        second = None
        for _ in range(1 + cfg.max_paddle_retrial):
            alpha = math.radians(int(rng.integers(0, 360)))
            r1 = r0 + int(round(cfg.seed_distance * math.sin(alpha)))
            c1 = c0 + int(round(cfg.seed_distance * math.cos(alpha)))
            a1 = int(rng.integers(0, 360))
            if 0 <= r1 < n and 0 <= c1 < n and b.fits(a1, r1, c1, 1):
                second = (a1, r1, c1)
                break
        if second is None:
            continue
        b.place(1, *second)
        snakes = [[(a0, r0, c0)], [second]]
        ok = True
        for _ in range(cfg.contour_length - 1):
            if not (b.extend(0, snakes[0]) and b.extend(1, snakes[1])):
                ok = False
                break
        if ok:
            b.finish(0)
            b.finish(1)
            return b, snakes, attempt
    raise RuntimeError(f"Pathfinder: could not place two target paths of {cfg.contour_length} "
                       f"dashes in {cfg.max_target_pair_retrial} attempts with {cfg}")


def _place_distractors(cfg: PathfinderConfig, b: _Builder, count: int, length: int,
                       first_id: int) -> list[list[tuple[int, int, int]]]:
    placed: list[list[tuple[int, int, int]]] = []
    for i in range(count):
        if b.free_fraction() < 0.01:
            break
        sid = first_id + i
        for _ in range(max(1, cfg.max_distractor_contour_retrial)):
            saved = (b.occ.copy(), b.occ2.copy())
            seed = b.seed_random(sid)
            steps = [seed] if seed is not None else None
            if steps is not None:
                for _ in range(length - 1):
                    if not b.extend(sid, steps):
                        steps = None
                        break
            if steps is not None:
                b.finish(sid)
                placed.append(steps)
                break
            b.pending.pop(sid, None)
            b.occ, b.occ2 = saved
    return placed


def _draw_disc(canvas: np.ndarray, centre: np.ndarray, radius: float, aa: int,
               offset: int) -> None:
    """max-paste an area-averaged disc (rendered at aa x) centred at ``centre`` (target px)."""
    half = int(math.ceil(radius)) + 1
    r0 = int(math.floor(centre[0])) - half
    c0 = int(math.floor(centre[1])) - half
    size = 2 * half + 2
    fy, fx = np.mgrid[0:size * aa, 0:size * aa].astype(np.float64)
    cy = aa * (centre[0] - r0) + (aa - 1) / 2.0
    cx = aa * (centre[1] - c0) + (aa - 1) / 2.0
    disc = ((fy - cy) ** 2 + (fx - cx) ** 2 <= (radius * aa) ** 2).astype(np.float32)
    small = disc.reshape(size, aa, size, aa).mean(axis=(1, 3))
    rs, cs = r0 + offset, c0 + offset
    np.maximum(canvas[rs:rs + size, cs:cs + size], small, out=canvas[rs:rs + size, cs:cs + size])


def _dash_endpoints(cfg: PathfinderConfig, margin: int, a: int, r: int, c: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    _, start, end, _ = _step_points(a, cfg.paddle_length, margin)
    p = np.array([r, c], dtype=np.float64)
    return p + start, p + end


def _example(cfg: PathfinderConfig, seed: int, split_id: int, index: int,
             want_trace: bool) -> tuple[np.ndarray, int, PathfinderTrace | None]:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(split_id, index)))
    label = int(rng.integers(0, 2))
    margin = int(cfg.paddle_margin_list[int(rng.integers(0, len(cfg.paddle_margin_list)))])
    snake_contrast = float(cfg.snake_contrast_list[int(rng.integers(0, len(cfg.snake_contrast_list)))])
    geo = _geometry(cfg.resolution, cfg.antialias_scale, float(cfg.paddle_length),
                    float(cfg.paddle_thickness), margin, float(cfg.continuity))
    b, targets, attempts = _grow_targets(cfg, geo, margin, rng)
    distractors = _place_distractors(cfg, b, cfg.num_distractor_snakes, cfg.distractor_length, 2)
    if cfg.use_single_paddles:
        n_single = int(150 / ((7.5 + 13 * margin + 4 * margin * margin) / 123.5)) \
            - 2 * cfg.contour_length - cfg.num_distractor_snakes * cfg.distractor_length
        distractors += _place_distractors(cfg, b, max(0, n_single), 1, 2 + len(distractors) + 1000)

    # render
    n, aa, R = cfg.resolution, geo.aa, geo.R
    off = geo.pad // aa
    canvas = np.zeros((n + 2 * off, n + 2 * off), np.float32)
    n_pc = len(cfg.paddle_contrast_list)
    t = geo.S // aa
    for steps in (*targets, *distractors):
        for a, r, c in steps:
            pc = cfg.paddle_contrast_list[int(rng.integers(0, n_pc))] if n_pc > 1 \
                else cfg.paddle_contrast_list[0]
            rs, cs = off + r - R // aa, off + c - R // aa
            view = canvas[rs:rs + t, cs:cs + t]
            np.maximum(view, geo.core[a] * np.float32(snake_contrast * pc), out=view)
    origin = int(rng.integers(0, 2))
    first_tip = _dash_endpoints(cfg, margin, *targets[origin][0])[0]
    other = origin if label == 1 else 1 - origin
    last_tip = _dash_endpoints(cfg, margin, *targets[other][-1])[1]
    tips = np.stack([first_tip, last_tip])
    markers = np.round(tips)
    for centre in markers:
        _draw_disc(canvas, centre, cfg.marker_radius, aa, off)
    img = canvas[off:off + n, off:off + n]
    lo, hi = float(img.min()), float(img.max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    out = np.clip((img - lo) * scale + 0.4999, 0, 255).astype(np.uint8)
    trace = None
    if want_trace:
        trace = PathfinderTrace(label=label, origin=origin, margin=margin,
                                targets=[_steps_to_arrays(s) for s in targets],
                                distractors=[_steps_to_arrays(s) for s in distractors],
                                markers=markers, tips=tips, pair_attempts=attempts)
    return out, label, trace


def _check_seed_index(seed: object, split: str, index: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r}: expected a non-negative int")
    if split not in SPLIT_IDS:
        raise ValueError(f"split={split!r}: expected one of {tuple(SPLIT_IDS)}")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"index={index!r}: expected a non-negative int")
    return SPLIT_IDS[split]


def generate_example(config: PathfinderConfig, seed: int, index: int, split: str = "train",
                     return_trace: bool = False
                     ) -> tuple[np.ndarray, int] | tuple[np.ndarray, int, PathfinderTrace]:
    """One image: ``(uint8 [n, n] image, label)`` (plus its :class:`PathfinderTrace`).

    Deterministic in ``(config, seed, split, index)``.
    """
    split_id = _check_seed_index(seed, split, index)
    img, label, trace = _example(config, int(seed), split_id, int(index), return_trace)
    return (img, label, trace) if return_trace else (img, label)


def _chunk(task: tuple[PathfinderConfig, int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    cfg, seed, split_id, start, stop = task
    n2 = cfg.resolution ** 2
    tokens = np.empty((stop - start, n2), np.uint8)
    labels = np.empty(stop - start, np.int64)
    for i in range(start, stop):
        img, lab, _ = _example(cfg, seed, split_id, i, False)
        tokens[i - start] = img.ravel()
        labels[i - start] = lab
    return tokens, labels


def generate_pathfinder(config: PathfinderConfig | None = None, *, n_train: int = 160_000,
                        n_val: int = 20_000, n_test: int = 20_000, seed: int = 0,
                        workers: int | None = None, progress: bool = True,
                        chunk_size: int = 256) -> dict[str, dict[str, np.ndarray]]:
    """Generate train/val/test splits (LRA: 200k images split 160k/20k/20k).

    Returns ``splits[name]`` with ``tokens`` (uint8 ``[N, resolution**2]``, pixels row-major),
    ``labels`` (int64 0/1) and ``lengths`` (all ``resolution**2``). The result does not depend
    on ``workers`` or ``chunk_size``.
    """
    cfg = config if config is not None else pathfinder_config()
    if not isinstance(cfg, PathfinderConfig):
        raise TypeError(f"config: expected a PathfinderConfig, got {type(cfg).__name__}")
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"n_{name}={v!r}: expected a non-negative int")
    _check_seed_index(seed, "train", 0)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size={chunk_size!r}: expected a positive int")
    tasks = []
    for name, count in sizes.items():
        for start in range(0, count, chunk_size):
            tasks.append((cfg, int(seed), SPLIT_IDS[name], start, min(start + chunk_size, count)))
    parts: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {0: [], 1: [], 2: []}
    total = sum(sizes.values())
    with WorkerPool(workers) as pool, \
            Progress(total, f"Pathfinder-{cfg.resolution}", enabled=progress) as bar:
        for task, result in zip(tasks, pool.map(_chunk, tasks)):
            parts[task[2]].append(result)
            bar.update(task[4] - task[3])
    n2 = cfg.resolution ** 2
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, sid in SPLIT_IDS.items():
        if parts[sid]:
            tokens = np.concatenate([p[0] for p in parts[sid]])
            labels = np.concatenate([p[1] for p in parts[sid]])
        else:
            tokens, labels = np.zeros((0, n2), np.uint8), np.zeros(0, np.int64)
        out[name] = {"tokens": tokens, "labels": labels,
                     "lengths": np.full(labels.size, n2, np.int64)}
    return out


# --------------------------------------------------------------------------------------------
# Noiseless rendering and flood-fill label check
# --------------------------------------------------------------------------------------------

def render_noiseless(trace: PathfinderTrace, config: PathfinderConfig, *,
                     include_distractors: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Binary fine-scale rendering of the two target paths (no distractors unless asked for).

    Each path is drawn as its full skeleton polyline (pivot -> dash start -> dash end -> next
    pivot for every step), i.e. the dashes plus the gaps between consecutive dashes, with
    lines ~1.5 fine pixels wide, so consecutive dashes of a path connect. Returns the boolean
    image (antialias scale, padded) and the fine pixel positions ``[2, 2]`` of the two marked
    path tips.
    """
    geo = _geometry(config.resolution, config.antialias_scale, float(config.paddle_length),
                    float(config.paddle_thickness), trace.margin, float(config.continuity))
    aa, pad = geo.aa, geo.pad
    size = config.resolution * aa + 2 * pad
    img = np.zeros((size, size), bool)

    def fine(p: np.ndarray) -> np.ndarray:
        return pad + aa * np.asarray(p, dtype=np.float64) + (aa - 1) / 2.0

    radius = 0.75
    paths = trace.targets + (trace.distractors if include_distractors else [])
    for angles, pivots in paths:
        for a, (r, c) in zip(angles.tolist(), pivots.tolist()):
            p0, start, end, nxt = _step_points(a, config.paddle_length, trace.margin)
            base = np.array([r, c], dtype=np.float64)
            pts = [fine(base + p) for p in (p0, start, end, nxt)]
            for p, q in zip(pts[:-1], pts[1:]):
                lo = np.floor(np.minimum(p, q) - 2).astype(int)
                hi = np.ceil(np.maximum(p, q) + 2).astype(int) + 1
                yy, xx = np.mgrid[lo[0]:hi[0], lo[1]:hi[1]].astype(np.float64)
                img[lo[0]:hi[0], lo[1]:hi[1]] |= _seg_dist(yy, xx, p, q) <= radius
    marker_px = np.round(fine(trace.tips)).astype(np.int64)
    return img, marker_px


def markers_connected(trace: PathfinderTrace, config: PathfinderConfig, *,
                      include_distractors: bool = False) -> bool:
    """Flood-fill check: are the two markers in the same 8-connected component of the
    noiseless rendering of the target paths (optionally with the distractors, which must not
    bridge them either)? Equals the label for a correctly generated image."""
    from scipy import ndimage

    img, marker_px = render_noiseless(trace, config, include_distractors=include_distractors)
    labels, _ = ndimage.label(img, structure=np.ones((3, 3), bool))
    l0 = labels[marker_px[0, 0], marker_px[0, 1]]
    l1 = labels[marker_px[1, 0], marker_px[1, 1]]
    if l0 == 0 or l1 == 0:
        raise AssertionError("a marker centre is not on a target path")
    return bool(l0 == l1)
