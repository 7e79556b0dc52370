"""In-painting boxes and out-painting kept boxes within the reference ranges."""

from __future__ import annotations

import torch

from semantic_genesis.transforms import InPainting, OutPainting

SHAPE = (64, 64, 32)


def test_inpainting_single_box_ranges_and_content():
    x = torch.full((200, 1, *SHAPE), 2.0)  # out of range on purpose: noise is < 1
    out, p = InPainting()(x, torch.Generator().manual_seed(0), return_params=True)
    size, corner = p["size"][:, 0], p["corner"][:, 0]
    assert bool(p["enabled"].all())
    lo, hi = torch.tensor([10, 10, 5]), torch.tensor([21, 21, 10])  # [dim // 6, dim // 3]
    assert bool((size >= lo).all()) and bool((size <= hi).all())
    assert torch.equal(size.amin(0), lo) and torch.equal(size.amax(0), hi)
    assert bool((corner >= 3).all())
    assert bool((corner + size <= torch.tensor(SHAPE) - 3).all())
    painted = out < 2.0
    for i in range(5):
        assert int(painted[i].sum()) == int(size[i].prod())  # exactly the box, noise inside
    assert 0.45 < float(out[painted].mean()) < 0.55


def test_inpainting_mg_continuation():
    x = torch.zeros(400, 1, 16, 16, 8)
    _, p = InPainting(n_boxes=5, continue_prob=0.95)(
        x, torch.Generator().manual_seed(0), return_params=True
    )
    counts = p["enabled"].sum(1).float()
    assert abs(float((counts == 0).float().mean()) - 0.05) < 0.04  # ~5 % get no box
    assert 4.0 < float(counts.mean()) < 4.8  # E = 0.95 + 0.95² + ... + 0.95⁵ = 4.29
    enabled = p["enabled"].long()
    assert bool((enabled[:, 1:] <= enabled[:, :-1]).all())  # the loop stops at a failure


def test_inpainting_mean_fill():
    x = torch.rand(4, 1, 32, 32, 16)
    out, p = InPainting(side_divisors=(4, 2), fill="mean", margin=0)(
        x, torch.Generator().manual_seed(0), return_params=True
    )
    (cx, cy, cz), (sx, sy, sz) = p["corner"][0, 0].tolist(), p["size"][0, 0].tolist()
    assert 8 <= sx <= 16 and 4 <= sz <= 8
    box = out[0, 0, cx : cx + sx, cy : cy + sy, cz : cz + sz]
    assert torch.allclose(box, x[0].mean().expand_as(box))


def test_outpainting_kept_box_ranges_and_content():
    x = torch.full((200, 1, *SHAPE), 2.0)
    out, p = OutPainting()(x, torch.Generator().manual_seed(0), return_params=True)
    size, corner = p["size"][:, 0], p["corner"][:, 0]
    lo, hi = torch.tensor([28, 28, 14]), torch.tensor([37, 37, 19])  # dim - U{3dim//7..4dim//7}
    assert bool((size >= lo).all()) and bool((size <= hi).all())
    assert torch.equal(size.amin(0), lo) and torch.equal(size.amax(0), hi)
    assert bool((corner >= 3).all())
    assert bool((corner + size <= torch.tensor(SHAPE) - 3).all())
    for i in range(5):
        (cx, cy, cz), (sx, sy, sz) = corner[i].tolist(), size[i].tolist()
        kept = out[i, 0] == 2.0
        assert int(kept.sum()) == sx * sy * sz
        assert bool(kept[cx : cx + sx, cy : cy + sy, cz : cz + sz].all())
        assert float(out[i][~kept[None]].max()) < 1.0  # noise everywhere else


def test_outpainting_mg_keeps_the_first_box_always():
    x = torch.zeros(300, 1, 16, 16, 8)
    _, p = OutPainting(n_boxes=5, continue_prob=0.95)(
        x, torch.Generator().manual_seed(0), return_params=True
    )
    assert bool(p["enabled"][:, 0].all())
    assert 4.2 < float(p["enabled"].sum(1).float().mean()) < 4.8  # 1 + 0.95 + ... = 4.52


def test_box_painting_touches_exactly_the_union_of_boxes():
    """The CPU path paints box by box; the voxels it changes (in-painting) or keeps
    (out-painting) must be exactly the union that the batched mask path uses."""
    from semantic_genesis.transforms.base import box_mask

    x = torch.full((50, 1, 24, 24, 16), 2.0)  # noise is < 1, so every painted voxel shows
    for t, keep in (
        (InPainting(n_boxes=5, continue_prob=0.95), False),
        (OutPainting(5, 0.95), True),
    ):
        out, p = t(x, torch.Generator().manual_seed(3), return_params=True)
        union = box_mask(p["corner"], p["size"], p["enabled"], x.shape[2:])
        original = out == 2.0
        assert torch.equal(original, union if keep else ~union)
        assert float(out[~original].max()) < 1.0 and float(out[~original].min()) >= 0.0


def test_noise_is_reproducible_from_the_generator():
    from semantic_genesis.transforms.painting import uniform_noise

    a = uniform_noise((4, 1000), torch.Generator().manual_seed(7), "cpu")
    b = uniform_noise((4, 1000), torch.Generator().manual_seed(7), "cpu")
    c = uniform_noise((4, 1000), torch.Generator().manual_seed(8), "cpu")
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == torch.float32 and float(a.min()) >= 0.0 and float(a.max()) < 1.0
    assert abs(float(a.mean()) - 0.5) < 0.02 and abs(float(a.var()) - 1 / 12) < 0.005
