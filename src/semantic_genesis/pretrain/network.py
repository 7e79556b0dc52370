"""The network a method trains: the backbone (YNet3D / UNet3D) plus, for rotation, its own head.

Only the parts a method needs run: classification-only and rotation never run the decoder
(method.md §14: no wasted work), restoration-only never runs ``clc_out``. The backbone is a
plain ``create_model`` module, so its state dict is what the checkpoint stores.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from semantic_genesis.pretrain.config import Method, PretrainConfig


class PretrainNet(nn.Module):
    """``forward(x) -> (restoration logits | None, class logits | None, rotation logits | None)``.

    A tuple (not a dataclass) so DDP can find the tensors in the output.
    """

    def __init__(self, backbone: nn.Module, method: Method, n_rotations: int = 0) -> None:
        super().__init__()
        from semantic_genesis.models import ClassificationHead

        self.backbone = backbone
        self.method = method
        self.rotation_head = (
            ClassificationHead(backbone.bottleneck_channels, n_rotations) if method.rotate else None
        )

    @property
    def uses_whole_backbone(self) -> bool:
        """False when part of the backbone (the decoder) is left out of the graph."""
        return self.method.restore

    def forward(self, x: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        bottleneck, skips = self.backbone.encode(x)
        restoration = self.backbone.decode(bottleneck, skips) if self.method.restore else None
        logits = self.backbone.clc_out(bottleneck) if self.method.classify else None
        rotation = self.rotation_head(bottleneck) if self.rotation_head is not None else None
        return restoration, logits, rotation


def build_network(
    config: PretrainConfig, method: Method, n_classes: int, n_rotations: int
) -> PretrainNet:
    """Create the backbone with ``create_model`` (seeded by the caller) and wrap it."""
    from semantic_genesis.models import create_model

    kwargs = {"width": config.width, "norm": config.norm}
    if method.architecture == "ynet3d":
        kwargs.update(n_classes=n_classes, head=config.head)
    backbone = create_model(method.architecture, **kwargs)
    net = PretrainNet(backbone, method, n_rotations)
    if config.channels_last:
        net = net.to(memory_format=torch.channels_last_3d)
    return net
