"""Context restoration (Chen et al., Medical Image Analysis 2019): swap pairs of small patches,
T times, and restore the image with an L2 loss over the whole cube (method.md §3.4: 10 swaps of
patches of side dim // 8). Registered as ``context-restoration``; ``shuffling`` (the "Patch
Shuffling" row of the paper's table) is its earlier name, kept as an alias."""

from __future__ import annotations

from semantic_genesis.pretrain.methods.comparison import RestoringComparison
from semantic_genesis.pretrain.methods.registry import register_method
from semantic_genesis.pretrain.methods.restoration import RESTORATION_MSE


@register_method("context-restoration", aliases=("shuffling",))
class ContextRestoration(RestoringComparison):
    """Put swapped patches back."""

    name = "context-restoration"
    title = "context restoration"
    paper = (
        "Chen et al., Self-supervised learning for medical image analysis using image context "
        "restoration, Medical Image Analysis 2019"
    )
    pretext = "shuffle"
    # what it trains on: cubes at the discovered patterns
    data = "patterns"
    # what it perturbs: T = 10 swaps of two disjoint patches of side dim // 8
    perturbation = "shuffle"
    # what it predicts: the unshuffled cube, from the decoder
    decoder = True
    heads = {}
    # what it minimises: λ_rec · MSE(sigmoid(restoration), original) over the whole cube (Chen's
    # L2 loss)
    terms = (RESTORATION_MSE,)
    figures = ("curves", "restorations")
