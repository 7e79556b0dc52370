"""The ``mg`` preset pinned to Models Genesis' ``pytorch/config.py`` and ``utils.py`` numbers
(method.md §3.1), and its flips never touching depth."""

from __future__ import annotations

import torch

from semantic_genesis.transforms import build_preset
from semantic_genesis.transforms.bezier import BezierIntensity
from semantic_genesis.transforms.flip import MG_FLIP_CHOICES, Flip
from semantic_genesis.transforms.inpainting import InPainting
from semantic_genesis.transforms.local_shuffle import LocalPixelShuffle, block_sides
from semantic_genesis.transforms.outpainting import OutPainting


def test_every_number_of_the_mg_preset() -> None:
    """flip 0.4 (at most 3, among channel/x/y), local shuffle 0.5 with 10,000 blocks of side
    1..dim//10, non-linear 0.9 (inverting half the time), painting 0.9 with in-painting 0.2
    (so out-painting 0.8), up to 5 boxes each continuing with 0.95, in-painting sides
    [dim//6, dim//3], out-painting sides dim - [3 dim//7, 4 dim//7], margins 3."""
    p = build_preset("mg")
    assert p.options == {"flip_rate": 0.4, "local_rate": 0.5, "n_blocks": 10_000,
                         "nonlinear_rate": 0.9, "paint_rate": 0.9, "inpaint_rate": 0.2}
    assert isinstance(p.flip, Flip)
    assert (p.flip.flip_rate, p.flip.max_flips, p.flip.choices) == (0.4, 3, (None, 0, 1))
    assert MG_FLIP_CHOICES == (None, 0, 1)  # the channel (a no-op), x, y; never depth
    assert isinstance(p.shuffle, LocalPixelShuffle)
    assert (p.shuffle.prob, p.shuffle.n_blocks) == (0.5, 10_000)
    assert block_sides((64, 64, 32)) == (6, 6, 3)
    assert isinstance(p.bezier, BezierIntensity)
    assert (p.bezier.prob, p.bezier.invert_prob) == (0.9, 0.5)
    assert (p.paint_rate, p.inpaint_rate) == (0.9, 0.2)
    inpaint, outpaint = p.paint
    assert isinstance(inpaint, InPainting) and isinstance(outpaint, OutPainting)
    assert (inpaint.n_boxes, inpaint.continue_prob, inpaint.side_divisors, inpaint.margin,
            inpaint.fill) == (5, 0.95, (6, 3), 3, "noise")
    assert (outpaint.n_boxes, outpaint.continue_prob, outpaint.margin) == (5, 0.95, 3)
    dims = torch.tensor([64, 64, 32])
    assert [t.tolist() for t in inpaint.side_range(dims)] == [[10, 10, 5], [21, 21, 10]]
    assert [t.tolist() for t in outpaint.side_range(dims)] == [[28, 28, 14], [37, 37, 19]]


def test_mg_flips_never_touch_depth_and_a_third_are_the_channel_no_op() -> None:
    """Over many samples: x and y are flipped, depth never; one flip in three draws the
    channel, so P(x flipped an odd number of times) is below the all-spatial draw's."""
    x = torch.rand(4000, 1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    params = Flip(choices=MG_FLIP_CHOICES).sample(x, torch.Generator().manual_seed(1))
    axes, n = params["axes"], params["n_flips"]
    assert not axes[:, 2].any()
    assert axes[:, 0].any() and axes[:, 1].any()
    assert abs(float((n > 0).float().mean()) - 0.4) < 0.03  # while rand < 0.4
    one = n == 1  # a single flip: x, y or the channel, each 1/3
    share = axes[one].float().mean(0)
    assert abs(float(share[0]) - 1 / 3) < 0.05 and abs(float(share[1]) - 1 / 3) < 0.05
    out = build_preset("mg")(torch.rand(64, 1, 8, 8, 4), torch.Generator().manual_seed(3))
    assert not out.params["flip"]["axes"][:, 2].any()
