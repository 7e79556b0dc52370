"""Coordinates: borders, the vectorised air test against a loop port of the reference, the
distance test, the MR foreground test, and fitting crops into neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from semantic_genesis.discovery.coordinates import (
    CoordinateRules,
    at_least,
    corner_bounds,
    cube_scores,
    draw_corners,
    find_candidates,
    first_far_enough,
    fit_corner,
)
from tests.discovery.reference import reference_air_score


def _chest_like(shape, rng, tissue=0.12, dtype=np.float16):
    """Air/lung background with tissue specks whose density grows along x from 0 to twice
    ``tissue``, so cubes fall on both sides of the 15 % threshold."""
    vol = rng.uniform(0.0, 0.3, shape)
    density = np.linspace(0, 2 * tissue, shape[0])[:, None, None]
    vol[rng.random(shape) < density] = rng.uniform(0.425, 0.9)
    vol[rng.random(shape) < 0.01] = 0.425  # exactly the threshold counts as tissue
    return vol.astype(dtype)


@pytest.mark.parametrize("method", ["region", "window"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("patch", [(12, 10, 6), (7, 9, 11)])
def test_vectorised_air_test_equals_reference_loop(dtype, patch, method) -> None:
    rng = np.random.default_rng(3)
    vol = _chest_like((40, 36, 30), rng, dtype=dtype)
    rules = CoordinateRules(patch=patch)
    corners = draw_corners(rng, np.zeros(3, int), np.array(vol.shape) - patch - 2, 25)
    fast = cube_scores(vol, corners, rules, method=method)
    slow = [reference_air_score(vol[x:x + patch[0], y:y + patch[1], z:z + patch[2] + 3], patch)
            for x, y, z in corners]
    assert np.array_equal(fast, slow)
    assert fast.min() < 0.15 < fast.max()  # the windows straddle the acceptance threshold


def test_reference_sized_window_equals_loop() -> None:
    rng = np.random.default_rng(4)
    vol = _chest_like((70, 70, 40), rng, tissue=0.1)
    rules = CoordinateRules()  # 64 x 64 x 32, look-ahead 3
    fast = cube_scores(vol, np.array([[3, 2, 4]]), rules)
    assert fast[0] == reference_air_score(vol[3:67, 2:66, 4:39], (64, 64, 32))


@pytest.mark.parametrize("method", ["region", "window"])
def test_other_look_ahead_matches_loop(method) -> None:
    rng = np.random.default_rng(5)
    vol = _chest_like((30, 30, 30), rng, tissue=0.06, dtype=np.float32)
    rules = CoordinateRules(patch=(8, 8, 8), look_ahead=5)
    corners = draw_corners(rng, np.zeros(3, int), np.array([20, 20, 15]), 10)
    fast = cube_scores(vol, corners, rules, method=method)
    slow = [reference_air_score(vol[x:x + 8, y:y + 8, z:z + 13], (8, 8, 8), look_ahead=5)
            for x, y, z in corners]
    assert np.array_equal(fast, slow)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_at_least_is_exact(dtype) -> None:
    thr = 0.425
    step = dtype(thr)
    special = np.array([0.0, -0.0, 1.0, np.inf, -np.inf, -0.5, step,
                        np.nextafter(step, dtype(0)), np.nextafter(step, dtype(1)), 1e-8],
                       dtype=dtype)
    values = np.concatenate([special, np.random.default_rng(0).random(1000).astype(dtype)])
    assert np.array_equal(at_least(values, thr), values >= thr)


def test_borders_are_the_reference_for_reference_sizes() -> None:
    lo, hi = corner_bounds((512, 512, 300), CoordinateRules())
    assert lo.tolist() == [100, 100, 30]
    assert hi.tolist() == [512 - 64 - 1 - 100, 512 - 64 - 1 - 100, 300 - 32 - 3 - 1 - 30]


def test_borders_scale_for_small_volumes() -> None:
    rules = CoordinateRules(patch=(20, 20, 10))
    lo, hi = corner_bounds((96, 96, 64), rules)
    free = np.array([96 - 21, 96 - 21, 64 - 10 - 3 - 1])
    assert lo.tolist() == (free // 4).tolist()
    assert (hi == free - lo).all() and (hi > lo).all()
    corners, _, reason = find_candidates(np.zeros((40, 40, 20), np.float16),
                                         np.random.default_rng(0), CoordinateRules())
    assert len(corners) == 0 and "patch larger than the volume" in reason
    assert "64 x 64 x 32" in reason and "40 x 40 x 20" in reason


def test_candidates_pass_the_test_and_lie_in_bounds() -> None:
    rng = np.random.default_rng(7)
    vol = _chest_like((60, 60, 40), rng, tissue=0.13)
    rules = CoordinateRules(patch=(10, 10, 6), trials=300)
    corners, scores, reason = find_candidates(vol, np.random.default_rng(1), rules)
    assert reason == "" and 0 < len(corners) < 300
    lo, hi = corner_bounds(vol.shape, rules)
    assert ((corners >= lo) & (corners <= hi)).all()
    for (x, y, z), s in zip(corners, scores, strict=True):
        assert s == reference_air_score(vol[x:x + 10, y:y + 10, z:z + 9], (10, 10, 6)) <= 0.15
    again, _, _ = find_candidates(vol, np.random.default_rng(1), rules)
    assert np.array_equal(corners, again)


def test_nothing_passes_gives_a_reason() -> None:
    vol = np.full((60, 60, 40), 0.6, np.float16)  # all tissue
    corners, _, reason = find_candidates(vol, np.random.default_rng(0),
                                         CoordinateRules(patch=(10, 10, 6)))
    assert len(corners) == 0 and "air test" in reason


def test_distance_test_has_no_sticky_flag() -> None:
    taken = [(10, 10, 10)]
    # the first candidate is too close; the reference's never-reset flag would then reject the
    # far second one as well
    candidates = np.array([[12, 10, 10], [40, 40, 10], [41, 40, 10]])
    assert first_far_enough(candidates, taken, 16) == 1
    assert first_far_enough(candidates[:1], taken, 16) is None
    assert first_far_enough(candidates, [], 16) == 0
    assert first_far_enough(candidates, taken, 2) == 0  # 2 voxels away is allowed at 2


def test_mr_foreground_test() -> None:
    x, y, z = np.meshgrid(*(np.arange(48),) * 3, indexing="ij")
    head = (((x - 24) ** 2 + (y - 24) ** 2 + (z - 24) ** 2) < 20 ** 2).astype(np.float32) * 0.6
    rules = CoordinateRules(patch=(10, 10, 10))
    for method in ("region", "window"):
        scores = cube_scores(head, np.array([[19, 19, 19], [0, 0, 0]]), rules, "mr", method)
        assert scores[0] == 0.0 and scores[1] == 1.0
    corners, _, reason = find_candidates(head, np.random.default_rng(0), rules, "mr")
    assert reason == "" and len(corners)
    assert (cube_scores(head, corners, rules, "mr") <= 0.15).all()
    # the CT air test would reject every cube inside the head (it is all "tissue")
    assert cube_scores(head, corners[:1], rules, "ct")[0] > 0.15


def test_fit_corner_skip_and_clamp() -> None:
    assert fit_corner((10, 10, 5), (40, 40, 20), (20, 20, 10)) == (10, 10, 5)
    assert fit_corner((30, 10, 5), (40, 40, 20), (20, 20, 10)) is None
    assert fit_corner((30, 10, 15), (40, 40, 20), (20, 20, 10), "clamp") == (20, 10, 10)
    assert fit_corner((0, 0, 0), (15, 40, 20), (20, 20, 10), "clamp") is None
