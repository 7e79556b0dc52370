"""Rubik's cube (Zhuang et al., MICCAI 2019): recover the order and the orientation of the
2 x 2 x 2 sub-cubes (method.md §3.4).

Zhuang feed the 8 sub-cubes to a Siamese network of 8 weight-sharing branches, concatenate
their features and classify the permutation (K classes, cross-entropy) and each sub-cube's
horizontal and vertical 180-degree turn (2 x 8 binary outputs). Ours is a single-network
adaptation: the sub-cubes are rearranged and turned *in place inside the cube*
(:mod:`semantic_genesis.transforms.rubik`), one U-Net encoder sees the whole cube, and two heads
on its deepest map keep its coarse layout (4 x 4 x 2 cells, 2 x 2 x 1 per sub-cube, flattened
in position order, as Zhuang concatenate their branches) and predict the permutation class and
the 16 turn flags. An average over each sub-cube would lose the layout inside it, which is what
a turn changes: with such heads the turn flags stayed at chance (method.md §3.4). Both losses are weighted by λ_rec, in place of a restoration loss; the decoder never
runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from semantic_genesis.pretrain.methods.base import BackboneInfo, Batch, Metric, Term
from semantic_genesis.pretrain.methods.comparison import LabelledPretext
from semantic_genesis.pretrain.methods.registry import register_method

if TYPE_CHECKING:  # pragma: no cover - types only
    from torch import Tensor, nn

#: the turn flags: horizontal and vertical, per sub-cube.
N_FLAGS = 16
#: cells the heads average the deepest map to (the 8 x 8 x 4 map of a 64 x 64 x 32 cube, halved)
POOLED = (4, 4, 2)


def sub_cube_head(n_outputs: int, info: BackboneInfo) -> nn.Module:
    """A 1 x 1 convolution to ``D = max(C // 8, 8)`` channels, the deepest map averaged to
    4 x 4 x 2 cells (2 x 2 x 1 per sub-cube: the layout inside each sub-cube is kept, which
    its turn changes and an average over the sub-cube would lose), flattened in position
    order, a hidden layer of 2C units and ``n_outputs`` logits."""
    from torch import nn

    c = info.bottleneck_channels
    d = max(c // 8, 8)
    return nn.Sequential(
        nn.Conv3d(c, d, kernel_size=1),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool3d(POOLED),
        nn.Flatten(),
        nn.Linear(d * POOLED[0] * POOLED[1] * POOLED[2], 2 * c),
        nn.ReLU(inplace=True),
        nn.Linear(2 * c, n_outputs),
    )


def order_head(info: BackboneInfo) -> nn.Module:
    """Logits over the permutation classes."""
    from semantic_genesis.transforms.rubik import N_PERMUTATIONS

    return sub_cube_head(N_PERMUTATIONS, info)


def turn_head(info: BackboneInfo) -> nn.Module:
    """One logit per turn flag."""
    return sub_cube_head(N_FLAGS, info)


def order_ce(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """Cross-entropy of the permutation logits against the permutation class."""
    import torch.nn.functional as F

    return F.cross_entropy(outputs["order"].float(), batch.extra[:, 0])


def order_accuracy(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """Fraction of cubes whose permutation was recognised."""
    return (outputs["order"].argmax(1) == batch.extra[:, 0]).float().mean()


def turn_bce(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """Binary cross-entropy of the turn logits against the 16 flags."""
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(outputs["turns"].float(),
                                              batch.extra[:, 1:].float())


def turn_accuracy(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """Fraction of turn flags recognised."""
    return ((outputs["turns"] > 0) == batch.extra[:, 1:].bool()).float().mean()


@register_method("rubiks-cube")
class RubiksCube(LabelledPretext):
    """Put the Rubik's cube back: which permutation, which sub-cubes turned."""

    name = "rubiks-cube"
    title = "Rubik's cube"
    paper = (
        "Zhuang et al., Self-supervised Feature Learning for 3D Medical Images by Playing a "
        "Rubik's Cube, MICCAI 2019"
    )
    pretext = "rubik"
    # what it trains on: cubes at the discovered patterns
    data = "patterns"
    # what it perturbs: sub-cubes rearranged (100 permutations) and turned (16 flags), with a
    # gap blanked around the internal faces
    perturbation = "rubik"
    # what it predicts: the permutation class and the turn flags, from the deepest encoder map
    decoder = False
    heads = {"order": order_head, "turns": turn_head}
    # what it minimises: λ_rec · CE(order) + λ_rec · BCE(turns)
    terms = (
        Term("order_ce", order_ce, weight="lambda_rec", title="permutation CE",
             metric=Metric("order_acc", order_accuracy, "permutation accuracy")),
        Term("turn_bce", turn_bce, weight="lambda_rec", title="turn BCE",
             metric=Metric("turn_acc", turn_accuracy, "turn-flag accuracy")),
    )
    figures = ("curves", "restorations")
