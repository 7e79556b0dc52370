"""Every perturbation: shapes, range [0, 1], same seed -> same output, numpy single cubes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semantic_genesis.transforms import (
    BezierIntensity,
    ElasticDeform,
    Flip,
    InPainting,
    LocalPixelShuffle,
    OutPainting,
    PatchSwap,
    Rotation,
)

TRANSFORMS = [
    BezierIntensity(),
    LocalPixelShuffle(n_blocks=5),
    LocalPixelShuffle(n_blocks=2000),
    InPainting(),
    InPainting(n_boxes=5, continue_prob=0.95),
    InPainting(side_divisors=(4, 2), fill="mean", margin=0),
    OutPainting(),
    OutPainting(n_boxes=5, continue_prob=0.95),
    Flip(),
    ElasticDeform(),
    ElasticDeform(field="exact"),
    Rotation(),
    PatchSwap(),
    BezierIntensity(prob=0.5),
]
IDS = [f"{type(t).__name__}-{i}" for i, t in enumerate(TRANSFORMS)]


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    return torch.rand(4, 1, 32, 32, 16, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("transform", TRANSFORMS, ids=IDS)
def test_shape_range_and_seed(transform, batch):
    out1, params = transform(batch, torch.Generator().manual_seed(7), return_params=True)
    out2 = transform(batch, torch.Generator().manual_seed(7))
    out3 = transform(batch, torch.Generator().manual_seed(8))
    assert out1.shape == batch.shape and out1.dtype == torch.float32
    assert float(out1.min()) >= 0.0 and float(out1.max()) <= 1.0
    assert torch.equal(out1, out2)
    assert not torch.equal(out1, out3)
    assert params["active"].shape == (4,)
    assert torch.equal(
        batch, torch.rand(4, 1, 32, 32, 16, generator=torch.Generator().manual_seed(3))
    )  # no in-place


@pytest.mark.parametrize("transform", TRANSFORMS[:8], ids=IDS[:8])
@pytest.mark.parametrize("shape", [(32, 32, 16), (1, 32, 32, 16)])
def test_single_numpy_cube(transform, shape):
    cube = np.random.default_rng(0).random(shape)
    out = transform(cube, torch.Generator().manual_seed(0))
    assert isinstance(out, np.ndarray) and out.shape == shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_multichannel_batch():
    x = torch.rand(2, 3, 16, 16, 8)
    for t in (LocalPixelShuffle(n_blocks=50), OutPainting(), ElasticDeform(), PatchSwap()):
        out = t(x, torch.Generator().manual_seed(0))
        assert out.shape == x.shape


def test_probability_leaves_others_untouched():
    x = torch.rand(64, 1, 8, 8, 8)
    out, params = BezierIntensity(prob=0.5)(x, torch.Generator().manual_seed(0), return_params=True)
    active = params["active"]
    assert 10 < int(active.sum()) < 54
    assert torch.equal(out[~active], x[~active])
    assert params["points"].shape[0] == int(active.sum())


def test_bad_shapes():
    with pytest.raises(ValueError):
        InPainting()(torch.rand(2, 2))
    with pytest.raises(ValueError):
        Rotation()(torch.rand(1, 1, 8, 6, 4))
    with pytest.raises(ValueError):
        InPainting(fill="zero")


ROW_TRANSFORMS = [t for t in TRANSFORMS if not isinstance(t, ElasticDeform)]


@pytest.mark.parametrize("in_place", [True, False])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("t", ROW_TRANSFORMS, ids=[f"{type(t).__name__}" for t in ROW_TRANSFORMS])
def test_apply_rows_equals_apply_on_those_rows(t, channels, in_place):
    # what the presets call: the chosen rows perturbed where they are, the others untouched
    x = torch.rand(6, channels, 24, 24, 12, generator=torch.Generator().manual_seed(0))
    rows = torch.tensor([4, 1, 3])
    params = t.sample(x.index_select(0, rows), torch.Generator().manual_seed(1))
    expect = t.apply(x.index_select(0, rows), params, torch.Generator().manual_seed(2))
    out = x.clone() if in_place else torch.full_like(x, -1.0)
    t.apply_rows(out if in_place else x, out, rows, params, torch.Generator().manual_seed(2))
    assert torch.allclose(out.index_select(0, rows), expect, atol=1e-6)
    others = torch.tensor([0, 2, 5])
    untouched = x if in_place else torch.full_like(x, -1.0)
    assert torch.equal(out.index_select(0, others), untouched.index_select(0, others))


def test_warp_rows_writes_the_warped_rows_where_they_are():
    t = ElasticDeform()
    x = torch.rand(5, 1, 32, 32, 16, generator=torch.Generator().manual_seed(0))
    params = t.sample(x, torch.Generator().manual_seed(1), compact=True)
    rows = torch.tensor([3, 0])
    corner, size = torch.tensor([[2, 3, 1], [0, 0, 0]]), torch.tensor([[8, 9, 5], [32, 32, 16]])
    out = torch.full_like(x, -1.0)
    t.warp_rows(x, out, rows, params, (corner, size))
    full = t.apply(x, params)
    box = (slice(None), slice(2, 10), slice(3, 12), slice(1, 6))
    assert torch.allclose(out[3][box], full[3][box], atol=1e-5)
    assert float((out[3] == -1).sum()) == out[3].numel() - out[3][box].numel()  # rest as it was
    assert torch.allclose(out[0], full[0], atol=1e-5)
    assert bool((out[[1, 2, 4]] == -1).all())
    with pytest.raises(ValueError, match="out must not be x"):
        t.warp_rows(x, x, rows, params)
