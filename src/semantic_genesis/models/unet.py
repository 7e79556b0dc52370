"""The reference 3D U-Net, YNet3D and encoder classifier (method.md §4.1).

At the defaults (``width=32``, ``in_channels=1``, ``out_channels=1``, ``n_classes=44``,
``head="torch"``) the state dict is key for key and shape for shape the reference one
(tests/models/data/ynet3d_state_dict.txt: 115 keys, 33,277,613 parameters), so the released
Semantic Genesis and Models Genesis weights load strictly.

Channel plan (``w = width``; the reference ``w = 32``)::

    down_tr64   in→w, w→2w        skip 2w   (pool)
    down_tr128  2w→2w, 2w→4w      skip 4w   (pool)
    down_tr256  4w→4w, 4w→8w      skip 8w   (pool)
    down_tr512  8w→8w, 8w→16w     bottleneck 16w
    up_tr256    up 16w, cat 24w → 8w, 8w
    up_tr128    up 8w,  cat 12w → 4w, 4w
    up_tr64     up 4w,  cat 6w  → 2w, 2w
    out_tr      2w → out_channels (1x1)

Inputs must have every spatial size divisible by 8 (three poolings; 16 is safer, MG advice).
"""

from __future__ import annotations

import torch
from torch import nn

from semantic_genesis.models.blocks import DownTransition, OutputTransition, UpTransition
from semantic_genesis.models.heads import ClassificationHead
from semantic_genesis.utils.errors import SemgenError

#: Parameter-name prefixes of each part (used by counts, exports and the load report).
ENCODER_PREFIXES = ("down_tr64.", "down_tr128.", "down_tr256.", "down_tr512.")
DECODER_PREFIXES = ("up_tr256.", "up_tr128.", "up_tr64.", "out_tr.")
HEAD_PREFIX = "clc_out."


class Encoder3D(nn.Module):
    """The four ``down_tr*`` levels; the base of every model here.

    Attributes:
        bottleneck_channels: channels of the bottleneck (``16 * width``; 512 at the reference).
        skip_channels: channels of the three skips, shallow to deep.
        first_conv: name of the input convolution (adapted when ``in_channels`` differs).

    With ``encode``, ``encoder_state_dict`` and the class attributes below it is an
    :class:`~semantic_genesis.models.backbone.Encoder`; :class:`UNet3D` adds the decoder of a
    :class:`~semantic_genesis.models.backbone.Backbone` (class attributes: no state-dict key).
    """

    first_conv = "down_tr64.ops.0.conv1"
    backbone_name = "reference"
    encoder_prefixes = ENCODER_PREFIXES
    size_multiple = 8  # three poolings

    def __init__(
        self, in_channels: int = 1, width: int = 32, norm: str = "batch", spatial_dims: int = 3
    ) -> None:
        super().__init__()
        if width < 1 or in_channels < 1:
            raise SemgenError(f"width and in_channels must be positive, got {width}, {in_channels}")
        self.in_channels, self.width, self.norm = in_channels, width, norm
        self.spatial_dims = spatial_dims
        w = width
        kw = {"norm": norm, "spatial_dims": spatial_dims}
        self.down_tr64 = DownTransition(in_channels, 2 * w, **kw)
        self.down_tr128 = DownTransition(2 * w, 4 * w, **kw)
        self.down_tr256 = DownTransition(4 * w, 8 * w, **kw)
        self.down_tr512 = DownTransition(8 * w, 16 * w, pool=False, **kw)
        self.bottleneck_channels = 16 * w
        self.skip_channels = (2 * w, 4 * w, 8 * w)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Run the encoder only: ``(bottleneck, (skip64, skip128, skip256))``.

        The skips are the features before pooling, shallow (full resolution) to deep; the
        bottleneck (``out512`` in the reference) is at 1/8 of the input size.
        """
        x, skip64 = self.down_tr64(x)
        x, skip128 = self.down_tr128(x)
        x, skip256 = self.down_tr256(x)
        _, bottleneck = self.down_tr512(x)
        return bottleneck, (skip64, skip128, skip256)

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per part: ``encoder``, ``decoder``, ``head``, ``total``."""
        from semantic_genesis.models.backbone import parameter_counts

        return parameter_counts(self)

    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """The encoder's weights only (``down_tr*``), e.g. for classification transfer."""
        return {k: v for k, v in self.state_dict().items() if k.startswith(ENCODER_PREFIXES)}


