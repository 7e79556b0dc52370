"""The network a method trains: a backbone, plus the heads the method declares.

``forward(x)`` encodes once, runs the decoder only when the method restores
(``outputs["restoration"]``) and each head on the deepest encoder map (``outputs[name]``):
self-classification and rotation never run the decoder (method.md §14: no wasted work). The
backbone is a plain ``create_model`` module, so its state dict is what the checkpoint stores;
a head that is part of the backbone (YNet3D's ``clc_out``, used by Semantics) is stored with
it, key for key the reference's, and the other heads beside it (``aux_state_dict``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from semantic_genesis.pretrain.config import PretrainConfig
from semantic_genesis.pretrain.methods import BackboneInfo, Method
from semantic_genesis.utils.errors import SemgenError


def backbone_name(config: PretrainConfig, method: Method) -> str:
    """The registry name of the backbone (the card's ``architecture``): the ``ynet`` role of
    ``config.backbone`` (with its classification head; the reference YNet3D) for methods with
    semantics, else its ``unet`` role (the reference UNet3D)."""
    from semantic_genesis.models.registry import backbone_model

    return backbone_model(config.backbone, "ynet" if method.semantic else "unet")


def make_backbone(config: PretrainConfig, method: Method, n_classes: int) -> nn.Module:
    """Create the backbone ``config.backbone`` with ``build_backbone`` (seeded by the caller);
    ``nnunet`` is built from ``config.plans`` (models/nnunet_backbone.py)."""
    from semantic_genesis.models import build_backbone

    return build_backbone(config.backbone, config.width, norm=config.norm,
                          n_classes=n_classes if method.semantic else 0, head=config.head,
                          **_family_kwargs(config))


def _family_kwargs(config: PretrainConfig) -> dict[str, str]:
    """The arguments only one family takes: ``--plans`` for ``nnunet`` (refused elsewhere)."""
    if config.plans is None:
        return {}
    if config.backbone != "nnunet":
        raise SemgenError(f"--plans builds nnU-Net's network: it needs --backbone nnunet, not "
                          f"{config.backbone}")
    return {"plans": config.plans, "configuration": config.plans_configuration}


def _inside(module: nn.Module, parent: nn.Module) -> bool:
    return any(module is m for m in parent.modules())


class PretrainNet(nn.Module):
    """``forward(x) -> {output name: logits}`` (a dict, which DDP and compile follow).

    Attributes:
        backbone: the network the checkpoint's ``state_dict`` holds.
        heads: the method's heads that are not part of the backbone (``aux_state_dict``).
    """

    def __init__(self, backbone: nn.Module, method: Method, info: BackboneInfo) -> None:
        super().__init__()
        self.backbone = backbone
        self.decoder = method.decoder
        self.order = list(method.heads)
        made = {name: make(info) for name, make in method.heads.items()}
        self.heads = nn.ModuleDict({n: h for n, h in made.items() if not _inside(h, backbone)})
        # heads the backbone owns, by their path in it (not registered twice)
        self.owned = {
            n: next(p for p, m in backbone.named_modules() if m is h)
            for n, h in made.items() if n not in self.heads
        }

    def head(self, name: str) -> nn.Module:
        """The head producing ``outputs[name]``."""
        if name in self.heads:
            return self.heads[name]
        return self.backbone.get_submodule(self.owned[name])

    @property
    def uses_whole_backbone(self) -> bool:
        """False when part of the backbone (the decoder, an unused head) is left out of the
        graph (DDP must then look for unused parameters)."""
        unused_head = isinstance(getattr(self.backbone, "clc_out", None), nn.Module) and (
            "clc_out" not in self.owned.values()
        )
        return self.decoder and not unused_head

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        bottleneck, skips = self.backbone.encode(x)
        outputs = {}
        if self.decoder:
            outputs["restoration"] = self.backbone.decode(bottleneck, skips)
        for name in self.order:
            outputs[name] = self.head(name)(bottleneck)
        return outputs


def build_network(config: PretrainConfig, method: Method, n_classes: int) -> PretrainNet:
    """The backbone (:func:`make_backbone`) with the method's heads."""
    backbone = make_backbone(config, method, n_classes)
    info = BackboneInfo(
        backbone=backbone,
        bottleneck_channels=backbone.bottleneck_channels,
        out_channels=getattr(backbone, "out_channels", 1),
        in_channels=getattr(backbone, "in_channels", 1),
        n_classes=n_classes,
        head=config.head,
        norm=config.norm,
    )
    net = PretrainNet(backbone, method, info)
    if config.channels_last:
        net = net.to(memory_format=torch.channels_last_3d)
    return net
