"""The ``Backbone`` protocol: what pre-training and fine-tuning need from a network.

Pre-training and fine-tuning never look inside a network. They call ``encode`` (the deepest
encoder map, where the classification and rotation heads sit, plus the skips), ``decode``
(full-resolution logits, for restoration and segmentation) and read three channel counts. Any
``nn.Module`` with these members is a backbone; the reference U-Net (``unet.py``) and the MONAI
adapters (``monai_backbones.py``) are two.

A *backbone family* is registered under one name (``reference``, ``monai-basicunet``, ...) and
has up to three registry entries, one per role:

- ``unet``: encoder + decoder (restoration pre-training, segmentation fine-tuning);
- ``ynet``: the same plus a classification head ``clc_out`` on the bottleneck (pre-training with
  semantics);
- ``encoder``: encoder + head, no decoder (classification fine-tuning).

:func:`~semantic_genesis.models.registry.build_backbone` turns a family name into the network
pre-training trains; the model card records the family (``ModelCard.backbone``), so fine-tuning rebuilds the same one and refuses a
checkpoint of another family.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from torch import Tensor, nn

from semantic_genesis.models.names import REFERENCE, ROLES
from semantic_genesis.utils.errors import SemgenError

__all__ = [
    "REFERENCE", "ROLES", "Backbone", "Encoder", "check_input_size", "parameter_counts",
]


@runtime_checkable
class Encoder(Protocol):
    """A network whose encoder can be run alone (what classification fine-tuning needs).

    Attributes:
        in_channels: input channels.
        bottleneck_channels: channels of the deepest encoder map, where heads attach.
        encoder_prefixes: state-dict key prefixes of the encoder (what a classification
            fine-tuning must find in a pre-trained checkpoint).
        size_multiple: every spatial input size must be a multiple of this (2 ** poolings).
    """

    in_channels: int
    bottleneck_channels: int
    encoder_prefixes: tuple[str, ...]
    size_multiple: int

    def encode(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        """``(bottleneck, skips)``: the deepest map and the skip maps, shallow to deep."""
        ...

    def encoder_state_dict(self) -> dict[str, Tensor]:
        """The encoder's weights only (keys starting with ``encoder_prefixes``)."""
        ...


@runtime_checkable
class Backbone(Encoder, Protocol):
    """An :class:`Encoder` with a decoder: what pre-training and segmentation need.

    Attributes:
        out_channels: channels of the decoder output (restoration / segmentation logits).
        decoder_prefixes: state-dict key prefixes of the decoder, output layer included.
        output_prefix: key prefix of the last (1x1) output layer, re-initialised when the
            number of outputs changes and the only layer a segmentation linear probe trains.
    """

    out_channels: int
    decoder_prefixes: tuple[str, ...]
    output_prefix: str

    def decode(self, bottleneck: Tensor, skips: tuple[Tensor, ...]) -> Tensor:
        """Full-resolution output logits ``(N, out_channels, *input size)``."""
        ...


def role_forward(model: nn.Module, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
    """The forward of a backbone wrapper with a ``role`` and an optional ``clc_out`` head:
    ``encoder`` gives the head's logits (or, without a head, the pooled deepest map); the
    other roles give the decoder's output, paired with the head's logits when there is a head
    (the reference YNet3D's ``(segmentation, classes)``)."""
    bottleneck, skips = model.encode(x)
    if model.role == "encoder":
        if model.clc_out is None:
            return bottleneck.flatten(2).mean(dim=2)
        return model.clc_out(bottleneck)
    seg = model.decode(bottleneck, skips)
    return (seg, model.clc_out(bottleneck)) if model.clc_out is not None else seg


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Trainable parameters per part of an :class:`Encoder` / :class:`Backbone`: ``encoder``,
    ``decoder``, ``head`` (everything else) and ``total``, split by the key prefixes."""
    encoder = tuple(model.encoder_prefixes)
    decoder = tuple(getattr(model, "decoder_prefixes", ()))
    counts = {"encoder": 0, "decoder": 0, "head": 0, "total": 0}
    for name, p in model.named_parameters():
        part = "encoder" if name.startswith(encoder) else (
            "decoder" if name.startswith(decoder) else "head")
        counts[part] += p.numel()
        counts["total"] += p.numel()
    return counts


def check_input_size(
    network: nn.Module | int, size: Sequence[int], what: str = "patch", path: str | None = None
) -> None:
    """Refuse a spatial ``size`` that the network's poolings cannot halve evenly.

    Args:
        network: a backbone (its ``size_multiple``) or the multiple itself.
        size: the spatial size, e.g. a patch ``(64, 64, 32)``.
        what: names the size in the message (``patch``, ``input`` ...).
        path: the file the size came from, if any.
    """
    multiple = network if isinstance(network, int) else getattr(network, "size_multiple", 1)
    shape = tuple(int(s) for s in size)
    if any(s < multiple or s % multiple for s in shape):
        name = getattr(network, "backbone_name", "the network")
        raise SemgenError(
            f"{what} {shape}: {name} needs every size to be a multiple of {multiple} "
            f"(it halves the input {multiple.bit_length() - 1} times)",
            path,
        )
