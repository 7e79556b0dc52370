"""nnU-Net v2's own network as a backbone (family ``nnunet``), built from a plans file.

nnU-Net builds its network in ``nnUNetTrainer.build_network_architecture``: it reads the
configuration's ``architecture`` entry of the plans (class name, e.g.
``dynamic_network_architectures.architectures.unet.PlainConvUNet`` or ``ResidualEncoderUNet``,
and its keyword arguments: stages, features per stage, kernel sizes, strides ...) through
``PlansManager`` / ``ConfigurationManager`` and calls ``get_network_from_plans``.
:func:`build_nnunet_network` makes exactly that call (nnU-Net's own code, He initialisation
included), so the network pre-trained here is the network ``nnUNetv2_train`` builds from the
same plans, key for key (method.md §7.4).

:class:`NnUNetBackbone` keeps that network's ``encoder`` and ``decoder`` as its own
submodules, so its state-dict keys are nnU-Net's (``encoder.stages...``, ``decoder.stages...``,
``decoder.encoder...``, ``decoder.seg_layers...``) plus the classification head ``clc_out`` of
the ``ynet`` role:

- ``encode(x)`` runs nnU-Net's encoder: the deepest stage is the bottleneck (where the
  self-classification head sits), the others are the skips.
- ``decode`` runs nnU-Net's decoder with deep supervision off: the last ``seg_layers`` conv
  gives ``out_channels`` (1 for restoration) logits at full resolution.

Axis order: our volumes are ``(x, y, z)`` (io/volume.py); nnU-Net's arrays are SimpleITK's
``(z, y, x)`` transposed by the plans' ``transpose_forward``. ``encode`` permutes the input into
nnU-Net's order and ``decode`` permutes the output back, so every kernel (anisotropic ones
included, e.g. ``[1, 3, 3]`` for thick slices) is pre-trained on the axis it will see in nnU-Net.

nnU-Net is an optional extra (``pip install 'semantic-genesis[nnunet]'``); it is imported only
when a network is built.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from copy import deepcopy
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from semantic_genesis.models.backbone import parameter_counts, role_forward
from semantic_genesis.models.heads import ClassificationHead
from semantic_genesis.utils.errors import SemgenError

NNUNET_HINT = "the nnunet backbone needs nnU-Net v2: pip install 'semantic-genesis[nnunet]'"
#: the configuration used when none is named (nnU-Net's 3D full-resolution U-Net)
DEFAULT_CONFIGURATION = "3d_fullres"
_ENCODER = ("encoder.",)
_DECODER = ("decoder.",)
_OUTPUT = "decoder.seg_layers."


def read_plans(plans: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """The plans as a dict: a mapping is copied, a path is read as JSON.

    Raises:
        SemgenError: a missing or unreadable file, not JSON, or no ``configurations`` mapping.
    """
    if isinstance(plans, Mapping):
        data, source = deepcopy(dict(plans)), None
    else:
        source = str(plans)
        try:
            data = json.loads(Path(plans).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SemgenError("plans file not found", source) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SemgenError(f"not a readable nnU-Net plans file (JSON): {exc}", source) from None
    if not isinstance(data, dict) or not isinstance(data.get("configurations"), dict):
        raise SemgenError("not an nnU-Net plans file: no 'configurations' mapping", source)
    return data


def configuration_of(plans: Mapping[str, Any], configuration: str) -> dict[str, Any]:
    """The configuration ``configuration`` of ``plans`` as nnU-Net resolves it (its
    ``inherits_from`` chain merged by ``PlansManager.get_configuration``).

    Raises:
        SemgenError: nnU-Net is not installed, the configuration is not in the plans, or it is
            not a 3D configuration with an ``architecture`` entry.
    """
    try:
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager
    except ImportError:
        raise SemgenError(NNUNET_HINT) from None
    names = list(plans["configurations"])
    if configuration not in names:
        raise SemgenError(f"plans have no configuration {configuration!r}; they have "
                          f"{', '.join(names)}")
    resolved = PlansManager(dict(plans)).get_configuration(configuration).configuration
    arch = resolved.get("architecture")
    if not isinstance(arch, dict) or "arch_kwargs" not in arch:
        raise SemgenError(f"plans configuration {configuration!r} has no 'architecture' entry "
                          "(plans of nnU-Net before 2.4: re-run nnUNetv2_plan_experiment)")
    if len(resolved.get("patch_size", ())) != 3:
        raise SemgenError(f"plans configuration {configuration!r} is not 3D (patch size "
                          f"{resolved.get('patch_size')}); name a 3D one, e.g. 3d_fullres")
    return resolved


def build_nnunet_network(
    plans: Mapping[str, Any],
    configuration: str,
    in_channels: int,
    out_channels: int,
    deep_supervision: bool = False,
) -> nn.Module:
    """The network ``nnUNetTrainer.build_network_architecture`` builds: nnU-Net's
    ``get_network_from_plans`` on the configuration's architecture entry, initialised."""
    try:
        from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    except ImportError:
        raise SemgenError(NNUNET_HINT) from None
    arch = configuration_of(plans, configuration)["architecture"]
    return get_network_from_plans(
        arch["network_class_name"], arch["arch_kwargs"], arch["_kw_requires_import"],
        in_channels, out_channels, allow_init=True, deep_supervision=deep_supervision,
    )


