"""Self-classification only (Haghighi et al. 2020, the reference's ``--exp en`` mode): the
encoder learns to tell the discovered patterns apart from perturbed cubes, with no pretext of
its own; it is :class:`~.semantics.Semantics` over :class:`NoPretext`.
"""

from __future__ import annotations

from semantic_genesis.pretrain.methods.base import Method
from semantic_genesis.pretrain.methods.registry import register_method
from semantic_genesis.pretrain.methods.semantics import PAPER, Semantics


class NoPretext(Method):
    """No pretext of its own: the encoder sees perturbed cubes (the ``sg`` preset, as the
    reference's ``--exp en``, method.md §4.3) and nothing is restored; only useful under
    :class:`Semantics`."""

    name = "none"
    title = "no pretext"
    paper = PAPER
    pretext = "none"
    # what it trains on
    data = "patterns"
    # what it perturbs
    perturbation = "sg"
    # what it predicts: nothing (the decoder never runs)
    decoder = False
    heads = {}
    # what it minimises: nothing
    terms = ()
    figures = ("curves", "restorations")


@register_method("self-classification", paper=PAPER)
def self_classification() -> Method:
    """Self-classification only: semantics over no pretext."""
    return Semantics(NoPretext(), name="self-classification")
