"""One front door for every model: a timm-style registry and :func:`create_model`.

Each architecture is a small ``@register_model`` function that takes the common arguments and
returns an ``nn.Module``; :func:`create_model` looks it up by name, builds it, and optionally
loads weights through :func:`~semantic_genesis.models.weights.load_weights`, attaching the
:class:`~semantic_genesis.models.weights.LoadReport` as ``model.load_report``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semantic_genesis.models.build import build_architecture, check_fits, guess_model_kwargs
from semantic_genesis.models.card import ModelCard
from semantic_genesis.models.weights import (
    SourceWeights,
    load_weights,
    read_weights,
)
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import say

ModelFn = Callable[..., nn.Module]
_REGISTRY: dict[str, ModelFn] = {}


def register_model(fn: ModelFn) -> ModelFn:
    """Register ``fn`` under its function name (decorator). A name can be registered once."""
    if fn.__name__ in _REGISTRY:
        raise ValueError(f"model {fn.__name__!r} is already registered")
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def create_model(
    name: str,
    pretrained: str | Path | dict[str, Any] | None = None,
    in_channels: int = 1,
    n_classes: int = 44,
    width: int = 32,
    norm: str = "batch",
    head: str = "torch",
    out_channels: int = 1,
    strict: bool | None = None,
    **kw: Any,
) -> nn.Module:
    """Build a registered model, optionally initialised from ``pretrained`` weights.

    Args:
        name: a name from :func:`list_models` (``unet3d``, ``ynet3d``, ``encoder3d``, or the
            ``*2d`` variants).
        pretrained: any source :func:`load_weights` understands (our ``.pt``, the official
            Semantic Genesis / Models Genesis ``.pt``, a Keras ``.h5``, a state dict).
        in_channels: input channels; pretrained 1-channel first convs are adapted.
        n_classes: classes of the head (ignored by ``unet*``).
        width: base channels (32 = reference; 8 for quick CPU runs).
        norm: ``batch`` (default), ``batch_always`` (reference), ``instance`` or ``group``.
        head: ``torch`` (reference PyTorch head), ``keras`` or ``mlp`` (ignored by ``unet*``).
        out_channels: segmentation / restoration outputs (ignored by ``encoder*``).
        strict: raise if the pretrained weights do not cover the model exactly (the error
            names what does not fit). ``None`` (default): strict when ``pretrained`` is one of
            our checkpoints (it has a model card), since a mismatch then means the wrong
            architecture was asked for: build it with :func:`load_model`, which takes the
            architecture from the card. Pass ``strict=False`` to load only what fits, e.g. the
            official files whose heads differ (the report then lists the rest).
        **kw: passed to the architecture function.

    Raises:
        SemgenError: unknown name, a network too large for the memory available (checked
            before it is built), an unreadable source, or weights that do not fit (strict).
    """
    if name not in _REGISTRY:
        raise SemgenError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    src = None
    if pretrained is not None:  # read (and check) the source before building anything
        src = pretrained if isinstance(pretrained, SourceWeights) else read_weights(pretrained)
    args = {"in_channels": in_channels, "n_classes": n_classes, "width": width, "norm": norm,
            "head": head, "out_channels": out_channels, **kw}
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
    check_fits(lambda: _REGISTRY[name](**args), f"{name}({shown})")
    model = _REGISTRY[name](**args)
    model.model_name = name
    if src is not None:
        strict = bool(src.card) if strict is None else strict
        model.load_report = load_weights(model, src, strict=strict)
        say(str(model.load_report))
    return model


def load_model(
    path: str | Path,
    strict: bool = True,
    map_location: str | torch.device = "cpu",
    **overrides: Any,
) -> nn.Module:
    """Rebuild the model a checkpoint describes and load it.

    The architecture comes from the checkpoint's model card, or is guessed from its keys for
    files without one (e.g. the official releases); ``overrides`` (``name``, ``n_classes`` ...)
    win over both. The card is attached as ``model.model_card``, the report as
    ``model.load_report``.
    """
    src = read_weights(path, map_location)
    card = ModelCard.from_dict(src.card, src.source) if src.card else None
    kwargs = card.model_kwargs() if card else guess_model_kwargs(src.state)
    kwargs.update(overrides)
    model = create_model(**kwargs)
    model.load_report = load_weights(model, src, strict=strict)
    if card is None:
        fields = set(ModelCard.__dataclass_fields__)
        card = ModelCard(
            architecture=kwargs["name"], **{k: v for k, v in kwargs.items() if k in fields}
        )
    model.model_card = card
    return model


@register_model
def unet3d(**kw: Any) -> nn.Module:
    """The reference 3D U-Net (Models Genesis): segmentation / restoration logits."""
    return build_architecture("unet", 3, **kw)


@register_model
def ynet3d(**kw: Any) -> nn.Module:
    """U-Net plus classification head on the bottleneck (Semantic Genesis pre-training)."""
    return build_architecture("ynet", 3, **kw)


@register_model
def encoder3d(**kw: Any) -> nn.Module:
    """Encoder plus classification head, no decoder (classification target tasks)."""
    return build_architecture("encoder", 3, **kw)


@register_model
def unet2d(**kw: Any) -> nn.Module:
    """The same U-Net on 2D images (the door to Semantic Genesis 2D)."""
    return build_architecture("unet", 2, **kw)


@register_model
def ynet2d(**kw: Any) -> nn.Module:
    """YNet on 2D images."""
    return build_architecture("ynet", 2, **kw)


@register_model
def encoder2d(**kw: Any) -> nn.Module:
    """Encoder classifier on 2D images."""
    return build_architecture("encoder", 2, **kw)
