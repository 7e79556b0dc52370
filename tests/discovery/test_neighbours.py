"""Nearest neighbours with FAISS on crafted features: families come first."""

from __future__ import annotations

import numpy as np
import pytest

from semantic_genesis.discovery.neighbours import build_index, find_neighbours, search
from semantic_genesis.utils.errors import SemgenError


def _families(n_families=6, size=4, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (n_families, dim))
    x = np.repeat(centres, size, axis=0) + rng.normal(0, 0.1, (n_families * size, dim))
    return x.astype(np.float32), np.repeat(np.arange(n_families), size)


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_each_reference_finds_its_family_first(kind) -> None:
    x, fam = _families()
    val_x, val_fam = _families(seed=0)  # same centres, new noise
    val_x += np.random.default_rng(9).normal(0, 0.1, val_x.shape).astype(np.float32)
    indexes = (build_index(x, kind), build_index(val_x, kind))
    for ref in range(len(x)):
        nb = find_neighbours(ref, x, val_x, k_train=8, k_val=6, indexes=indexes)
        assert nb.train[0] == ref and nb.train_dist[0] == 0
        assert (fam[nb.train[:4]] == fam[ref]).all()  # itself + its 3 siblings
        assert (fam[nb.train[4:]] != fam[ref]).all()
        assert (val_fam[nb.val[:4]] == fam[ref]).all()
        assert np.all(np.diff(nb.train_dist[1:]) >= 0) and np.all(np.diff(nb.val_dist) >= 0)


def test_distances_are_squared_l2_as_the_reference_ranks() -> None:
    x, _ = _families(n_families=3, size=3, dim=5)
    nb = find_neighbours(0, x, x[:0], k_train=9, k_val=0)
    expected = np.argsort(((x - x[0]) ** 2).sum(1), kind="stable")
    assert nb.train.tolist() == expected.tolist()
    assert np.allclose(nb.train_dist, ((x[nb.train] - x[0]) ** 2).sum(1), rtol=1e-4, atol=1e-4)
    assert len(nb.val) == 0


def test_k_is_clipped_to_the_index_size() -> None:
    x, _ = _families(n_families=2, size=2)
    dist, idx = search(build_index(x), x[:1], 50)
    assert idx.shape == (1, 4)
    nb = find_neighbours(1, x, x[:2], k_train=200, k_val=30)
    assert sorted(nb.train.tolist()) == [0, 1, 2, 3] and nb.train[0] == 1
    assert len(nb.val) == 2


def test_unknown_index_kind() -> None:
    with pytest.raises(SemgenError, match="unknown index"):
        build_index(np.zeros((3, 2), np.float32), "hnsw")
