"""The compiled kernels (csrc/, native.py) against scipy, against the torch fallbacks, and their
AVX2 paths against their one-value-at-a-time paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import map_coordinates
from scipy.stats import chisquare

from semantic_genesis.transforms import BezierIntensity, ElasticDeform, native
from semantic_genesis.transforms.painting import uniform_noise


def test_kernels_are_built():
    # CI and `make test` install with a C compiler (gcc and the Python headers are on every
    # machine here); without one the package falls back to torch, see native.py
    assert native.built(), "csrc/ was not compiled: reinstall with a C compiler (pip install -e .)"
    assert native.available()
    assert native.describe().startswith("native kernels")


def _warp_with_displacement(x: torch.Tensor, d: np.ndarray, vectorised: bool) -> torch.Tensor:
    """Warp one batch with an arbitrary displacement ``d`` (N, 2, X, Y, Z) in voxels: with the
    identity as the z factor (c = Z), the field is the displacement itself."""
    n, _, sx, sy, sz = x.shape
    field = torch.tensor(d[:, ::-1].transpose(0, 1, 4, 2, 3).copy(), dtype=torch.float32)
    out = torch.empty_like(x)
    native.warp_batch(x, out, field, torch.eye(sz), list(range(n)), None, vectorised)
    return out


@pytest.mark.parametrize("shape", [(32, 32, 16), (13, 21, 11), (9, 40, 24)])
@pytest.mark.parametrize("vectorised", [True, False])
def test_warp_equals_scipy_reflect_linear(shape, vectorised):
    rng = np.random.default_rng(0)
    x = torch.rand(2, 1, *shape, generator=torch.Generator().manual_seed(0))
    # smooth-ish but large shifts: several reflections across the faces
    d = rng.normal(0, 6, (2, 2, *shape)) + rng.choice([-40.0, 0.0, 25.0], (2, 2, 1, 1, 1))
    out = _warp_with_displacement(x, d, vectorised)
    i, j, k = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    for n in range(2):
        ref = map_coordinates(
            x[n, 0].double().numpy(), [i + d[n, 0], j + d[n, 1], k], order=1, mode="reflect"
        )
        assert np.abs(ref - out[n, 0].numpy()).max() < 1e-5


def test_warp_equals_grid_sample_fallback(monkeypatch):
    t = ElasticDeform()
    x = torch.rand(4, 2, 24, 40, 20, generator=torch.Generator().manual_seed(0))  # 2 channels
    params = t.sample(x, torch.Generator().manual_seed(1), compact=True)
    params["field"] *= 4  # beyond the faces
    idx = torch.tensor([2, 0, 2])
    corner = torch.tensor([[1, 2, 3], [0, 0, 0], [5, 9, 0]])
    size = torch.tensor([[7, 30, 9], [24, 40, 20], [3, 5, 20]])
    kernel = t.apply(x, params, index=idx, region=(corner, size))
    monkeypatch.setenv("SEMGEN_NATIVE", "0")
    assert not native.available()
    fallback = t.apply(x, params, index=idx, region=(corner, size))
    assert (kernel - fallback).abs().max() < 1e-5  # one seed, one batch (test_streams.py)
    assert kernel[1].abs().min() > 0  # the whole second cube was asked for


def test_warp_paths_agree_and_leave_the_rest_of_the_output_alone():
    t = ElasticDeform()
    x = torch.rand(3, 1, 64, 64, 32, generator=torch.Generator().manual_seed(0))
    field = t.sample(x, torch.Generator().manual_seed(1), compact=True)["field"]
    azt = t._factors((64, 64, 32), x.device).azt
    outs = []
    for vectorised in (True, False):
        out = torch.full((2, 1, 64, 64, 32), -1.0)
        boxes = [[0, 0, 0, 64, 64, 32], [10, 3, 5, 30, 60, 13]]  # z range not a multiple of 8
        native.warp_batch(x, out, field, azt, [2, 0], boxes, vectorised)
        outs.append(out)
    assert (outs[0] - outs[1]).abs().max() < 1e-5  # FMA vs separate rounding
    inside = outs[0][1, :, 10:30, 3:60, 5:13]
    assert inside.min() >= 0 and float((outs[0][1] == -1).sum()) == 64 * 64 * 32 - inside.numel()


def test_warp_rejects_bad_arguments():
    x = torch.rand(2, 1, 8, 8, 8)
    field, azt = torch.zeros(2, 2, 3, 8, 8), torch.zeros(3, 8)
    with pytest.raises(ValueError, match="field"):
        native.warp_batch(x, torch.empty_like(x), field[:, :, :, :4], azt, [0, 1])
    with pytest.raises(ValueError, match="out"):
        native.warp_batch(x, torch.empty(2, 1, 8, 8, 8).double(), field, azt, [0, 1])
    with pytest.raises(ValueError, match="index"):
        native.warp_batch(x, torch.empty_like(x), field, azt, [0, 2])
    with pytest.raises(ValueError, match="box"):
        native.warp_batch(x, torch.empty_like(x)[:1], field, azt, [0], [[0, 0, 0, 9, 8, 8]])


def test_lut_equals_torch_lookup_and_handles_edges(monkeypatch):
    b = BezierIntensity()
    x = torch.rand(6, 1, 16, 16, 8, generator=torch.Generator().manual_seed(0))
    x[0, 0, 0, 0, :4] = torch.tensor([0.0, 1.0, -0.5, 1.5])  # the ends and beyond
    params = b.sample(x, torch.Generator().manual_seed(3))
    kernel = b.apply(x, params, None)
    monkeypatch.setenv("SEMGEN_NATIVE", "0")
    fallback = b.apply(x, params, None)
    assert (kernel - fallback).abs().max() < 1e-6
    table = b.lut(params)[0]
    assert kernel[0, 0, 0, 0, 0] == pytest.approx(float(table[0]), abs=1e-7)
    assert kernel[0, 0, 0, 0, 1] == pytest.approx(float(table[-1]), abs=1e-7)
    assert kernel[0, 0, 0, 0, 2] == kernel[0, 0, 0, 0, 0]  # clipped to 0
    assert kernel[0, 0, 0, 0, 3] == kernel[0, 0, 0, 0, 1]  # clipped to 1


def test_lut_paths_agree_and_nan_is_safe():
    table = torch.rand(100).sort().values
    slope = torch.diff(table, append=table[-1:])
    x = torch.rand(1003) * 1.4 - 0.2
    x[5] = float("nan")
    fast, slow = native.lut(x, table, slope), native.lut(x, table, slope, vectorised=False)
    assert (fast - slow).abs().max() < 1e-6
    assert fast[5] == table[0]  # NaN reads the first entry, never out of bounds


@pytest.mark.parametrize("count", [1, 7, 8, 1001, 200_000])
def test_uniform_is_reproducible_and_the_same_on_both_paths(count):
    a = native.uniform(count, 12345)
    assert torch.equal(a, native.uniform(count, 12345))
    assert torch.equal(a, native.uniform(count, 12345, vectorised=False))
    assert not torch.equal(a, native.uniform(count, 12346)) or count == 1 and a[0] == 0
    assert a.min() >= 0 and a.max() < 1
    k = a.double() * 2**23
    assert torch.equal(k, k.round())  # k / 2**23


def test_uniform_is_uniform():
    a = native.uniform(400_000, 7).double().numpy()
    assert abs(a.mean() - 0.5) < 0.003 and abs(a.var() - 1 / 12) < 0.002
    counts = np.histogram(a, bins=100, range=(0, 1))[0]
    assert chisquare(counts).pvalue > 1e-4
    # neighbours (the two halves of a 64-bit word, and the next word) are not correlated
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.01
    assert abs(np.corrcoef(a[:-2], a[2:])[0, 1]) < 0.01
    assert abs(np.corrcoef(a[:-8], a[8:])[0, 1]) < 0.01


def test_uniform_noise_uses_the_kernel_and_the_generator(monkeypatch):
    g = torch.Generator()
    a = uniform_noise((4, 5, 6), g.manual_seed(0), "cpu")
    assert torch.equal(a, uniform_noise((4, 5, 6), g.manual_seed(0), "cpu"))
    seed = int(torch.randint(0, 2**63 - 1, (1,), generator=g.manual_seed(0)))
    assert torch.equal(a.flatten(), native.uniform(120, seed))
    monkeypatch.setenv("SEMGEN_NATIVE", "0")
    b = uniform_noise((4, 5, 6), g.manual_seed(0), "cpu")  # numpy: the same stream
    assert torch.equal(a, b)
    assert torch.equal(b.flatten(), torch.from_numpy(native.uniform_numpy(120, seed)))


@pytest.mark.parametrize("vectorised", [True, False])
def test_warp_with_a_broken_field_reads_inside_the_cube(vectorised):
    x = torch.rand(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(0))
    d = np.zeros((1, 2, 16, 16, 16))
    d[0, 0, 3] = np.nan
    d[0, 1, 5] = np.inf
    d[0, 0, 7] = -np.inf
    d[0, 1, 9] = 1e30
    out = _warp_with_displacement(x, d, vectorised)
    assert torch.isfinite(out).all() and float(out.min()) >= 0 and float(out.max()) <= 1
    assert torch.equal(out[0, 0, 10:], x[0, 0, 10:])  # zero displacement: the cube itself
