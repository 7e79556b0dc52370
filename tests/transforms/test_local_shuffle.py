"""Local pixel shuffling only permutes voxels inside its blocks."""

from __future__ import annotations

import torch

from semantic_genesis.transforms import LocalPixelShuffle


def unique_batch(n: int, shape: tuple[int, int, int]) -> torch.Tensor:
    """Every voxel a distinct value, so a value tells where it came from."""
    v = shape[0] * shape[1] * shape[2]
    perm = torch.randperm(n * v, generator=torch.Generator().manual_seed(0))
    return (perm.float() / (n * v)).reshape(n, 1, *shape)


def test_block_ranges_and_permutation_inside_blocks():
    x = unique_batch(12, (64, 64, 32))
    t = LocalPixelShuffle(n_blocks=5)
    out, params = t(x, torch.Generator().manual_seed(1), return_params=True)
    size, corner = params["size"], params["corner"]
    assert size.shape == (12, 5, 3)
    assert bool((size >= 1).all()) and bool((size <= torch.tensor([6, 6, 3])).all())
    assert bool((corner >= 0).all())
    assert bool((corner + size <= torch.tensor([64, 64, 32])).all())
    changed_total = 0
    for n in range(12):
        covered = torch.zeros(64, 64, 32, dtype=torch.bool)
        owner = torch.full((64, 64, 32), -1)
        for b in range(5):
            (cx, cy, cz), (sx, sy, sz) = corner[n, b].tolist(), size[n, b].tolist()
            covered[cx : cx + sx, cy : cy + sy, cz : cz + sz] = True
            owner[cx : cx + sx, cy : cy + sy, cz : cz + sz] = b
        assert torch.equal(out[n, 0][~covered], x[n, 0][~covered])
        changed_total += int((out[n, 0] != x[n, 0]).sum())
        for b in range(5):
            (cx, cy, cz), (sx, sy, sz) = corner[n, b].tolist(), size[n, b].tolist()
            region = (slice(cx, cx + sx), slice(cy, cy + sy), slice(cz, cz + sz))
            src = set(x[n, 0][region].reshape(-1).tolist())
            mine = out[n, 0][region][owner[region] == b]
            assert set(mine.tolist()) <= src  # values written by block b come from block b
            if bool((owner[region] == b).all()):  # not overwritten: same histogram
                assert torch.equal(
                    out[n, 0][region].reshape(-1).sort().values,
                    x[n, 0][region].reshape(-1).sort().values,
                )
    assert changed_total > 0


def test_many_blocks_keep_the_histogram_of_the_cube():
    x = unique_batch(2, (32, 32, 16))
    out = LocalPixelShuffle(n_blocks=10_000)(x, torch.Generator().manual_seed(0))
    assert float((out != x).float().mean()) > 0.5  # MG's 10,000 blocks touch most voxels
    # every value still comes from the same sample (no mixing across samples or channels)
    for n in range(2):
        assert set(out[n].reshape(-1).tolist()) <= set(x[n].reshape(-1).tolist())
