"""MONAI's ``BasicUNet`` as a backbone (the ``Backbone`` protocol of ``backbone.py``).

``BasicUNet.forward`` is five encoder levels and four decoder levels in a row::

    x0 = conv_0(x); x1 = down_1(x0); ... x4 = down_4(x3)        encoder
    u4 = upcat_4(x4, x3); ... u1 = upcat_1(u2, x0); final_conv(u1)  decoder

:class:`BasicUNetBackbone` is a ``BasicUNet`` (same modules, same state-dict keys, so MONAI's
own weights load into it) whose ``encode`` returns ``(x4, (x0, x1, x2, x3))`` and whose
``decode`` runs the up-sampling path and ``final_conv``; ``decode(*encode(x))`` equals
``BasicUNet.forward(x)``. Channels follow the reference plan scaled by ``width``: features
``(w, w, 2w, 4w, 8w, w)``, so ``width=32`` is MONAI's default ``(32, 32, 64, 128, 256, 32)``.

Four poolings: every spatial input size must be a multiple of 16 (``encode`` refuses others
with one line rather than letting MONAI pad the decoder silently).
"""

from __future__ import annotations

import math

import torch
from monai.networks.nets.basic_unet import BasicUNet
from torch import Tensor

from semantic_genesis.models.backbone import parameter_counts, role_forward
from semantic_genesis.models.blocks import GROUP_NORM_GROUPS
from semantic_genesis.models.heads import ClassificationHead
from semantic_genesis.models.names import NORMS
from semantic_genesis.utils.errors import SemgenError

_ENCODER = ("conv_0.", "down_1.", "down_2.", "down_3.", "down_4.")
_DECODER = ("upcat_4.", "upcat_3.", "upcat_2.", "upcat_1.", "final_conv.")


def _monai_norm(norm: str, features: tuple[int, ...]) -> str | tuple[str, dict[str, object]]:
    """Our normalisation name as MONAI's ``norm`` argument."""
    if norm == "batch":
        return "batch"
    if norm == "instance":
        return ("instance", {"affine": True})
    if norm == "group":
        return ("group", {"num_groups": math.gcd(min(features), GROUP_NORM_GROUPS)})
    others = ", ".join(n for n in NORMS if n != "batch_always")
    raise SemgenError(f"monai-basicunet: norm {norm!r} is not available; use {others}")


class BasicUNetBackbone(BasicUNet):
    """``BasicUNet`` (3D) split into ``encode`` / ``decode``, with the roles of a backbone family.

    Args:
        role: ``unet`` (``forward`` gives ``(N, out_channels, ...)`` logits), ``ynet`` (plus a
            classification head ``clc_out``: ``forward`` gives ``(seg, cls)`` logits) or
            ``encoder`` (no decoder; ``forward`` gives the head's logits, or the pooled
            bottleneck when ``n_classes`` is 0).
        in_channels, out_channels: input and output channels.
        n_classes, head: the head of the ``ynet`` and ``encoder`` roles (ignored by ``unet``).
        width: base channels; features ``(w, w, 2w, 4w, 8w, w)``.
        norm: ``batch``, ``instance`` or ``group``.
    """

    backbone_name = "monai-basicunet"
    encoder_prefixes = _ENCODER
    decoder_prefixes = _DECODER
    output_prefix = "final_conv."
    first_conv = "conv_0.conv_0.conv"
    size_multiple = 16
    spatial_dims = 3

    def __init__(
        self,
        role: str = "unet",
        in_channels: int = 1,
        out_channels: int = 1,
        n_classes: int = 0,
        width: int = 32,
        norm: str = "batch",
        head: str = "torch",
    ) -> None:
        if role not in ("unet", "ynet", "encoder"):
            raise SemgenError(f"monai-basicunet: unknown role {role!r}")
        if min(width, in_channels, out_channels) < 1 or n_classes < 0:
            raise SemgenError(
                f"monai-basicunet: width, in_channels and out_channels must be positive and "
                f"n_classes at least 0, got {width}, {in_channels}, {out_channels}, {n_classes}"
            )
        w = width
        features = (w, w, 2 * w, 4 * w, 8 * w, w)
        super().__init__(3, in_channels, out_channels, features, norm=_monai_norm(norm, features))
        self.role, self.width, self.norm = role, width, norm
        self.in_channels, self.out_channels = in_channels, out_channels
        self.bottleneck_channels = features[4]
        if role == "encoder":
            for name in _DECODER:
                delattr(self, name.rstrip("."))
        has_head = role == "ynet" or (role == "encoder" and n_classes > 0)
        if role == "ynet" and n_classes < 1:
            raise SemgenError("monai-basicunet-ynet needs n_classes of at least 1")
        self.n_classes = n_classes if has_head else 0
        self.clc_out = (
            ClassificationHead(self.bottleneck_channels, n_classes, head, norm) if has_head else None
        )

    def encode(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``(x4, (x0, x1, x2, x3))``: the bottleneck at 1/16 and the skips, shallow to deep."""
        if not torch.jit.is_tracing() and any(s % self.size_multiple for s in x.shape[2:]):
            raise SemgenError(
                f"input size {tuple(x.shape[2:])}: monai-basicunet needs every size to be a "
                f"multiple of {self.size_multiple} (four poolings)"
            )
        x0 = self.conv_0(x)
        x1 = self.down_1(x0)
        x2 = self.down_2(x1)
        x3 = self.down_3(x2)
        return self.down_4(x3), (x0, x1, x2, x3)

    def decode(self, bottleneck: Tensor, skips: tuple[Tensor, ...]) -> Tensor:
        """The up-sampling path and ``final_conv``: ``(N, out_channels, *input size)`` logits."""
        x0, x1, x2, x3 = skips
        u = self.upcat_4(bottleneck, x3)
        u = self.upcat_3(u, x2)
        u = self.upcat_2(u, x1)
        return self.final_conv(self.upcat_1(u, x0))

    def encoder_state_dict(self) -> dict[str, Tensor]:
        """The encoder's weights only (``conv_0``, ``down_1`` ... ``down_4``)."""
        return {k: v for k, v in self.state_dict().items() if k.startswith(_ENCODER)}

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per part: ``encoder``, ``decoder``, ``head``, ``total``."""
        return parameter_counts(self)

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:  # type: ignore[override]
        return role_forward(self, x)


class BasicUNetEncoder(BasicUNetBackbone):
    """The ``encoder`` role: BasicUNet's encoder and a head, no decoder (classification
    fine-tuning). An :class:`~semantic_genesis.models.backbone.Encoder`, not a ``Backbone``."""

    decode = None  # type: ignore[assignment]
    decoder_prefixes = ()

    def __init__(self, role: str = "encoder", **kw: object) -> None:
        super().__init__(role="encoder", **kw)  # type: ignore[arg-type]
