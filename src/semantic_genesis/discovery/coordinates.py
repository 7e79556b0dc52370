"""Where a class is cut: the reference coordinate, its borders and the air test (method.md §2.4).

The reference draws a cube *corner* uniformly inside borders (100 voxels in-plane, 30 in z), then
keeps it only when the cube is mostly air or lung: for every voxel ``(i, j, d)`` of the
``px x py x pz`` cube it finds the first of the slices ``d, d+1, ..., d+L-1`` (``L`` = 3, the
look-ahead) whose value is tissue (``>= 0.425``, i.e. ``>= -150 HU``), scores ``1 - k / (L-1)``
(1, 0.5 or 0 for ``L`` = 3; 0 when no tissue is found), and rejects the cube when the sum of the
scores is above 15 % of the cube. We compute exactly that, but vectorised and for many candidate
corners at once:

* the per-voxel score depends only on the voxel and the ``L-1`` slices after it: (L-1) times it
  is a weighted sum of a few boolean masks ("first tissue at offset k"), so a cube's score is a
  few popcounts instead of ``px * py * pz * L`` Python steps;
* when many trials overlap (small volumes), the score field is built once over the region the
  candidates reach and summed along z, so each cube's sum is the difference of two planes; when
  the region is large (512 x 512 x 300 CTs), each cube is thresholded and counted on its own.

``tests/discovery/reference.py`` holds a plain-loop port of the
reference, used to check and benchmark this one.

**Borders for small volumes.** The reference's borders (100 in-plane, 30 in z) need volumes of at
least 265 x 265 x 96 voxels; our phantoms are about 233 x 233 x 150 (or 96 x 96 x 64 in tests).
For each axis the border is therefore ``min(reference border, floor(fraction * free))`` where
``free`` is the reference's free range of the corner (``size - patch - 1`` in-plane,
``size - patch - L - 1`` in z) and ``fraction`` = 0.25: the corner stays in the middle half of
its range or more (the reference keeps it in the middle 55 % of a 512-voxel slice). For 512 x 512
slices and >= 156 slices this is exactly the reference's 100 / 30.

**MR.** The air test means nothing in MR (no Hounsfield units, no air-filled lungs), so for
``modality == "mr"`` the cube must instead lie in the foreground: at most ``max_score`` (15 %) of
its voxels may be below ``mr_threshold`` (0.1 of the [0, 1] percentile-normalised range,
i.e. background), which keeps cubes inside the head/body rather than in the air around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: method.md §2.4, the reference's constants.
REFERENCE_BORDER = (100, 100, 30)
TISSUE_THRESHOLD = 0.425  # (-150 HU + 1000) / 2000
LOOK_AHEAD = 3  # len_depth
MAX_SCORE = 0.15  # lung_max


@dataclass(frozen=True)
class CoordinateRules:
    """How a reference coordinate is drawn and tested (defaults = the reference, §2.4)."""

    patch: tuple[int, int, int] = (64, 64, 32)
    border: tuple[int, int, int] = REFERENCE_BORDER
    border_fraction: float = 0.25
    look_ahead: int = LOOK_AHEAD
    tissue_threshold: float = TISSUE_THRESHOLD
    max_score: float = MAX_SCORE
    mr_threshold: float = 0.1
    trials: int = 200


def corner_bounds(shape: Sequence[int], rules: CoordinateRules) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive bounds ``(lo, hi)`` of the cube corner in a volume of ``shape`` (x, y, z).

    The upper bound is the reference's (``size - patch - 1 - border`` in-plane and
    ``size - patch - L - 1 - border`` in z, §2.4) with each border scaled down for small volumes
    (module docstring). ``hi < lo`` on some axis means the volume cannot hold the cube.
    """
    shape = np.asarray(shape, dtype=np.int64)
    patch = np.asarray(rules.patch, dtype=np.int64)
    free = shape - patch - 1
    free[2] -= rules.look_ahead
    border = np.minimum(np.asarray(rules.border, dtype=np.int64),
                        np.floor(rules.border_fraction * np.maximum(free, 0)).astype(np.int64))
    return border, free - border


def draw_corners(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, n: int) -> np.ndarray:
    """``n`` corners drawn uniformly with inclusive bounds, as ``np.random.randint(lo, hi + 1)``
    in the reference; shape ``(n, 3)``, int64."""
    return rng.integers(lo, hi + 1, size=(n, 3), dtype=np.int64)


def at_least(values: np.ndarray, threshold: float, out: np.ndarray | None = None) -> np.ndarray:
    """``values >= threshold``, exactly, but about 6x faster for float16/float32 than numpy's
    comparison (which converts every float16 element): for a positive threshold, comparing the
    bit patterns as signed integers against the smallest representable value ``>= threshold``
    orders every non-NaN value correctly (negative values and -0.0 have the sign bit set).
    ``out`` (a bool array of ``values``' shape, any layout) receives the result."""
    dtype = values.dtype
    if threshold > 0 and dtype in (np.float16, np.float32):
        step = dtype.type(threshold)
        if float(step) < threshold:
            step = np.nextafter(step, dtype.type(np.inf))
        ints = np.int16 if dtype == np.float16 else np.int32
        return np.greater_equal(values.view(ints), np.asarray(step).view(ints), out=out)
    return np.greater_equal(values, threshold, out=out)


