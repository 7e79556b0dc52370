"""The ``Method`` protocol: everything a pre-training method is, declared in one class.

A method says, in this order (docs/design.md, "Extending it today"):

1. **what it trains on**: ``data = "patterns"`` (cubes at the patterns ``semgen discover``
   found, with their class) or ``"cohort"`` (random air-test cubes cut straight from a
   prepared cohort, as Models Genesis does; no discovery, every label 0; method.md §3.1);
2. **what it perturbs**: ``perturbation``, the name of a ``transforms`` preset (``sg``, ``mg``,
   ``inpaint`` ...) or a callable ``(cubes, generator) -> (input, target, extra labels)``;
3. **what it predicts**: ``decoder`` (the backbone's decoder output becomes
   ``outputs["restoration"]``) and ``heads``, ``{name: factory(BackboneInfo) -> nn.Module}``,
   each run on the deepest encoder map and stored in ``outputs[name]``;
4. **what it minimises**: ``terms``, named loss terms ``fn(outputs, batch) -> scalar`` with a
   weight (a number, or the name of a ``PretrainConfig`` field such as ``"lambda_rec"``) and an
   optional metric (e.g. accuracy) logged beside it.

The engine loops over these declarations: the network runs the decoder and the heads, the loss
is the weighted sum of the terms, ``metrics.csv`` has one column per term and metric
(:meth:`Method.metric_names`), the figures are ``figures``, and the model card records
``name``. The optimiser and schedule default to the reference's (Adam, StepLR, method.md §5.1);
a method may declare its own numbers in ``recipe`` (e.g. Models Genesis: SGD lr 1, momentum 0.9,
batch 6), which fill the ``PretrainConfig`` fields left at None, or override
:meth:`Method.optimizer` / :meth:`Method.scheduler`.

This module imports no torch at load time, so the CLI can list methods in its help cheaply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - types only
    import torch
    from torch import Tensor, nn

#: what a method can train on (``Method.data``).
DATA_KINDS = ("patterns", "cohort")
#: the figures the engine knows how to draw (``Method.figures``).
FIGURE_KINDS = ("curves", "restorations")


@dataclass
class Batch:
    """One training batch as the loss terms see it (every tensor on the device).

    Attributes:
        cubes: the clean cubes ``(N, 1, X, Y, Z)`` in [0, 1].
        labels: the discovered class of each cube ``(N,)`` (``data = "patterns"``).
        input: what the network saw (the perturbed cubes).
        target: what a decoder should restore, or None.
        extra: the perturbation's extra labels (e.g. the rotation index), or None.
    """

    cubes: Tensor
    labels: Tensor
    input: Tensor
    target: Tensor | None = None
    extra: Tensor | None = None


#: a loss term or metric: ``fn(outputs, batch) -> scalar tensor``.
TermFn = Callable[[dict[str, "Tensor"], Batch], "Tensor"]


@dataclass(frozen=True)
class Metric:
    """A statistic logged beside a loss term but not minimised (e.g. accuracy).

    ``bounded``: a value in [0, 1], drawn on a fixed [0, 1] axis; ``chance``: draw chance
    (1 / number of discovered classes) on its curve.
    """

    name: str
    fn: TermFn
    title: str = ""
    bounded: bool = True
    chance: bool = False


@dataclass(frozen=True)
class Term:
    """One weighted loss term; ``name`` is its ``metrics.csv`` column (``train_<name>``).

    ``weight``: a number, or the name of a ``PretrainConfig`` field (``"lambda_rec"``,
    ``"lambda_cls"``) so the command line sets it. Terms are computed in float32.
    """

    name: str
    fn: TermFn
    weight: float | str = 1.0
    title: str = ""
    metric: Metric | None = None


@dataclass(frozen=True)
class BackboneInfo:
    """What a head factory may use: the backbone and the sizes around it."""

    backbone: nn.Module
    bottleneck_channels: int
    out_channels: int
    in_channels: int
    n_classes: int  # discovered classes (patterns)
    head: str  # the configured classification head kind (models.heads)
    norm: str


#: ``factory(BackboneInfo) -> nn.Module`` run on the deepest encoder map.
HeadFactory = Callable[[BackboneInfo], "nn.Module"]
#: ``(cubes, generator) -> (input, target, extra labels)``.
PerturbFn = Callable[["Tensor", "torch.Generator"], tuple[Any, Any, Any]]


class Method:
    """Base of every pre-training method; subclasses set the class attributes below.

    Attributes:
        name: registry name (``semgen pretrain --method NAME``), recorded in the model card.
        title: a short human name for logs and figures (default: ``name``).
        paper: one-line citation of where the method comes from.
        pretext: the card's ``pretext`` field (the flag name of the built-ins).
        semantic: True when the method classifies the discovered patterns (the Semantics
            wrapper); the default backbone then carries its classification head.
        data: ``"patterns"`` or ``"cohort"`` (see the module doc).
        perturbation: a preset name or a callable (see the module doc).
        decoder: run the backbone's decoder (``outputs["restoration"]``).
        heads: ``{output name: factory}``.
        terms: the loss terms, in the order they are added.
        figures: which of :data:`FIGURE_KINDS` the run draws every epoch.
        recipe: the method's own optimisation numbers, ``{PretrainConfig field: value}`` for
            any of ``optimizer``, ``lr``, ``momentum``, ``batch_size``, ``lr_step``,
            ``lr_gamma``, ``patience``; a field the user leaves at None takes it
            (``pretrain.recipe``, method.md §5.4).
    """

    name: str = ""
    title: str = ""
    paper: str = ""
    pretext: str = ""
    semantic: bool = False
    data: str = "patterns"
    perturbation: str | PerturbFn = "identity"
    decoder: bool = False
    heads: dict[str, HeadFactory] = {}
    terms: tuple[Term, ...] = ()
    figures: tuple[str, ...] = ("curves",)
    recipe: dict[str, Any] = {}

    @property
    def label(self) -> str:
        """``title`` or, without one, ``name``."""
        return self.title or self.name

    def metric_names(self) -> list[str]:
        """The statistics every step reports, in order: ``loss``, then each term and its
        metric (these are the ``metrics.csv`` columns, with ``train_``/``val_``)."""
        names = ["loss"]
        for term in self.terms:
            names.append(term.name)
            if term.metric is not None:
                names.append(term.metric.name)
        return names

    def metrics(self) -> list[Metric]:
        """Every statistic after ``loss`` as a :class:`Metric` (terms as unbounded ones), for
        the curves figure."""
        out = []
        for t in self.terms:
            out.append(Metric(t.name, t.fn, t.title or t.name, bounded=False))
            if t.metric is not None:
                out.append(t.metric)
        return out

    def optimizer(self, params: Iterable[Any], config: Any) -> torch.optim.Optimizer:
        """``config.optimizer`` at ``config.lr``: Adam (the SG reference, 1e-3, method.md §5.1)
        or SGD with ``config.momentum`` (the Models Genesis reference, lr 1, momentum 0.9,
        method.md §3.1)."""
        import torch

        if getattr(config, "optimizer", "adam") == "sgd":
            return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum)
        return torch.optim.Adam(params, lr=config.lr, fused=True)

    def scheduler(self, optimizer: Any, config: Any) -> Any:
        """StepLR, ``config.lr_gamma`` every ``config.lr_step`` epochs (reference 0.5 / 40),
        stepped once per epoch."""
        import torch

        return torch.optim.lr_scheduler.StepLR(optimizer, config.lr_step, config.lr_gamma)

    def with_preset(self, preset: str) -> Method:
        """A copy perturbing with preset ``preset`` instead (``--preset``)."""
        import copy

        clone = copy.copy(self)
        clone.perturbation = preset
        return clone

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r})"
