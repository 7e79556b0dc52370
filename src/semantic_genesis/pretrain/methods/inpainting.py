"""In-painting (Pathak et al., Context Encoders, CVPR 2016): restore a box blanked out with the
cube's mean intensity (one box, sides in [dim // 4, dim // 2])."""

from __future__ import annotations

from semantic_genesis.pretrain.methods.registry import register_method
from semantic_genesis.pretrain.methods.restoration import RESTORATION_MSE, Restoring


@register_method("inpainting")
class Inpainting(Restoring):
    """Fill in the missing box."""

    name = "inpainting"
    paper = "Pathak et al., Context Encoders: Feature Learning by Inpainting, CVPR 2016"
    pretext = "inpaint"
    # what it trains on: cubes at the discovered patterns
    data = "patterns"
    # what it perturbs: one box filled with the mean intensity
    perturbation = "inpaint"
    # what it predicts: the whole cube, from the decoder
    decoder = True
    heads = {}
    # what it minimises: λ_rec · MSE(sigmoid(restoration), original)
    terms = (RESTORATION_MSE,)
    figures = ("curves", "restorations")