def _score_masks(values: np.ndarray, rules: CoordinateRules, modality: str, axis: int,
                 out: np.ndarray | None = None):
    """Yield boolean masks whose count, summed, is (L-1) times the reference's score sum.

    CT: a voxel whose first tissue slice is at look-ahead offset ``k`` scores ``(L-1) - k``,
    which is the number of ``j`` in ``0 .. L-2`` with tissue somewhere in offsets ``0 .. j``;
    so the masks are the running ORs ``t0``, ``t0|t1``, ... (``t0 + (t0|t1)`` for L = 3),
    along the slice ``axis`` of ``values``, over its first ``size - (L-1)`` slices (the others
    only serve as look-ahead). MR: the background mask. ``out`` (bool, ``values``' shape, any
    layout) receives the thresholded values."""
    if modality == "mr":
        yield ~at_least(values, rules.mr_threshold, out=out)
        return
    tissue = at_least(values, rules.tissue_threshold, out=out)
    steps = rules.look_ahead - 1
    depth = tissue.shape[axis] - steps

    def at(offset: int) -> np.ndarray:
        return tissue[(slice(None),) * axis + (slice(offset, offset + depth),)]

    running = at(0)
    yield running
    for offset in range(1, steps):
        running = np.logical_or(running, at(offset))
        yield running


def _sums_by_window(volume: np.ndarray, corners: np.ndarray, rules: CoordinateRules,
                    modality: str, extra: int) -> np.ndarray:
    """Each cube on its own: threshold its window (z-first, into one reused buffer, so every
    mask is contiguous) and count each mask (fast popcounts)."""
    px, py, pz = rules.patch
    mask = np.empty((pz + extra, px, py), dtype=bool)
    sums = np.empty(len(corners), dtype=np.int64)
    for n, (x, y, z) in enumerate(corners):
        window = volume[x:x + px, y:y + py, z:z + pz + extra].transpose(2, 0, 1)
        sums[n] = sum(np.count_nonzero(m)
                      for m in _score_masks(window, rules, modality, axis=0, out=mask))
    return sums


