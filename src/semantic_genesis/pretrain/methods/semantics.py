"""Semantics (Haghighi et al. 2020): self-classification of the discovered patterns, as an
add-on to any method ("self-classification only" is semantics over no pretext:
:mod:`.self_classification`).

``Semantics(method)`` trains on what ``method`` trains on (it needs the patterns' classes),
perturbs as ``method`` does, predicts what ``method`` predicts plus the pattern class from the
deepest encoder map, and minimises ``method``'s terms plus λ_cls · CE(class logits, class)
(reference λ_cls = 0.01, method.md §5). The cross-entropy takes the logits (the reference took
the log of a softmax, so log(0) = -inf when a probability underflowed; method.md §9.17).

The head is the backbone's own ``clc_out`` when it has one (the reference YNet3D), so the
checkpoint stays key for key the reference's; any other backbone gets a new
:class:`~semantic_genesis.models.ClassificationHead` on its bottleneck.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from semantic_genesis.pretrain.methods.base import BackboneInfo, Batch, Method, Metric, Term

if TYPE_CHECKING:  # pragma: no cover - types only
    from torch import Tensor, nn

PAPER = (
    "Haghighi et al., Learning Semantics-enriched Representation via Self-discovery, "
    "Self-classification, and Self-restoration, MICCAI 2020"
)


def class_head(info: BackboneInfo) -> nn.Module:
    """The backbone's ``clc_out`` if it has one, else a new head on the bottleneck."""
    from torch import nn

    from semantic_genesis.models import ClassificationHead

    own = getattr(info.backbone, "clc_out", None)
    if isinstance(own, nn.Module):
        return own
    return ClassificationHead(info.bottleneck_channels, info.n_classes, info.head, info.norm)


def class_ce(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """Cross-entropy of the pattern-class logits against the discovered class."""
    import torch.nn.functional as F

    return F.cross_entropy(outputs["classes"].float(), batch.labels)


def class_accuracy(outputs: dict[str, Tensor], batch: Batch) -> Tensor:
    """Fraction of cubes whose most likely class is the discovered one."""
    return (outputs["classes"].argmax(1) == batch.labels).float().mean()


class Semantics(Method):
    """``method`` plus self-classification of the discovered patterns."""

    paper = PAPER
    semantic = True

    def __init__(self, method: Method, weight: float | str = "lambda_cls",
                 name: str | None = None, title: str | None = None) -> None:
        self.inner = method
        self.name = name or f"{method.name}+semantics"
        self.title = title or ""
        self.pretext = method.pretext
        # what it trains on: the patterns (their classes are the labels), also when the
        # wrapped method trains on cohort cubes (models-genesis+semantics: MG's perturbation
        # and recipe on the discovered patterns, the paper's "MG + semantics")
        self.data = "patterns"
        self.recipe = dict(getattr(method, "recipe", {}))
        # what it perturbs: as the wrapped method
        self.perturbation = method.perturbation
        # what it predicts: the wrapped method's outputs and the pattern class
        self.decoder = method.decoder
        self.heads = {"classes": class_head, **method.heads}
        # what it minimises: the wrapped method's terms + λ_cls · CE
        self.terms = (*method.terms, Term(
            "ce", class_ce, weight=weight, title="pseudo-class CE",
            metric=Metric("acc", class_accuracy, "pseudo-class accuracy", chance=True),
        ))
        self.figures = method.figures

    @property
    def label(self) -> str:
        """Semantic Genesis (restoration with the sg preset), self-classification (no
        pretext), else ``<method> + semantics``."""
        if self.title:
            return self.title
        if self.decoder and self.perturbation == "sg":
            return "Semantic Genesis"
        if not self.inner.terms:
            return "self-classification"
        return f"{self.inner.label} + semantics"

    def with_preset(self, preset: str) -> Method:
        """The same wrapper around the wrapped method with ``preset``."""
        return Semantics(self.inner.with_preset(preset), self.terms[-1].weight, self.name,
                         self.title or None)

    def optimizer(self, params, config):  # noqa: ANN001, ANN201 - as the wrapped method's
        """The wrapped method's optimiser."""
        return self.inner.optimizer(params, config)

    def scheduler(self, optimizer, config):  # noqa: ANN001, ANN201 - as the wrapped method's
        """The wrapped method's schedule."""
        return self.inner.scheduler(optimizer, config)
