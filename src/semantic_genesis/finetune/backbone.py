"""Target-task networks and their initialisation: scratch, our checkpoints, the official weights.

The network is the backbone family named by ``--backbone`` or, by default, the checkpoint's
model card (``reference`` for scratch and card-less files): its ``encoder`` role for
classification, its ``unet`` role for segmentation (models/backbone.py). For the reference:

- classification: ``create_model("encoder3d", head="mlp")`` = encoder, global average pooling,
  FC (2 x bottleneck channels; 1024 at the reference width) + ReLU, FC n. It returns logits,
  and the loss applies the sigmoid: no ReLU before the sigmoid (the SG README bug, method.md
  §7.2, §9.23), so probabilities below 0.5 are possible.
- segmentation: the whole ``unet3d``; its output conv is re-initialised when the number of
  output channels differs from the checkpoint's (method.md §12.7).

A pre-trained initialisation must fill every encoder weight; anything else is an error, so a
wrong file never fine-tunes silently from random weights (the README loader's bug, §9.24).
Options: ``freeze_encoder`` (train decoder/head only) and ``linear_probe`` (classification: a
single linear layer on the pooled, frozen bottleneck; segmentation: only the 1x1 output conv).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semantic_genesis.models.names import REFERENCE
from semantic_genesis.utils.errors import SemgenError

SCRATCH = "scratch"


class LinearProbe(nn.Module):
    """A linear classifier on the globally pooled bottleneck of a (frozen) encoder."""

    def __init__(self, backbone: nn.Module, n_out: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.bottleneck_channels, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.backbone.encode(x)[0].flatten(2).mean(dim=2))


def checkpoint_architecture(init: str, backbone: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Read a checkpoint once; return it with the architecture it was trained as.

    The architecture's ``backbone`` key is the checkpoint's backbone family: the model card's,
    or ``reference`` for files without one (official weights, plain state dicts).

    Raises:
        SemgenError: the file is missing or unreadable, or ``backbone`` is given and is not
            the checkpoint's (its weights would not fit another network).
    """
    from semantic_genesis.models.registry import backbone_of
    from semantic_genesis.models.weights import guess_model_kwargs, read_weights

    path = Path(init)
    if not path.exists():
        raise SemgenError("initialisation not found: give 'scratch' or a checkpoint file", path)
    src = read_weights(path)
    arch = dict(src.card) if src.card else guess_model_kwargs(src.state)
    name = arch.get("architecture", arch.get("name", ""))
    arch["backbone"] = arch.get("backbone") or backbone_of(name) or REFERENCE
    if backbone is not None and backbone != arch["backbone"]:
        raise SemgenError(
            f"the checkpoint holds a {arch['backbone']} backbone ({name}), not {backbone}: its "
            f"weights do not fit a {backbone} network; leave --backbone out to use the "
            "checkpoint's, or give a checkpoint of that backbone",
            path,
        )
    return src, arch


def check_backbone(
    init: str,
    backbone: str | None,
    patches: dict[str, Sequence[int] | None],
    width: int | None = None,
) -> str:
    """Before any data is made: the checkpoint reads, its backbone family and width are the ones
    asked for, and every patch fits the family's poolings. Returns the family.

    Raises:
        SemgenError: an unreadable checkpoint, another family's checkpoint or width, an unknown
            family, or a patch the network cannot halve evenly.
    """
    from semantic_genesis.models import create_model
    from semantic_genesis.models.registry import backbone_model

    family = backbone or REFERENCE
    if init != SCRATCH:
        arch = checkpoint_architecture(init, backbone)[1]
        _check_width(width, arch, init)
        family = arch["backbone"]
    with torch.device("meta"):  # shapes only: the family's size rule, no memory
        model = create_model(backbone_model(family, "unet"), width=1)
    _check_patches(model, patches)
    return family