def axis_order(plans: Mapping[str, Any]) -> tuple[int, ...]:
    """Spatial permutation taking our ``(x, y, z)`` to nnU-Net's array axes: SimpleITK's
    ``(z, y, x)`` transposed by ``transpose_forward`` (``(2, 1, 0)`` when it is the identity)."""
    forward = plans.get("transpose_forward", [0, 1, 2])
    if sorted(forward) != [0, 1, 2]:
        raise SemgenError(f"plans transpose_forward {forward} is not a permutation of 0, 1, 2")
    return tuple(2 - int(t) for t in forward)


class NnUNetBackbone(nn.Module):
    """nnU-Net's network (from plans) split into ``encode`` / ``decode``: a ``Backbone``.

    Args:
        role: ``unet`` (``forward`` gives ``(N, out_channels, x, y, z)`` logits), ``ynet``
            (plus the head ``clc_out`` on the deepest stage: ``(seg, cls)``) or ``encoder``
            (no decoder; the head's logits, or the pooled bottleneck when ``n_classes`` is 0).
        plans: an nnU-Net plans file (``nnUNetPlans.json``) or its dict.
        configuration: the plans configuration (default ``3d_fullres``).
        in_channels, out_channels: input channels and output (restoration) channels.
        n_classes, head, norm: the classification head (``norm`` is the head's only: the
            network's normalisation is the plans' ``norm_op``).
        width: not used (the plans fix the features); ``self.width`` is the first stage's.
    """

    backbone_name = "nnunet"
    encoder_prefixes = _ENCODER
    decoder_prefixes = _DECODER
    output_prefix = _OUTPUT
    spatial_dims = 3

    def __init__(
        self,
        role: str = "unet",
        plans: str | Path | Mapping[str, Any] | None = None,
        configuration: str = DEFAULT_CONFIGURATION,
        in_channels: int = 1,
        out_channels: int = 1,
        n_classes: int = 0,
        width: int = 32,
        norm: str = "batch",
        head: str = "torch",
    ) -> None:
        super().__init__()
        if plans is None:
            raise SemgenError(
                "the nnunet backbone is built from an nnU-Net plans file: pass --plans "
                "nnUNetPlans.json to semgen pretrain (create_model(..., plans=PATH)); fine-tune "
                "it in nnU-Net (semgen export --nnunet, README)")
        if role not in ("unet", "ynet", "encoder"):
            raise SemgenError(f"nnunet: unknown role {role!r}")
        if role == "ynet" and n_classes < 1:
            raise SemgenError("nnunet-ynet needs n_classes of at least 1")
        self.plans, self.configuration = read_plans(plans), configuration
        network = build_nnunet_network(self.plans, configuration, in_channels, out_channels)
        self.encoder = network.encoder
        if role != "encoder":
            self.decoder = network.decoder
        self.role, self.norm = role, norm
        self.in_channels, self.out_channels = in_channels, out_channels
        self.network_class = type(network).__name__
        features = list(self.encoder.output_channels)
        self.width, self.bottleneck_channels = int(features[0]), int(features[-1])
        self._axes = axis_order(self.plans)
        self.axis_multiples = self._multiples()
        self.size_multiple = math.lcm(*self.axis_multiples)
        has_head = role == "ynet" or (role == "encoder" and n_classes > 0)
        self.n_classes = n_classes if has_head else 0
        self.clc_out = (
            ClassificationHead(self.bottleneck_channels, n_classes, head, norm) if has_head else None
        )

    def _multiples(self) -> tuple[int, ...]:
        """Per axis of ``(x, y, z)``: the product of the strides on the nnU-Net axis it becomes."""
        strides = [[s] * 3 if isinstance(s, int) else list(s) for s in self.encoder.strides]
        products = [math.prod(int(s[i]) for s in strides) for i in range(3)]
        return tuple(products[self._axes.index(a)] for a in range(3))

    def card_kwargs(self) -> dict[str, Any]:
        """What ``create_model`` needs besides the model card's fields (plain types): the plans
        and configuration. Pre-training stores them in the card's ``notes["model_kwargs"]``
        (``models.registry.CARD_KWARGS``), where ``load_model`` finds them."""
        return {"plans": deepcopy(self.plans), "configuration": self.configuration}

    def _to_nnunet(self, x: Tensor) -> Tensor:
        return x.permute(0, 1, *(2 + a for a in self._axes))

    def _from_nnunet(self, x: Tensor) -> Tensor:
        back = [self._axes.index(a) for a in range(3)]
        return x.permute(0, 1, *(2 + a for a in back))

    def encode(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        """nnU-Net's encoder on ``x`` (``(N, C, x, y, z)``): ``(deepest stage, other stages)``,
        in nnU-Net's axis order."""
        size = tuple(x.shape[2:])
        if not torch.jit.is_tracing() and any(
            s % m for s, m in zip(size, self.axis_multiples, strict=True)
        ):
            raise SemgenError(
                f"input size {size}: this nnU-Net network needs sizes that are multiples of "
                f"{self.axis_multiples} (its strides)"
            )
        stages = self.encoder(self._to_nnunet(x))
        return stages[-1], tuple(stages[:-1])

    def decode(self, bottleneck: Tensor, skips: tuple[Tensor, ...]) -> Tensor:
        """nnU-Net's decoder (deep supervision off): ``(N, out_channels, x, y, z)`` logits."""
        return self._from_nnunet(self.decoder([*skips, bottleneck]))

    def encoder_state_dict(self) -> dict[str, Tensor]:
        """The encoder's weights only (``encoder.*``)."""
        return {k: v for k, v in self.state_dict().items() if k.startswith(_ENCODER)}

    def nnunet_state_dict(self) -> dict[str, Tensor]:
        """The weights keyed exactly as nnU-Net's network (no ``clc_out``)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("clc_out.")}

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per part: ``encoder``, ``decoder``, ``head``, ``total``."""
        return parameter_counts(self)

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        return role_forward(self, x)


class NnUNetEncoder(NnUNetBackbone):
    """The ``encoder`` role: nnU-Net's encoder and a head, no decoder. An ``Encoder``."""

    decode = None  # type: ignore[assignment]
    decoder_prefixes = ()

    def __init__(self, role: str = "encoder", **kw: Any) -> None:
        super().__init__(role="encoder", **kw)