class UNet3D(Encoder3D):
    """The reference U-Net: ``forward(x) -> (N, out_channels, *x.shape[2:])`` logits."""

    decoder_prefixes = DECODER_PREFIXES
    output_prefix = "out_tr."

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        width: int = 32,
        norm: str = "batch",
        spatial_dims: int = 3,
    ) -> None:
        super().__init__(in_channels, width, norm, spatial_dims)
        if out_channels < 1:
            raise SemgenError(f"out_channels must be at least 1, got {out_channels}")
        w = width
        kw = {"norm": norm, "spatial_dims": spatial_dims}
        self.up_tr256 = UpTransition(16 * w, 8 * w, 8 * w, **kw)
        self.up_tr128 = UpTransition(8 * w, 4 * w, 4 * w, **kw)
        self.up_tr64 = UpTransition(4 * w, 2 * w, 2 * w, **kw)
        self.out_tr = OutputTransition(2 * w, out_channels, spatial_dims)
        self.out_channels = out_channels

    def decode(self, bottleneck: torch.Tensor, skips: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Decoder and output conv: segmentation / restoration logits."""
        skip64, skip128, skip256 = skips
        x = self.up_tr256(bottleneck, skip256)
        x = self.up_tr128(x, skip128)
        x = self.up_tr64(x, skip64)
        return self.out_tr(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(*self.encode(x))


class YNet3D(UNet3D):
    """U-Net plus a classification head ``clc_out`` on the bottleneck (Semantic Genesis).

    ``forward(x) -> (seg_logits, cls_logits)``: restoration (self-restoration) and pattern-class
    (self-classification) logits.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        n_classes: int = 44,
        width: int = 32,
        norm: str = "batch",
        head: str = "torch",
        spatial_dims: int = 3,
    ) -> None:
        super().__init__(in_channels, out_channels, width, norm, spatial_dims)
        self.clc_out = ClassificationHead(
            self.bottleneck_channels, n_classes, head, norm, spatial_dims
        )
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bottleneck, skips = self.encode(x)
        return self.decode(bottleneck, skips), self.clc_out(bottleneck)


class EncoderClassifier(Encoder3D):
    """Encoder plus ``clc_out`` (the reference ``ClassificationNet3D``, ``--exp en``): classify
    a cube without ever running a decoder. ``forward(x) -> (N, n_classes)`` logits.

    Use ``head="mlp"`` for the fine-tuning head (GAP, FC 1024, ReLU, FC n; method.md §12.7).
    With ``n_classes=0`` there is no head and ``forward`` returns the globally average-pooled
    bottleneck ``(N, bottleneck_channels)``, a feature extractor (as timm's ``num_classes=0``).
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 44,
        width: int = 32,
        norm: str = "batch",
        head: str = "torch",
        spatial_dims: int = 3,
    ) -> None:
        super().__init__(in_channels, width, norm, spatial_dims)
        if n_classes < 0:
            raise SemgenError(f"n_classes must be 0 (no head) or more, got {n_classes}")
        self.clc_out = (
            ClassificationHead(self.bottleneck_channels, n_classes, head, norm, spatial_dims)
            if n_classes > 0
            else None
        )
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bottleneck = self.encode(x)[0]
        if self.clc_out is None:
            return bottleneck.flatten(2).mean(dim=2)
        return self.clc_out(bottleneck)
