"""Auto-encoding (Hinton & Salakhutdinov, Science 2006): reproduce the unperturbed cube through
the U-Net; the baseline with no pretext difficulty."""

from __future__ import annotations

from semantic_genesis.pretrain.methods.registry import register_method
from semantic_genesis.pretrain.methods.restoration import RESTORATION_MSE, Restoring


@register_method("identity")
class Identity(Restoring):
    """Reproduce the input."""

    name = "identity"
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
