"""Rotation prediction (Gidaris et al., ICLR 2018; the "Rotation" baseline of the TransVW
add-on study): which of 8 shape-preserving 3D rotations was applied to the cube? Gidaris' four
2D rotations become the 8 rotations that map a 64 x 64 x 32 prism onto itself, one drawn per
cube (method.md §3.4).

Its cross-entropy takes the place of a restoration loss, so ``--lambda-rec`` weights it. The
decoder never runs (its weights stay as initialised); the rotation head is stored beside the
backbone in the checkpoint (``aux_state_dict``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from semantic_genesis.pretrain.methods.base import BackboneInfo, Batch, Metric, Term
from semantic_genesis.pretrain.methods.comparison import LabelledPretext
from semantic_genesis.pretrain.methods.registry import register_method

if TYPE_CHECKING:  # pragma: no cover - types only
    from torch import Tensor, nn


def rotation_head(info: BackboneInfo) -> nn.Module:
    """Logits over the rotations, from the deepest encoder map."""
    from semantic_genesis.models import ClassificationHead
    from semantic_genesis.transforms.rotation import Rotation

    return ClassificationHead(info.bottleneck_channels, Rotation.n_classes)


def rotation_ce(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """Cross-entropy of the rotation logits against the applied rotation."""
    import torch.nn.functional as F

    return F.cross_entropy(outputs["rotation"].float(), batch.extra)


def rotation_accuracy(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """Fraction of cubes whose rotation was recognised."""
    return (outputs["rotation"].argmax(1) == batch.extra).float().mean()


@register_method("rotation")
class RotationPrediction(LabelledPretext):
    """Recognise the rotation."""

    name = "rotation"
    title = "rotation"
    paper = (
        "Gidaris et al., Unsupervised Representation Learning by Predicting Image Rotations, "
        "ICLR 2018"
    )
    pretext = "rotation"
    # what it trains on: cubes at the discovered patterns
    data = "patterns"
    # what it perturbs: one of 8 rotations (the extra label is its index)
    perturbation = "rotation"
    # what it predicts: the rotation index, from the deepest encoder map
    decoder = False
    heads = {"rotation": rotation_head}
    # what it minimises: λ_rec · CE(rotation logits, rotation index)
    terms = (
        Term("rot_ce", rotation_ce, weight="lambda_rec", title="rotation CE",
             metric=Metric("rot_acc", rotation_accuracy, "rotation accuracy")),
    )
    figures = ("curves", "restorations")
