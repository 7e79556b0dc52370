"""Context restoration: pairs of disjoint patches exchanged."""

from __future__ import annotations

import torch

from semantic_genesis.transforms import PatchSwap


def test_swaps_patches_and_keeps_every_value():
    v = 32 * 32 * 16
    x = torch.randperm(4 * v, generator=torch.Generator().manual_seed(0)).float() / (4 * v)
    x = x.reshape(4, 1, 32, 32, 16)
    t = PatchSwap(n_swaps=1)
    out, p = t(x, torch.Generator().manual_seed(1), return_params=True)
    side = (4, 4, 2)
    for n in range(4):
        assert torch.equal(out[n].reshape(-1).sort().values, x[n].reshape(-1).sort().values)
        if not bool(p["swapped"][n, 0]):
            continue
        a, b = p["first"][n, 0].tolist(), p["second"][n, 0].tolist()
        ra = tuple(slice(c, c + s) for c, s in zip(a, side, strict=True))
        rb = tuple(slice(c, c + s) for c, s in zip(b, side, strict=True))
        assert torch.equal(out[n, 0][ra], x[n, 0][rb])
        assert torch.equal(out[n, 0][rb], x[n, 0][ra])
        assert int((out[n] != x[n]).sum()) == 2 * 4 * 4 * 2  # nothing else moved


def test_partners_are_disjoint():
    x = torch.rand(50, 1, 32, 32, 16)
    _, p = PatchSwap()(x, torch.Generator().manual_seed(0), return_params=True)
    assert float(p["swapped"].float().mean()) > 0.99
    gap = (p["first"] - p["second"]).abs()
    ok = (gap >= torch.tensor([4, 4, 2])).any(-1)
    assert bool(ok[p["swapped"]].all())