def build_model(
    task: str,
    n_out: int,
    init: str = SCRATCH,
    width: int | None = None,
    norm: str | None = None,
    freeze_encoder: bool = False,
    linear_probe: bool = False,
    backbone: str | None = None,
    patches: dict[str, Sequence[int] | None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """The target-task network, initialised and (optionally) partly frozen.

    Args:
        task: ``classify`` or ``segment``.
        n_out: logits per sample (classify) or output channels (segment).
        init: ``scratch`` or the path of a checkpoint (ours, the official Semantic Genesis or
            Models Genesis ``.pt``, a plain state dict, or the Keras ``.h5`` encoder).
        width: base channels; None takes the checkpoint's (32, the reference, for scratch).
        norm: normalisation layers; None takes the checkpoint's (``batch`` for scratch).
        freeze_encoder: keep the encoder weights fixed.
        linear_probe: train only a linear layer (see module doc); implies a frozen encoder.
        backbone: the backbone family (``models.registry.list_backbones``); None takes the
            checkpoint's (``reference`` for scratch). A checkpoint of another family is refused.
        patches: input sizes the network will see, by name (``patch``, ``inference_patch``);
            each is checked against the backbone's poolings before any training.

    Returns:
        The model and a summary of the initialisation for metrics.json (with the
        ``architecture`` and ``backbone`` the model card records).
    """
    from semantic_genesis.models.registry import backbone_model

    if task not in ("classify", "segment"):
        raise SemgenError(f"unknown task {task!r}; use classify or segment")
    src, arch = (None, {}) if init == SCRATCH else checkpoint_architecture(init, backbone)
    _check_width(width, arch, init)
    family = arch.get("backbone") or backbone or REFERENCE
    name = backbone_model(family, "encoder" if task == "classify" else "unet")
    kwargs = {
        "width": width or arch.get("width", 32),
        "norm": norm or arch.get("norm", "batch"),
        "in_channels": 1,
    }
    model = _create_network(task, name, n_out, kwargs, patches)
    info = _describe_init(init, family, name, kwargs, src is not None, arch)
    if src is not None:
        info["load"] = _load(model, src, family, init)
    decoder_pretrained = bool(
        src is not None
        and task == "segment"
        and any(k.startswith(model.decoder_prefixes) for k in src.state)
    )
    model = _freeze_and_describe(model, task, n_out, freeze_encoder, linear_probe, info)
    info["decoder_pretrained"] = decoder_pretrained
    return model, info


def _create_network(
    task: str,
    name: str,
    n_out: int,
    kwargs: dict[str, Any],
    patches: dict[str, Sequence[int] | None] | None,
) -> nn.Module:
    """A freshly initialised network ``name`` for ``task``, refused (before any training)
    when one of ``patches`` does not fit its poolings."""
    from semantic_genesis.models import create_model

    if task == "classify":
        model = create_model(name, n_classes=n_out, head="mlp", **kwargs)
    else:
        model = create_model(name, out_channels=n_out, **kwargs)
    _check_patches(model, patches)
    return model


def _check_patches(model: nn.Module, patches: dict[str, Any] | None) -> None:
    """Each named patch size (None = not used) must fit the network's poolings."""
    from semantic_genesis.models.backbone import check_input_size

    for what, size in (patches or {}).items():
        if size is not None:
            check_input_size(model, size, what)


def _describe_init(
    init: str,
    family: str,
    name: str,
    kwargs: dict[str, Any],
    pretrained: bool,
    arch: dict[str, Any],
) -> dict[str, Any]:
    """The start of the initialisation summary metrics.json keeps: what the network is and
    where its weights come from (the model card, when the checkpoint has one)."""
    return {
        "init": init,
        "backbone": family,
        "architecture": name,
        "width": kwargs["width"],
        "norm": kwargs["norm"],
        "pretrained": pretrained,
        "model_card": arch or None,
    }


def _freeze_and_describe(
    model: nn.Module,
    task: str,
    n_out: int,
    freeze_encoder: bool,
    linear_probe: bool,
    info: dict[str, Any],
) -> nn.Module:
    """Apply the freezing options (:func:`_freeze`) and record in ``info`` what stays fixed and
    how many parameters train, so metrics.json says what was actually fine-tuned."""
    model = _freeze(model, task, n_out, freeze_encoder, linear_probe)
    info["frozen"] = (
        "all but the linear layer" if linear_probe else "encoder" if freeze_encoder else "nothing"
    )
    info["trainable_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model


def _check_width(width: int | None, arch: dict[str, Any], init: str) -> None:
    if width is not None and arch.get("width") not in (None, width):
        raise SemgenError(
            f"--width {width} differs from the checkpoint's width "
            f"{arch['width']}; leave --width out to use the checkpoint's",
            init,
        )


def _load(model: nn.Module, src: Any, family: str, init: str) -> dict[str, Any]:
    """Load ``src`` into ``model``; every encoder weight must come from it."""
    from semantic_genesis.models import load_weights

    report = load_weights(model, src)
    lost = [k for k in report.missing if k.startswith(model.encoder_prefixes)]
    if lost:
        raise SemgenError(
            f"{len(lost)} encoder weights were not in the checkpoint or had "
            f"another shape (e.g. {lost[0]}); is it a {family} backbone checkpoint?",
            init,
        )
    return {
        "matched": len(report.matched),
        "adapted": len(report.adapted),
        "missing": report.missing,
        "unexpected": len(report.unexpected),
        "shape_mismatch": [k for k, _, _ in report.shape_mismatch],
        "dropped": len(report.dropped),
    }


def _freeze(
    model: nn.Module, task: str, n_out: int, freeze_encoder: bool, linear_probe: bool
) -> nn.Module:
    """Freeze the encoder, or everything but a linear layer (a probe)."""
    if linear_probe:
        for p in model.parameters():
            p.requires_grad_(False)
        if task == "classify":
            return LinearProbe(model, n_out)
        for name, p in model.named_parameters():
            if name.startswith(model.output_prefix):
                p.requires_grad_(True)
    elif freeze_encoder:
        for name, p in model.named_parameters():
            if name.startswith(model.encoder_prefixes):
                p.requires_grad_(False)
    return model


def set_train_mode(model: nn.Module, training: bool = True) -> nn.Module:
    """``model.train(training)``, but frozen BatchNorm layers stay in eval mode, so a frozen
    encoder keeps its pre-trained running statistics."""
    model.train(training)
    if training:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in m.parameters(recurse=False)
            ):
                m.eval()
    return model
