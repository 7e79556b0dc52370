"""In-painting (Pathak et al., Context Encoders, CVPR 2016): blank out a region and predict it
from its context (method.md §3.4).

- **What is dropped**: one box at a random place (Pathak's "random block" dropout, which gave
  better features than the central region), sides uniform in [dim // 4, dim // 2], filled with
  the cube's mean intensity (Pathak fill the region with the mean value).
- **What is minimised**: Pathak's reconstruction loss, the L2 distance *inside the dropped
  region only*, ``||M ⊙ (x − F((1 − M) ⊙ x))||²`` as a mean over the box's voxels; the U-Net's
  output outside the box is not trained (the ``restorations`` figure is meaningful inside the
  box only). Pathak's adversarial term, which sharpens the fill, is left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from semantic_genesis.pretrain.methods.base import Batch, Term
from semantic_genesis.pretrain.methods.comparison import RestoringComparison
from semantic_genesis.pretrain.methods.registry import register_method

if TYPE_CHECKING:  # pragma: no cover - types only
    import torch
    from torch import Tensor

#: box sides per axis uniform in [dim // 4, dim // 2] (the ``inpaint`` preset's box).
SIDE_DIVISORS = (4, 2)


def drop_box(cubes: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """``(input, target, mask)``: one random box of each cube filled with the cube's mean; the
    target is the cube; ``mask`` ``(N, 1, X, Y, Z)`` (bool) marks the dropped voxels."""
    from semantic_genesis.transforms.base import box_mask
    from semantic_genesis.transforms.inpainting import InPainting

    drop = InPainting(side_divisors=SIDE_DIVISORS, fill="mean", margin=0)
    dropped, params = drop.forward(cubes, generator)
    mask = box_mask(params["corner"], params["size"], params["enabled"], cubes.shape[2:])
    return dropped, cubes, mask


def box_mse(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """Pathak's reconstruction loss: MSE(sigmoid(restoration), original) over the dropped
    voxels (float32 even under autocast)."""
    import torch

    restored = torch.sigmoid(outputs["restoration"].float())
    mask = batch.extra.expand_as(restored)
    error = (restored - batch.target.float()).square()
    return error[mask].sum() / mask.sum().clamp(min=1)


@register_method("inpainting")
class Inpainting(RestoringComparison):
    """Fill in the missing box."""

    name = "inpainting"
    title = "in-painting"
    paper = "Pathak et al., Context Encoders: Feature Learning by Inpainting, CVPR 2016"
    pretext = "inpaint"
    # what it trains on: cubes at the discovered patterns
    data = "patterns"
    # what it perturbs: one random box filled with the cube's mean (extra label: its mask)
    perturbation = staticmethod(drop_box)
    # what it predicts: the cube, from the decoder (only the box is trained)
    decoder = True
    heads = {}
    # what it minimises: λ_rec · MSE(sigmoid(restoration), original) inside the box
    terms = (Term("box_mse", box_mse, weight="lambda_rec", title="in-painted box MSE"),)
    figures = ("curves", "restorations")
