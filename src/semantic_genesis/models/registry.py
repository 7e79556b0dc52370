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
from semantic_genesis.models.names import REFERENCE, ROLES
from semantic_genesis.models.weights import (
    SourceWeights,
    load_weights,
    read_weights,
)
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import say

ModelFn = Callable[..., nn.Module]
_REGISTRY: dict[str, ModelFn] = {}
#: registry name -> (backbone family, role) for the names a family registered (backbone.py)
_ROLES: dict[str, tuple[str, str]] = {}
#: model-card ``notes`` key of the ``create_model`` arguments a family needs beyond the card's
#: fields (a backbone's ``card_kwargs()``, e.g. nnU-Net's plans); :func:`load_model` uses them
CARD_KWARGS = "model_kwargs"


def register_model(
    fn: ModelFn | None = None,
    *,
    name: str | None = None,
    backbone: str | None = None,
    role: str = "unet",
) -> Any:
    """Register ``fn`` under ``name`` (default: its function name); a name is registered once.

    Use bare (``@register_model``) or with options (``@register_model(name="my-unet",
    backbone="my-unet", role="unet")``). ``backbone`` declares the model one of the roles
    (``unet``, ``ynet``, ``encoder``: :mod:`~semantic_genesis.models.backbone`) of a backbone
    family usable for pre-training; the network must then follow the ``Backbone`` protocol
    (``Encoder`` for the ``encoder`` role).
    """
    if backbone is not None and role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")

    def add(f: ModelFn) -> ModelFn:
        key = name or f.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is already registered")
        if backbone is not None and (backbone, role) in _ROLES.values():
            raise ValueError(f"backbone {backbone!r} already has a {role!r} model")
        _REGISTRY[key] = f
        if backbone is not None:
            _ROLES[key] = (backbone, role)
        return f

    return add(fn) if fn is not None else add


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def list_backbones() -> list[str]:
    """The backbone families usable for pre-training (``reference`` and those registered)."""
    return sorted({family for family, role in _ROLES.values() if role == "unet"})


def backbone_model(backbone: str, role: str) -> str:
    """The registry name of ``backbone``'s model in ``role`` (``unet``, ``ynet``, ``encoder``).

    Raises:
        SemgenError: an unknown family, or one that registered no model for the role.
    """
    for key, entry in _ROLES.items():
        if entry == (backbone, role):
            return key
    if backbone not in list_backbones():
        raise SemgenError(
            f"unknown backbone {backbone!r}; available: {', '.join(list_backbones())}"
        )
    raise SemgenError(f"backbone {backbone!r} has no {role!r} model registered")


def backbone_of(name: str) -> str | None:
    """The backbone family of the registered model ``name``, or None if it belongs to none."""
    entry = _ROLES.get(name)
    return entry[0] if entry else None


#: create_model's architecture arguments and the value each takes when not given (None)
_DEFAULTS: dict[str, Any] = {"in_channels": 1, "n_classes": 44, "width": 32, "norm": "batch",
                             "head": "torch", "out_channels": 1}


def create_model(
    name: str | None,
    pretrained: str | Path | dict[str, Any] | None = None,
    in_channels: int | None = None,
    n_classes: int | None = None,
    width: int | None = None,
    norm: str | None = None,
    head: str | None = None,
    out_channels: int | None = None,
    strict: bool | None = None,
    **kw: Any,
) -> nn.Module:
    """Build a registered model, optionally initialised from ``pretrained`` weights.

    Architecture arguments left at None take their default (below) or, with ``name=None``,
    the value in the weights' model card (timm's rule: None arguments are pruned).

    Args:
        name: a name from :func:`list_models` (``unet3d``, ``ynet3d``, ``encoder3d``, the
            ``*2d`` variants, ``monai-basicunet`` and its ``-ynet`` / ``-encoder`` roles), or
            None: the architecture of ``pretrained``'s model card (a Hugging Face-format folder
            or ``hf-hub:`` id, or one of our ``.pt``); arguments given still win.
        pretrained: any source :func:`load_weights` understands (our ``.pt``, the official
            Semantic Genesis / Models Genesis ``.pt``, a Keras ``.h5``, a state dict, a
            Hugging Face-format folder, a ``.safetensors`` file, ``hf-hub:ORG/NAME[@REV]``).
        in_channels: input channels (default 1); pretrained 1-channel first convs are adapted.
        n_classes: classes of the head (default 44; ignored by ``unet*``).
        width: base channels (default 32 = reference; 8 for quick CPU runs).
        norm: ``batch`` (default), ``batch_always`` (reference), ``instance`` or ``group``.
        head: ``torch`` (default, reference PyTorch head), ``keras`` or ``mlp`` (ignored by
            ``unet*``).
        out_channels: segmentation / restoration outputs (default 1; ignored by ``encoder*``).
        strict: raise if the pretrained weights do not cover the model exactly (the error
            names what does not fit). ``None`` (default): strict when ``pretrained`` is one of
            our checkpoints (it has a model card), since a mismatch then means the wrong
            architecture was asked for: build it with :func:`load_model`, which takes the
            architecture from the card. Pass ``strict=False`` to load only what fits, e.g. the
            official files whose heads differ (the report then lists the rest).
        **kw: passed to the architecture function.

    Raises:
        SemgenError: unknown name, ``name=None`` without a model card to take it from, a
            network too large for the memory available (checked before it is built), an
            unreadable source, or weights that do not fit (strict).
    """
    src = None
    if pretrained is not None:  # read (and check) the source before building anything
        src = pretrained if isinstance(pretrained, SourceWeights) else read_weights(pretrained)
    given = {"in_channels": in_channels, "n_classes": n_classes, "width": width, "norm": norm,
             "head": head, "out_channels": out_channels}
    base = dict(_DEFAULTS)
    if name is None:
        if src is None or not src.card:
            where = "" if src is None else f" ({src.source} has none)"
            raise SemgenError("create_model(None, ...) takes the architecture from the weights' "
                              f"model card: pass pretrained= weights that carry one{where}")
        base = model_kwargs_of(src)  # the card's fields and the family's own arguments
        name = base.pop("name")
    if name not in _REGISTRY:
        raise SemgenError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    args = {**base, **{k: v for k, v in given.items() if v is not None}, **kw}
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
    check_fits(lambda: _REGISTRY[name](**args), f"{name}({shown})")
    model = _REGISTRY[name](**args)
    model.model_name = name
    if src is not None:
        strict = bool(src.card) if strict is None else strict
        model.load_report = load_weights(model, src, strict=strict)
        say(str(model.load_report))
    return model