def _sums_by_region(volume: np.ndarray, corners: np.ndarray, rules: CoordinateRules,
                    modality: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """All cubes at once: the per-voxel score field over the region they reach, in (z, x, y)
    order, summed along z plane by plane (far faster than np.cumsum here); a cube's sum is then
    the difference of two planes, summed over ``px x py`` values."""
    px, py, pz = rules.patch
    region = volume[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].transpose(2, 0, 1)
    mask = np.empty(region.shape, dtype=bool)  # z-first and contiguous: one strided read
    field = None
    for m in _score_masks(region, rules, modality, axis=0, out=mask):
        field = m.view(np.int8).copy() if field is None else np.add(field, m.view(np.int8),
                                                                     out=field)
    del mask  # keep the peak memory at a few region-sized arrays
    top = field.shape[0] * max(1, rules.look_ahead - 1)  # the largest cumulative value
    cum = np.zeros((field.shape[0] + 1,) + field.shape[1:],
                   dtype=np.int16 if top < np.iinfo(np.int16).max else np.int32)
    for k in range(field.shape[0]):
        np.add(cum[k], field[k], out=cum[k + 1])
    sums = np.empty(len(corners), dtype=np.int64)
    for n, (x, y, z) in enumerate(corners - lo):
        sums[n] = (cum[z + pz, x:x + px, y:y + py] - cum[z, x:x + px, y:y + py]).sum()
    return sums


def cube_scores(volume: np.ndarray, corners: np.ndarray, rules: CoordinateRules,
                modality: str = "ct", method: str = "auto") -> np.ndarray:
    """The air-test score of each cube, as a fraction of the cube (reference sum / cube size).

    CT: the reference's weighted tissue fraction (module docstring), accepted when
    ``<= max_score``. MR: the background fraction, accepted likewise.

    Args:
        volume: (x, y, z) array in [0, 1]; a memory map is fine, only the region the corners
            reach is read.
        corners: ``(n, 3)`` cube corners; each cube (plus L-1 look-ahead slices for CT) must lie
            inside the volume.
        rules: patch size, thresholds and look-ahead.
        modality: "ct" (air test) or "mr" (foreground test).
        method: ``region`` (one score field for all cubes: best when they overlap, as many
            trials in a small volume do), ``window`` (each cube alone: best when the region is
            large, e.g. 512 x 512 x 300 CTs), or ``auto`` (whichever touches fewer voxels,
            weighing a region voxel as 4 window voxels). All give the same scores.
    """
    corners = np.asarray(corners, dtype=np.int64).reshape(-1, 3)
    if len(corners) == 0:
        return np.zeros(0)
    px, py, pz = rules.patch
    extra = 0 if modality == "mr" else rules.look_ahead - 1
    lo = corners.min(axis=0)
    hi = corners.max(axis=0) + np.array([px, py, pz + extra])
    if np.any(lo < 0) or np.any(hi > np.asarray(volume.shape)):
        raise ValueError(f"cube outside the volume of shape {volume.shape}")
    if method == "auto":
        region_cost = 4 * np.prod(hi - lo)
        method = "region" if region_cost <= len(corners) * px * py * (pz + extra) else "window"
    if method == "region":
        sums = _sums_by_region(volume, corners, rules, modality, lo, hi)
    else:
        sums = _sums_by_window(volume, corners, rules, modality, extra)
    scale = 1 if modality == "mr" else rules.look_ahead - 1
    return sums / scale / (px * py * pz)


def accepted(scores: np.ndarray, rules: CoordinateRules) -> np.ndarray:
    """Which cubes pass: the reference rejects when the score sum is *greater* than 15 %."""
    return np.asarray(scores) <= rules.max_score


#: the start of each reason :func:`find_candidates` gives (for per-reason counts)
LARGER, NO_ROOM = "patch larger than the volume", "no room for the patch within the borders"


def too_small(shape: Sequence[int], rules: CoordinateRules, modality: str = "ct") -> str:
    """Why a volume of ``shape`` cannot hold a cube corner: the cube (plus, for CT, the
    look-ahead slices) is larger than the volume, or it fits but not inside the borders."""
    need = np.asarray(rules.patch) + [1, 1, 1 + (0 if modality == "mr" else rules.look_ahead)]
    patch = " x ".join(map(str, rules.patch))
    volume = " x ".join(map(str, shape))
    if np.any(np.asarray(shape) < need):
        return (f"{LARGER}: patch {patch} needs a volume of at least "
                f"{' x '.join(map(str, need))} voxels (a corner margin and the test's "
                f"look-ahead slices), this one is {volume}; choose a smaller --patch")
    return f"{NO_ROOM}: patch {patch} in a volume of {volume} voxels"


def find_candidates(volume: np.ndarray, rng: np.random.Generator, rules: CoordinateRules,
                    modality: str = "ct") -> tuple[np.ndarray, np.ndarray, str]:
    """Draw ``rules.trials`` corners in the reference volume and keep those that pass.

    All trials are drawn at once and tested in one batch; the accepted ones are returned in the
    order they were drawn, so "the first that also passes the distance test" is what the
    reference's sequential loop would have found (without its never-reset ``repeated`` flag).

    Returns:
        ``(corners (m, 3), scores (m,), reason)``; ``reason`` is empty when ``m > 0`` and else
        says why no corner passed.
    """
    lo, hi = corner_bounds(volume.shape, rules)
    if np.any(hi < lo):
        return np.zeros((0, 3), np.int64), np.zeros(0), too_small(volume.shape, rules, modality)
    corners = draw_corners(rng, lo, hi, rules.trials)
    scores = cube_scores(volume, corners, rules, modality)
    keep = accepted(scores, rules)
    if not keep.any():
        test = "foreground" if modality == "mr" else "air"
        return (np.zeros((0, 3), np.int64), np.zeros(0),
                f"no corner passed the {test} test in {rules.trials} trials "
                f"(best score {scores.min():.3f} > {rules.max_score})")
    return corners[keep], scores[keep], ""


def first_far_enough(candidates: np.ndarray, taken: Sequence[Sequence[int]],
                     min_distance: float) -> int | None:
    """Index of the first candidate at Euclidean distance >= ``min_distance`` (voxels, as the
    reference) from every corner already taken by another class; None when there is none."""
    candidates = np.asarray(candidates, dtype=np.float64).reshape(-1, 3)
    if len(candidates) == 0:
        return None
    if len(taken) == 0 or min_distance <= 0:
        return 0
    diff = candidates[:, None, :] - np.asarray(taken, dtype=np.float64)[None, :, :]
    ok = np.sqrt((diff ** 2).sum(axis=2)).min(axis=1) >= min_distance
    hits = np.flatnonzero(ok)
    return int(hits[0]) if len(hits) else None


def fit_corner(corner: Sequence[int], shape: Sequence[int], patch: Sequence[int],
               mode: str = "skip") -> tuple[int, int, int] | None:
    """The corner to crop a neighbour at, or None when its volume cannot hold the cube.

    ``skip``: the reference's corner, or None when the cube would leave the volume (the
    reference crops without checking, §2.5). ``clamp``: the corner moved the least needed to
    fit (None only when the volume is smaller than the patch).
    """
    c, s, p = (np.asarray(a, dtype=np.int64) for a in (corner, shape, patch))
    if np.all(c + p <= s):
        return tuple(int(v) for v in c)  # type: ignore[return-value]
    if mode == "clamp" and np.all(s >= p):
        return tuple(int(v) for v in np.minimum(c, s - p))  # type: ignore[return-value]
    return None
