"""Flips (input and target alike) and the 8 shape-preserving rotations."""

from __future__ import annotations

import torch

from semantic_genesis.transforms import Flip, Rotation
from semantic_genesis.transforms.rotation import rotate


def test_flip_counts_and_parity():
    x = torch.rand(400, 1, 4, 4, 2)
    out, p = Flip()(x, torch.Generator().manual_seed(0), return_params=True)
    n = p["n_flips"]
    assert int(n.max()) <= 3
    # P(no flip) = 0.6, P(1) = 0.24, P(2) = 0.096, P(3) = 0.064
    assert abs(float((n == 0).float().mean()) - 0.6) < 0.07
    assert abs(float((n == 3).float().mean()) - 0.064) < 0.04
    assert bool((p["axes"].sum(1) <= n).all())
    for i in range(20):
        dims = [2 + a for a in range(3) if p["axes"][i, a]]
        expect = x[i : i + 1].flip(dims) if dims else x[i : i + 1]
        assert torch.equal(out[i : i + 1], expect)
    # the same params flip a target identically
    assert torch.equal(Flip().apply(x, p), out)


def test_rotations_form_the_symmetry_group_of_the_box():
    x = torch.rand(1, 1, 8, 8, 4)
    images = [rotate(x, k) for k in range(8)]
    assert all(im.shape == x.shape for im in images)
    assert len({tuple(im.reshape(-1).tolist()) for im in images}) == 8  # all distinct
    # closed under composition and every element has an inverse: a group of order 8
    for a in range(8):
        for b in range(8):
            composed = rotate(rotate(x, a), b)
            assert any(torch.equal(composed, im) for im in images)
    # proper rotations: det of the induced axis map is +1 (no mirror images)
    for k in range(8):
        coords = torch.stack(
            torch.meshgrid(
                *(torch.arange(s, dtype=torch.float32) - (s - 1) / 2 for s in (8, 8, 4)),
                indexing="ij",
            )
        )
        moved = torch.stack([rotate(coords[a][None, None], k)[0, 0] for a in range(3)])
        m = torch.linalg.lstsq(coords.reshape(3, -1).T, moved.reshape(3, -1).T).solution
        assert abs(float(torch.linalg.det(m)) - 1.0) < 1e-4


def test_rotation_params():
    x = torch.rand(64, 1, 8, 8, 4)
    out, p = Rotation()(x, torch.Generator().manual_seed(0), return_params=True)
    k = p["k"]
    assert k.dtype == torch.long and int(k.min()) >= 0 and int(k.max()) <= 7
    assert len(k.unique()) == 8
    for i in range(8):
        assert torch.equal(out[i : i + 1], rotate(x[i : i + 1], int(k[i])))
