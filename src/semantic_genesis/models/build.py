"""Build the built-in architectures, guess them from weights, check their size before building.

A model card (or a typo) can ask for a network far larger than the machine: ``width=100000`` is
hundreds of billions of parameters, and building it would take all the memory before failing
somewhere deep inside torch. :func:`check_fits` builds the network on PyTorch's ``meta`` device
(shapes only, no memory, milliseconds), counts its parameters and buffers, and refuses with one
line when they would not fit in the memory available now (``psutil``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import torch
from torch import nn

from semantic_genesis.models.unet import HEAD_PREFIX, EncoderClassifier, UNet3D, YNet3D
from semantic_genesis.utils.errors import SemgenError

_BUILTIN = re.compile(r"^(unet|ynet|encoder)([23])d$")


def build_architecture(
    kind: str,
    spatial_dims: int,
    in_channels: int,
    n_classes: int,
    width: int,
    norm: str,
    head: str,
    out_channels: int,
    **kw: Any,
) -> nn.Module:
    """The built-in network ``kind`` (``unet``, ``ynet``, ``encoder``) in 2 or 3 dimensions."""
    if kind == "unet":
        return UNet3D(in_channels, out_channels, width, norm, spatial_dims, **kw)
    if kind == "ynet":
        return YNet3D(in_channels, out_channels, n_classes, width, norm, head, spatial_dims, **kw)
    return EncoderClassifier(in_channels, n_classes, width, norm, head, spatial_dims, **kw)


def builtin_builder(name: str, **kwargs: Any) -> Callable[[], nn.Module] | None:
    """A function building the built-in architecture ``name`` (e.g. ``ynet3d``) with ``kwargs``,
    or None when ``name`` is not a built-in one."""
    match = _BUILTIN.match(str(name))
    if match is None:
        return None
    kind, dims = match.group(1), int(match.group(2))
    return lambda: build_architecture(kind, dims, **kwargs)


def network_bytes(build: Callable[[], nn.Module]) -> tuple[int, int]:
    """(number of parameter and buffer values, bytes as float32) of the network ``build``
    makes, counted on the ``meta`` device without allocating it."""
    with torch.device("meta"):
        model = build()
    values = sum(t.numel() for t in (*model.parameters(), *model.buffers()))
    return values, 4 * values


def check_fits(build: Callable[[], nn.Module], what: str, path: str | Path | None = None) -> None:
    """Refuse, before it is built, a network with no parameters or one whose float32 weights
    alone exceed the memory available now.

    Args:
        build: makes the network (called once on the ``meta`` device).
        what: names the request in the message, e.g. ``"model card: ynet3d width=100000"``.
        path: the file the request came from, if any.
    """
    values, nbytes = network_bytes(build)
    if values <= 0:
        raise SemgenError(f"{what}: the network would have no parameters", path)
    available = psutil.virtual_memory().available
    if nbytes > available:
        raise SemgenError(
            f"{what}: the network would hold {values:,} values ({nbytes / 1e9:,.1f} GB as "
            f"float32), more than the {available / 1e9:,.1f} GB of memory available",
            path,
        )


def guess_model_kwargs(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Guess ``create_model`` arguments from reference-named weights (for files with no card).

    Raises:
        SemgenError: the keys are not those of the reference U-Net family.
    """
    first = state.get("down_tr64.ops.0.conv1.weight")
    if first is None:
        raise SemgenError(
            "cannot tell the architecture: no 'down_tr64.ops.0.conv1.weight' key "
            "(not a reference U-Net / YNet state dict); pass --arch"
        )
    dims = first.dim() - 2
    has_decoder = "out_tr.final_conv.weight" in state
    has_head = any(k.startswith(HEAD_PREFIX) for k in state)
    kind = "ynet" if has_decoder and has_head else "unet" if has_decoder else "encoder"
    kwargs: dict[str, Any] = {
        "name": f"{kind}{dims}d",
        "width": first.shape[0],
        "in_channels": first.shape[1],
        "norm": "batch" if "down_tr64.ops.0.bn1.running_mean" in state else "instance",
    }
    if has_decoder:
        kwargs["out_channels"] = state["out_tr.final_conv.weight"].shape[0]
    if has_head:
        has_conv = "clc_out.conv1.weight" in state
        has_fc2 = "clc_out.fc2.weight" in state
        kwargs["head"] = "keras" if has_conv and has_fc2 else "torch" if has_conv else "mlp"
        last = state.get("clc_out.fc2.weight" if has_fc2 else "clc_out.fc1.weight")
        if last is not None:
            kwargs["n_classes"] = last.shape[0]
    return kwargs
