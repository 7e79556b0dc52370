"""Genesis restoration: restore cubes perturbed with the Models Genesis transformations.

- ``models-genesis``: Models Genesis (Zhou et al., MICCAI 2019) as its authors trained it
  (:class:`ModelsGenesis`, method.md §3.1, §5.4): random air-test cubes cut straight from the
  cohort (``data = "cohort"``, 32 per scan, no discovery), the ``mg`` preset (flips never on
  depth, 10,000-block local shuffling, Bézier intensity, multi-box painting), SGD lr 1 momentum
  0.9, batch 6, StepLR every 40 epochs x 0.5, patience 50.
- ``genesis-restoration``: the ``mg`` preset on the *discovered patterns* with the Semantic
  Genesis optimiser (Adam 1e-3, batch 64): Semantic Genesis without self-classification, i.e.
  the "restoration only" ablation (``--pretext genesis --no-semantic``; before this version it
  was called ``models-genesis``). ``--preset sg`` gives the ablation of method.md §8.1 exactly.
- ``semantic-genesis``: Semantic Genesis (Haghighi et al., MICCAI 2020) =
  ``Semantics(Genesis("sg"))``: the reference SG loader — elastic warp, then one of shuffle /
  Bézier / in- / out-painting (method.md §3.2) — plus self-classification of the patterns.
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
    """Restore the original cube from its Genesis-perturbed copy (on the discovered patterns)."""

    name = "genesis-restoration"
    title = "Genesis restoration"
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

    @property
    def label(self) -> str:
        """The title, with the preset when it is not the method's own (``--preset sg``)."""
        return self.title if self.perturbation == "mg" else f"{self.title} ({self.perturbation})"


class ModelsGenesis(Genesis):
    """Models Genesis: the ``mg`` preset on random cohort cubes, with MG's optimiser."""

    name = "models-genesis"
    title = "Models Genesis"
    # what it trains on: random air-test cubes of the cohort, 32 per scan (cohort_data)
    data = "cohort"
    # MG's pytorch/config.py (method.md §3.1): SGD lr 1, momentum 0.9, batch 6; StepLR every
    # int(0.8 x 50) = 40 epochs x 0.5; patience 50
    recipe = {"optimizer": "sgd", "lr": 1.0, "momentum": 0.9, "batch_size": 6,
              "lr_step": 40, "lr_gamma": 0.5, "patience": 50}

    def __init__(self, preset: str = "mg") -> None:
        super().__init__(preset)


@register_method("models-genesis", paper=MG_PAPER)
def models_genesis() -> Method:
    """Models Genesis as published: random cohort cubes, the mg preset, SGD lr 1 batch 6."""
    return ModelsGenesis("mg")


@register_method("genesis-restoration", paper=MG_PAPER)
def genesis_restoration() -> Method:
    """Genesis restoration on the discovered patterns (mg preset, Adam 1e-3, batch 64): the
    "restoration only" ablation of Semantic Genesis."""
    return Genesis("mg")


@register_method("semantic-genesis", paper=SG_PAPER)
def semantic_genesis() -> Method:
    """Semantic Genesis: semantics over Genesis restoration with the SG preset."""
    return Semantics(Genesis("sg"), name="semantic-genesis")