def build_backbone(
    name: str,
    width: int,
    in_channels: int = 1,
    out_channels: int = 1,
    norm: str = "batch",
    n_classes: int = 0,
    head: str = "torch",
    **kw: Any,
) -> nn.Module:
    """The network pre-training trains: family ``name`` with a decoder, and a classification
    head ``clc_out`` of ``n_classes`` on the bottleneck when ``n_classes > 0``.

    ``kw`` are the family's own arguments (``nnunet``: ``plans``, ``configuration``).

    For ``reference`` this is ``create_model("ynet3d" | "unet3d", ...)``, exactly as before.
    The module's ``model_name`` is the registry name to rebuild it with (the card's
    ``architecture``), its ``backbone_name`` the family.

    Raises:
        SemgenError: an unknown family (the message lists the registered ones).
    """
    role = "ynet" if n_classes > 0 else "unet"
    kwargs = {"width": width, "in_channels": in_channels, "out_channels": out_channels,
              "norm": norm}
    if n_classes > 0:
        kwargs.update(n_classes=n_classes, head=head)
    return create_model(backbone_model(name, role), **kwargs, **kw)


def model_kwargs_of(src: SourceWeights, card: ModelCard | None = None) -> dict[str, Any]:
    """``create_model`` arguments rebuilding the network of ``src``: its card's fields plus the
    family's own arguments in ``notes["model_kwargs"]`` (:data:`CARD_KWARGS`), or, for files
    without a card, those guessed from the keys."""
    if card is None and not src.card:
        return guess_model_kwargs(src.state)
    card = card or ModelCard.from_dict(src.card, src.source)
    extra = card.notes.get(CARD_KWARGS)
    return {**card.model_kwargs(), **(extra if isinstance(extra, dict) else {})}


def load_model(
    path: str | Path,
    strict: bool = True,
    map_location: str | torch.device = "cpu",
    **overrides: Any,
) -> nn.Module:
    """Rebuild the model a checkpoint describes and load it.

    The architecture comes from the checkpoint's model card, or is guessed from its keys for
    files without one (e.g. the official releases); ``overrides`` (``name``, ``n_classes`` ...)
    win over both. A family's own arguments (the ``nnunet`` plans) are the card's
    ``notes["model_kwargs"]`` (:data:`CARD_KWARGS`). The card is attached as
    ``model.model_card``, the report as ``model.load_report``.
    """
    src = read_weights(path, map_location)
    card = ModelCard.from_dict(src.card, src.source) if src.card else None
    kwargs = model_kwargs_of(src, card)
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


@register_model(backbone=REFERENCE, role="unet")
def unet3d(**kw: Any) -> nn.Module:
    """The reference 3D U-Net (Models Genesis): segmentation / restoration logits."""
    return build_architecture("unet", 3, **kw)


@register_model(backbone=REFERENCE, role="ynet")
def ynet3d(**kw: Any) -> nn.Module:
    """U-Net plus classification head on the bottleneck (Semantic Genesis pre-training)."""
    return build_architecture("ynet", 3, **kw)


@register_model(backbone=REFERENCE, role="encoder")
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


def _monai(role: str) -> ModelFn:
    def build(**kw: Any) -> nn.Module:
        from semantic_genesis.models import monai_backbones as mb

        cls = mb.BasicUNetEncoder if role == "encoder" else mb.BasicUNetBackbone
        return cls(role=role, **kw)

    build.__doc__ = f"MONAI BasicUNet as a backbone, role {role!r} (monai_backbones.py)."
    return build


for _role, _suffix in (("unet", ""), ("ynet", "-ynet"), ("encoder", "-encoder")):
    register_model(_monai(_role), name=f"monai-basicunet{_suffix}", backbone="monai-basicunet",
                   role=_role)


def _nnunet(role: str) -> ModelFn:
    def build(**kw: Any) -> nn.Module:
        from semantic_genesis.models import nnunet_backbone as nb

        cls = nb.NnUNetEncoder if role == "encoder" else nb.NnUNetBackbone
        return cls(role=role, **kw)

    build.__doc__ = (f"nnU-Net v2's network from a plans file (plans=, configuration=), role "
                     f"{role!r} (nnunet_backbone.py).")
    return build


for _role, _suffix in (("unet", ""), ("ynet", "-ynet"), ("encoder", "-encoder")):
    register_model(_nnunet(_role), name=f"nnunet{_suffix}", backbone="nnunet", role=_role)
