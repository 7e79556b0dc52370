"""Genesis restoration: restore cubes perturbed with the Models Genesis transformations.

- Models Genesis (Zhou et al., MICCAI 2019) = ``Genesis("mg")``: MG's own recipe — flips,
  10,000-block local shuffling, Bézier intensity, multi-box painting (method.md §3.1).
- Semantic Genesis (Haghighi et al., MICCAI 2020) = ``Semantics(Genesis("sg"))``: the
  reference SG loader — elastic warp, then one of shuffle / Bézier / in- / out-painting
  (method.md §3.2) — plus self-classification of the discovered patterns.

``--preset sg`` on Models Genesis gives the "restoration only" ablation (method.md §8.1).
"""

from __future__ import annotations

from semantic_genesis.pretrain.methods.base import Method
from semantic_genesis.pretrain.methods.registry import register_method
from semantic_genesis.pretrain.methods.restoration import RESTORATION_MSE, Restoring
from semantic_genesis.pretrain.methods.semantics import PAPER as SG_PAPER
from semantic_genesis.pretrain.methods.semantics import Semantics

MG_PAPER = (
    "Zhou et al., Models Genesis: Generic Autodidactic Models for 3D Medical Image Analysis, "
    "MICCAI 2019"
)


class Genesis(Restoring):
    """Restore the original cube from its Genesis-perturbed copy."""

    name = "models-genesis"
    paper = MG_PAPER
    pretext = "genesis"
    # what it trains on: cubes at the discovered patterns
    data = "patterns"
    # what it perturbs: a Genesis preset, "mg" (Models Genesis) or "sg" (Semantic Genesis)
    perturbation = "mg"
    # what it predicts: the restored cube, from the decoder
    decoder = True
    heads = {}
    # what it minimises: λ_rec · MSE(sigmoid(restoration), original)
    terms = (RESTORATION_MSE,)
    figures = ("curves", "restorations")

    def __init__(self, preset: str = "mg") -> None:
        self.perturbation = preset


@register_method("models-genesis", paper=MG_PAPER)
def models_genesis() -> Method:
    """Models Genesis: Genesis restoration with MG's own preset."""
    return Genesis("mg")


@register_method("semantic-genesis", paper=SG_PAPER)
def semantic_genesis() -> Method:
    """Semantic Genesis: semantics over Genesis restoration with the SG preset."""
    return Semantics(Genesis("sg"), name="semantic-genesis")
