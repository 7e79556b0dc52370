"""Auto-encoding (Hinton & Salakhutdinov, Science 2006): reproduce the unperturbed cube through
the U-Net; the comparison with no pretext difficulty (method.md §3.4). Registered as
``auto-encoder``; ``identity`` is its earlier name, kept as an alias."""

from __future__ import annotations

from semantic_genesis.pretrain.methods.comparison import RestoringComparison
from semantic_genesis.pretrain.methods.registry import register_method
from semantic_genesis.pretrain.methods.restoration import RESTORATION_MSE


@register_method("auto-encoder", aliases=("identity",))
class AutoEncoder(RestoringComparison):
    """Reproduce the input."""

    name = "auto-encoder"
    title = "auto-encoder"
    paper = (
        "Hinton & Salakhutdinov, Reducing the Dimensionality of Data with Neural Networks, "
        "Science 2006"
    )
    pretext = "identity"
    # what it trains on: cubes at the discovered patterns
    data = "patterns"
    # what it perturbs: nothing (input = target = the cube)
    perturbation = "identity"
    # what it predicts: the cube, from the decoder
    decoder = True
    heads = {}
    # what it minimises: λ_rec · MSE(sigmoid(restoration), cube)
    terms = (RESTORATION_MSE,)
    figures = ("curves", "restorations")
