"""The shared synthetic fixtures satisfy the file contracts they stand in for."""

from __future__ import annotations

import numpy as np

from semantic_genesis.io import Volume
from semantic_genesis.io.manifests import (
    open_volume,
    read_cohort,
    read_discover_info,
    read_patterns,
)


def test_synthetic_cohort_contract(synthetic_cohort) -> None:
    recs = read_cohort(synthetic_cohort)
    assert {r.split for r in recs} == {"train", "val"}
    vol = open_volume(synthetic_cohort, recs[0])
    assert vol.shape == recs[0].shape and vol.min() >= 0 and vol.max() <= 1


def test_synthetic_patterns_fit(synthetic_patterns) -> None:
    info = read_discover_info(synthetic_patterns)
    cohort = {r.id: r for r in read_cohort(info["cohort"])}
    for p in read_patterns(synthetic_patterns):
        shape = np.array(cohort[p.patient_id].shape)
        assert np.all(np.array([p.x, p.y, p.z]) + np.array(p.size) <= shape)


def test_volume_world_voxel_round_trip() -> None:
    d = np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]], float)
    v = Volume(np.zeros((4, 4, 4)), spacing=(0.5, 0.7, 2.0), origin=(10, -5, 3),
               direction=tuple(d.ravel()))
    idx = np.array([[1.0, 2.0, 3.0], [0.5, 0, 7]])
    np.testing.assert_allclose(v.world_to_voxel(v.voxel_to_world(idx)), idx, atol=1e-9)
