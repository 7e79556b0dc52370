"""Target-task networks and their initialisation: scratch, our checkpoints, the official weights.

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

from pathlib import Path
from typing import Any

import torch
from torch import nn

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


def checkpoint_architecture(init: str) -> tuple[Any, dict[str, Any]]:
    """Read a checkpoint once; return it with the architecture it was trained as."""
    from semantic_genesis.models.weights import guess_model_kwargs, read_weights

    path = Path(init)
    if not path.exists():
        raise SemgenError("initialisation not found: give 'scratch' or a checkpoint file", path)
    src = read_weights(path)
    arch = dict(src.card) if src.card else guess_model_kwargs(src.state)
    return src, arch


def build_model(
    task: str,
    n_out: int,
    init: str = SCRATCH,
    width: int | None = None,
    norm: str | None = None,
    freeze_encoder: bool = False,
    linear_probe: bool = False,
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

    Returns:
        The model and a summary of the initialisation for metrics.json.
    """
    from semantic_genesis.models import create_model, load_weights
    from semantic_genesis.models.unet import DECODER_PREFIXES, ENCODER_PREFIXES

    if task not in ("classify", "segment"):
        raise SemgenError(f"unknown task {task!r}; use classify or segment")
    src, arch = (None, {}) if init == SCRATCH else checkpoint_architecture(init)
    if width is not None and arch.get("width") not in (None, width):
        raise SemgenError(
            f"--width {width} differs from the checkpoint's width "
            f"{arch['width']}; leave --width out to use the checkpoint's",
            init,
        )
    kwargs = {
        "width": width or arch.get("width", 32),
        "norm": norm or arch.get("norm", "batch"),
        "in_channels": 1,
    }
    if task == "classify":
        model = create_model("encoder3d", n_classes=n_out, head="mlp", **kwargs)
    else:
        model = create_model("unet3d", out_channels=n_out, **kwargs)
    info: dict[str, Any] = {
        "init": init,
        "width": kwargs["width"],
        "norm": kwargs["norm"],
        "pretrained": src is not None,
        "model_card": arch or None,
    }
    if src is not None:
        report = load_weights(model, src)
        lost = [k for k in report.missing if k.startswith(ENCODER_PREFIXES)]
        if lost:
            raise SemgenError(
                f"{len(lost)} encoder weights were not in the checkpoint or had "
                f"another shape (e.g. {lost[0]}); is it a U-Net family model?",
                init,
            )
        info["load"] = {
            "matched": len(report.matched),
            "adapted": len(report.adapted),
            "missing": report.missing,
            "unexpected": len(report.unexpected),
            "shape_mismatch": [k for k, _, _ in report.shape_mismatch],
            "dropped": len(report.dropped),
        }
    if linear_probe:
        for p in model.parameters():
            p.requires_grad_(False)
        if task == "classify":
            model = LinearProbe(model, n_out)
        else:
            for p in model.out_tr.parameters():
                p.requires_grad_(True)
    elif freeze_encoder:
        for name, p in model.named_parameters():
            if name.startswith(ENCODER_PREFIXES):
                p.requires_grad_(False)
    info["frozen"] = (
        "all but the linear layer" if linear_probe else "encoder" if freeze_encoder else "nothing"
    )
    info["trainable_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    info["decoder_pretrained"] = bool(
        src is not None
        and task == "segment"
        and any(k.startswith(DECODER_PREFIXES) for k in src.state)
    )
    return model, info


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
