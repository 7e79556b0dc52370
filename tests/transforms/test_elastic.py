"""Elastic warp: the reference filter, the reference interpolation, ~2.7 voxels mean shift."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter, map_coordinates

from semantic_genesis.transforms import ElasticDeform
from semantic_genesis.transforms.elastic import gaussian_matrix, lowrank_factor

SHAPE = (64, 64, 32)


def test_matrices_are_the_reference_filter():
    noise = np.random.default_rng(0).random(SHAPE) * 2 - 1
    ref = gaussian_filter(noise, 8, mode="constant", cval=0)
    gx, gy, gz = (gaussian_matrix(n, 8.0) for n in SHAPE)
    mine = np.einsum("ai,bj,ck,ijk->abc", gx, gy, gz, noise, optimize=True)
    assert np.abs(ref - mine).max() < 1e-12
    a = lowrank_factor(64, 8.0)
    assert a.shape[1] < 16  # a sigma-8 Gaussian is numerically low rank
    g = gaussian_matrix(64, 8.0)
    assert np.abs(a @ a.T - g @ g.T).max() < 1e-4 * np.abs(g @ g.T).max()


@pytest.mark.parametrize("field", ["lowrank", "exact"])
def test_mean_displacement_matches_the_reference(field):
    t = ElasticDeform(field=field)
    x = torch.rand(48, 1, *SHAPE)
    params = t.sample(x, torch.Generator().manual_seed(0))
    d = t.displacement(params)
    assert d.shape == (48, 2, *SHAPE)
    assert 2.0 < float(d.abs().mean()) < 3.2  # method.md §3.2: about 2.7 voxels
    assert float(d.abs().amax()) < 30
    # the reference's own field, same statistics
    rs = np.random.RandomState(0)
    ref = np.stack(
        [gaussian_filter(rs.rand(*SHAPE) * 2 - 1, 8, mode="constant") * 991 for _ in range(24)]
    )
    assert abs(float(d.abs().mean()) - np.abs(ref).mean()) < 0.35
    assert abs(float(d.std()) - ref.std()) < 0.45


def test_warp_equals_reference_interpolation():
    t = ElasticDeform()
    x = torch.rand(2, 1, 32, 32, 16, generator=torch.Generator().manual_seed(0))
    params = t.sample(x, torch.Generator().manual_seed(1))
    params = {"grid": params["grid"]}
    d = t.displacement(params).double().numpy() * 3  # large shifts exercise the reflection
    # rebuild the grid for the scaled displacement and compare with scipy
    rows = (np.arange(32) * 2 + 1) / 32 - 1
    cols = (np.arange(32) * 2 + 1) / 32 - 1
    g = np.stack(
        [cols[None, :, None] + d[:, 1] * 2 / 32, rows[:, None, None] + d[:, 0] * 2 / 32], axis=-1
    )  # (N, X, Y, Z, 2)
    params["grid"] = torch.tensor(g.transpose(0, 3, 1, 2, 4), dtype=torch.float32)
    out = t.apply(x, params)
    i, j, k = np.meshgrid(np.arange(32), np.arange(32), np.arange(16), indexing="ij")
    for n in range(2):
        ref = map_coordinates(
            x[n, 0].double().numpy(), [i + d[n, 0], j + d[n, 1], k], order=1, mode="reflect"
        )
        assert np.abs(ref - out[n, 0].numpy()).max() < 1e-4
    assert np.abs(d).max() > 5


def test_no_displacement_along_depth():
    # a cube constant in-plane but varying along z is unchanged by an in-plane warp
    z = torch.linspace(0, 1, 16).reshape(1, 1, 1, 1, 16).expand(2, 1, 32, 32, 16)
    out = ElasticDeform()(z.contiguous(), torch.Generator().manual_seed(0))
    assert torch.allclose(out, z, atol=1e-5)


def test_index_and_region_warp_the_same_voxels_without_copies():
    t = ElasticDeform()
    x = torch.rand(5, 1, 32, 32, 16, generator=torch.Generator().manual_seed(0))
    params = t.sample(x, torch.Generator().manual_seed(1), compact=True)
    full = t.apply(x, params)
    idx = torch.tensor([3, 0, 3])
    assert torch.equal(t.apply(x, params, index=idx), full[idx])
    # only a box of each output is asked for: it matches the full warp there, the rest is 0
    corner = torch.tensor([[2, 3, 1], [10, 0, 4], [0, 0, 0]])
    size = torch.tensor([[8, 9, 5], [20, 32, 12], [32, 32, 16]])
    boxed = t.apply(x, params, region=(corner, size), index=idx)
    for k, (c, s) in enumerate(zip(corner.tolist(), size.tolist(), strict=True)):
        box = (slice(None), *(slice(a, a + b) for a, b in zip(c, s, strict=True)))
        assert torch.allclose(boxed[k][box], full[idx[k]][box], atol=1e-5)  # GEMM rounding
        assert float(boxed[k].abs().sum()) == pytest.approx(float(boxed[k][box].abs().sum()))


def test_batched_grid_sample_path_equals_the_per_cube_one():
    # the path other devices take (the whole batch in one grid_sample), run here on the CPU
    t = ElasticDeform()
    x = torch.rand(3, 2, 24, 16, 12, generator=torch.Generator().manual_seed(0))
    params = t.sample(x, torch.Generator().manual_seed(1), compact=True)
    outs = []
    for per_sample in (True, False):
        out = torch.empty_like(x)
        t._resample(x, out, params, [0, 1, 2], None, per_sample=per_sample)
        outs.append(out)
    assert torch.allclose(outs[0], outs[1], atol=1e-6)
    d = t.displacement(params, x.shape[2:])
    assert d.shape == (3, 2, 24, 16, 12) and 1.0 < float(d.abs().mean()) < 4.0
