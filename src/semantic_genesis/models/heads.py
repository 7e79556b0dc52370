"""Classification heads that sit on the encoder bottleneck (method.md §4.1, §4.2, §12.7).

All heads return logits: the reference's softmax (and the README's ReLU-then-sigmoid, bug
§9.23) belong in the loss or in ``predict``, never in the module.
"""

from __future__ import annotations

import numbers

import torch
from torch import nn

from semantic_genesis.models.blocks import conv_type, make_norm
from semantic_genesis.models.names import HEADS
from semantic_genesis.utils.errors import SemgenError


class ClassificationHead(nn.Module):
    """A head on the ``(N, C, *spatial)`` bottleneck, returning ``(N, n_classes)`` logits.

    Kinds (``C`` = ``in_channels``, 512 at the reference width):

    - ``torch``: the reference PyTorch ``clc_out`` — conv k3 ``C→2C`` (512→1024), norm, ReLU,
      global average pooling, linear ``2C→n`` (14.2 M parameters for 44 classes). Parameter
      names ``conv1``, ``bn1``, ``fc1`` as in the released weights.
    - ``keras``: the reference Keras head — conv block with ``C`` filters, global average
      pooling, dense ``C→2C`` (1024) + ReLU, dense ``2C→n`` (7.65 M parameters); names
      ``conv1``, ``bn1``, ``fc1``, ``fc2``.
    - ``mlp``: the fine-tuning head of the Models Genesis README — global average pooling, dense
      ``C→2C`` + ReLU, dense ``2C→n``; names ``fc1``, ``fc2``.
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        kind: str = "torch",
        norm: str = "batch",
        spatial_dims: int = 3,
    ) -> None:
        super().__init__()
        if kind not in HEADS:
            raise SemgenError(f"unknown head {kind!r}; choose one of {', '.join(HEADS)}")
        if not isinstance(n_classes, numbers.Integral) or n_classes < 1:
            raise SemgenError(f"a head needs n_classes of at least 1, got {n_classes!r}")
        self.kind = kind
        hidden = 2 * in_channels
        if kind in ("torch", "keras"):
            conv_out = hidden if kind == "torch" else in_channels
            self.conv1 = conv_type(spatial_dims)(in_channels, conv_out, kernel_size=3, padding=1)
            self.bn1 = make_norm(norm, conv_out, spatial_dims)
            self.relu = nn.ReLU(inplace=True)
        else:
            conv_out = in_channels
        self.fc1 = nn.Linear(conv_out, hidden if kind != "torch" else n_classes)
        if kind != "torch":
            self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind != "mlp":
            x = self.relu(self.bn1(self.conv1(x)))
        x = x.flatten(2).mean(dim=2)  # global average pooling, any number of spatial dims
        x = self.fc1(x)
        if self.kind != "torch":
            x = self.fc2(torch.relu(x))
        return x
