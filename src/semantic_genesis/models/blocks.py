"""Building blocks of the reference 3D U-Net (Models Genesis / Semantic Genesis, method.md §4.1).

Module and attribute names (``ops``, ``conv1``, ``bn1``, ``up_conv``, ``final_conv``) are those of
the reference ``pytorch/models/ynet3d.py``, so released state dicts load key for key.

Every block takes ``spatial_dims`` (3 by default; 2 gives the same network on images) and a
``norm`` name resolved by :func:`make_norm`. All norms with affine parameters keep the names
``bn1.weight`` / ``bn1.bias``, so weights move between norms wherever the shapes allow.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from semantic_genesis.models.names import NORMS
from semantic_genesis.utils.errors import SemgenError

#: Groups of ``norm="group"`` (MONAI's SegResNet default; small 3D batches favour few groups).
GROUP_NORM_GROUPS = 8


class ContBatchNorm(nn.modules.batchnorm._BatchNorm):
    """The reference ``ContBatchNorm3d``: always normalises with the *batch* statistics.

    The reference passes ``training=True`` to ``F.batch_norm`` unconditionally, so even under
    ``model.eval()`` the output depends on the batch (method.md §4.1, bug §9.16). Use it
    (``norm="batch_always"``) to reproduce the released weights' outputs exactly. Unlike the
    reference, the running statistics are only updated in training mode: outputs are identical,
    but evaluating a model no longer changes its buffers.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 3:
            raise ValueError(f"expected an (N, C, *spatial) input, got {input.dim()}D")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        track = self.training and self.track_running_stats
        if track and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
        return F.batch_norm(
            input,
            self.running_mean if track else None,
            self.running_var if track else None,
            self.weight,
            self.bias,
            True,
            self.momentum,
            self.eps,
        )


#: Kept for readers of the reference code.
ContBatchNorm3d = ContBatchNorm


def _by_dims(spatial_dims: int, name: str) -> type[nn.Module]:
    if spatial_dims not in (2, 3):
        raise SemgenError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
    return getattr(nn, f"{name}{spatial_dims}d")


def conv_type(spatial_dims: int = 3) -> type[nn.Module]:
    """``nn.Conv3d`` or ``nn.Conv2d``."""
    return _by_dims(spatial_dims, "Conv")


def make_norm(norm: str, channels: int, spatial_dims: int = 3) -> nn.Module:
    """A normalisation layer by name.

    - ``batch``: standard BatchNorm (the default). Fine-tuning and inference run in eval mode
      with the stored running statistics, so a prediction does not depend on what else is in
      the batch; the released weights carry running statistics, so they load into it directly.
    - ``batch_always``: :class:`ContBatchNorm`, the reference behaviour, for exact reproduction.
    - ``instance``: InstanceNorm with affine parameters (no running statistics).
    - ``group``: GroupNorm with :data:`GROUP_NORM_GROUPS` groups (fewer if ``channels`` is not
      divisible).
    """
    if norm == "batch":
        return _by_dims(spatial_dims, "BatchNorm")(channels)
    if norm == "batch_always":
        return ContBatchNorm(channels)
    if norm == "instance":
        return _by_dims(spatial_dims, "InstanceNorm")(channels, affine=True)
    if norm == "group":
        return nn.GroupNorm(math.gcd(channels, GROUP_NORM_GROUPS), channels)
    raise SemgenError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")


class LUConv(nn.Module):
    """Conv k3 p1 (with bias), normalisation, ReLU: the reference ``LUConv``."""

    def __init__(
        self, in_channels: int, out_channels: int, norm: str = "batch", spatial_dims: int = 3
    ) -> None:
        super().__init__()
        self.conv1 = conv_type(spatial_dims)(in_channels, out_channels, kernel_size=3, padding=1)
        self.bn1 = make_norm(norm, out_channels, spatial_dims)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.bn1(self.conv1(x)))


def _two_convs(
    in_channels: int, mid_channels: int, out_channels: int, norm: str, spatial_dims: int
) -> nn.Sequential:
    return nn.Sequential(
        LUConv(in_channels, mid_channels, norm, spatial_dims),
        LUConv(mid_channels, out_channels, norm, spatial_dims),
    )


class DownTransition(nn.Module):
    """Two LUConvs (``in→out/2→out``), then 2x max-pooling unless this is the deepest level.

    Returns ``(pooled, before_pool)``; ``before_pool`` is the skip feature (or the bottleneck).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        pool: bool = True,
        norm: str = "batch",
        spatial_dims: int = 3,
    ) -> None:
        super().__init__()
        self.ops = _two_convs(in_channels, out_channels // 2, out_channels, norm, spatial_dims)
        self.maxpool = _by_dims(spatial_dims, "MaxPool")(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.ops(x)
        return self.maxpool(skip), skip


class UpTransition(nn.Module):
    """Transposed conv k2 s2 (channel count kept), concatenation ``[up, skip]``, two LUConvs.

    ``in_channels`` is the deeper feature's width; the skip has ``in_channels // 2`` channels and
    the output ``out_channels`` (method.md §4.1: e.g. 512 → up 512, concat 768, 256, 256).
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        norm: str = "batch",
        spatial_dims: int = 3,
    ) -> None:
        super().__init__()
        self.up_conv = _by_dims(spatial_dims, "ConvTranspose")(
            in_channels, in_channels, kernel_size=2, stride=2
        )
        self.ops = _two_convs(
            in_channels + skip_channels, out_channels, out_channels, norm, spatial_dims
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.ops(torch.cat((self.up_conv(x), skip), dim=1))


class OutputTransition(nn.Module):
    """1x1 convolution to the output channels. Returns logits: the reference's sigmoid belongs in
    the loss (``BCEWithLogits`` or ``sigmoid`` + MSE) and in ``predict``."""

    def __init__(self, in_channels: int, out_channels: int, spatial_dims: int = 3) -> None:
        super().__init__()
        self.final_conv = conv_type(spatial_dims)(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_conv(x)
