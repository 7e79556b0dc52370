"""In-painting as Pathak et al. 2016 (method.md §3.4): one random box filled with the cube's
mean, and the L2 loss inside the box only."""

from __future__ import annotations

import torch

from semantic_genesis.pretrain.methods import Batch
from semantic_genesis.pretrain.methods.inpainting import box_mse, drop_box


def test_the_dropped_box_is_the_mask_and_holds_the_cube_mean() -> None:
    cubes = torch.rand(8, 1, 16, 16, 8, generator=torch.Generator().manual_seed(0))
    dropped, target, mask = drop_box(cubes, torch.Generator().manual_seed(1))
    assert target is cubes and mask.shape == cubes.shape and mask.dtype == torch.bool
    assert torch.equal(dropped[~mask], cubes[~mask])  # the context is untouched
    mean = cubes.mean(dim=(2, 3, 4), keepdim=True).expand_as(cubes)
    assert torch.equal(dropped[mask], mean[mask])
    for m in mask[:, 0]:  # one box per cube, sides in [dim // 4, dim // 2]
        sides = [int(m.any(dim=tuple(d for d in range(3) if d != a)).sum()) for a in range(3)]
        assert int(m.sum()) == sides[0] * sides[1] * sides[2]
        assert all(d // 4 <= s <= d // 2 for s, d in zip(sides, (16, 16, 8), strict=True))


def test_the_loss_is_the_error_inside_the_box_only() -> None:
    cubes = torch.rand(4, 1, 16, 16, 8, generator=torch.Generator().manual_seed(2))
    dropped, target, mask = drop_box(cubes, torch.Generator().manual_seed(3))
    logit = torch.logit(cubes.clamp(1e-4, 1 - 1e-4))
    wrong_outside = torch.where(mask, logit, -logit)
    batch = Batch(cubes, torch.zeros(4, dtype=torch.long), dropped, target, mask)
    assert float(box_mse({"restoration": wrong_outside}, batch)) < 1e-6
    wrong_inside = torch.where(mask, -logit, logit)
    expected = (torch.sigmoid(wrong_inside) - cubes)[mask].square().mean()
    assert torch.allclose(box_mse({"restoration": wrong_inside}, batch), expected)
