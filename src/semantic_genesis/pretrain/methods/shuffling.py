"""Context restoration (Chen et al., Medical Image Analysis 2019): restore a cube in which
pairs of small patches were swapped (10 swaps of patches of side dim // 8)."""

from __future__ import annotations

from semantic_genesis.pretrain.methods.registry import register_method
from semantic_genesis.pretrain.methods.restoration import RESTORATION_MSE, Restoring


@register_method("shuffling")
class Shuffling(Restoring):
    """Put swapped patches back."""

    name = "shuffling"
    paper = (
        "Chen et al., Self-supervised learning for medical image analysis using image context "
        "restoration, Medical Image Analysis 2019"
    )
    pretext = "shuffle"
    # what it trains on: cubes at the discovered patterns
    data = "patterns"
    # what it perturbs: 10 swaps of patch pairs
    perturbation = "shuffle"
    # what it predicts: the unshuffled cube, from the decoder
    decoder = True
    heads = {}
    # what it minimises: λ_rec · MSE(sigmoid(restoration), original)
    terms = (RESTORATION_MSE,)
    figures = ("curves", "restorations")
