"""Read the official Keras ``.h5`` weights (Models Genesis / Semantic Genesis) without TensorFlow.

Keras 2 stores a layer's weights in HDF5 as ``<root>/<layer>/<weight name>`` where ``<root>`` is
``model_weights`` for a full model (``model.save`` / ``ModelCheckpoint``) or the file root for
``save_weights``; the root's ``layer_names`` attribute lists the layers and each layer's
``weight_names`` attribute its datasets (e.g. ``depth_0_conv/kernel:0``).

Layer names of the reference ``unet_model_3d`` / ``ynet_model_3d`` (method.md §4.2, §6):
``depth_{i}_conv`` / ``depth_{i}_bn`` with i = 0..7 for the encoder (two per level) and 8..13
for the decoder, ``final_conv`` for the output, ``depth_14_*``, ``cls_fc``, ``cls_output`` for
the Keras head. Conversion: conv kernels ``(kx, ky, kz, in, out) → (out, in, kx, ky, kz)``,
dense kernels ``(in, out) → (out, in)``, BN ``gamma/beta/moving_mean/moving_variance →
weight/bias/running_mean/running_var``. The Keras decoder up-samples with ``UpSampling3D`` (no
weights); our transposed convs are set to exact nearest-neighbour up-sampling and reported as
adapted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semantic_genesis.utils.errors import SemgenError

_ENCODER = ("down_tr64", "down_tr128", "down_tr256", "down_tr512")
_DECODER = ("up_tr256", "up_tr128", "up_tr64")
_BN_NAMES = {
    "gamma": "weight",
    "beta": "bias",
    "moving_mean": "running_mean",
    "moving_variance": "running_var",
}
_PARAM_NAMES = {"kernel": "weight", "bias": "bias", **_BN_NAMES}


def keras_layer_map() -> dict[str, str]:
    """Keras layer name -> PyTorch module name (reference U-Net / YNet, both frameworks)."""
    mapping: dict[str, str] = {}
    for i in range(14):
        block = (
            f"{_ENCODER[i // 2]}.ops.{i % 2}"
            if i < 8
            else f"{_DECODER[(i - 8) // 2]}.ops.{(i - 8) % 2}"
        )
        mapping[f"depth_{i}_conv"] = f"{block}.conv1"
        mapping[f"depth_{i}_bn"] = f"{block}.bn1"
    mapping.update(
        {
            "final_conv": "out_tr.final_conv",
            "depth_14_conv": "clc_out.conv1",
            "depth_14_bn": "clc_out.bn1",
            "cls_fc": "clc_out.fc1",
            "cls_output": "clc_out.fc2",
        }
    )
    return mapping


def _names(attr: Any) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in attr]


def _layer_weights(group: Any) -> dict[str, np.ndarray]:
    """``{'kernel': array, 'bias': array, ...}`` for one layer group."""
    import h5py

    if "weight_names" in group.attrs:
        names = _names(group.attrs["weight_names"])
        datasets = [(n, group[n]) for n in names if n in group]
    else:
        datasets = []
        group.visititems(
            lambda n, obj: datasets.append((n, obj)) if isinstance(obj, h5py.Dataset) else None
        )
    return {n.split("/")[-1].split(":")[0]: np.asarray(d[()]) for n, d in datasets}


def _convert(param: str, array: np.ndarray) -> torch.Tensor:
    if param == "kernel":  # channels-last kernel -> (out, in, *spatial)
        nd = array.ndim
        array = array.transpose(nd - 1, nd - 2, *range(nd - 2)) if nd > 2 else array.T
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _bn_epsilons(f: Any) -> set[float]:
    """Epsilons of the BatchNormalization layers, from the stored model config if any."""
    raw = f.attrs.get("model_config")
    if raw is None:
        return set()
    try:
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (ValueError, AttributeError):
        return set()
    layers = config.get("config", {}).get("layers", []) if isinstance(config, dict) else []
    return {
        float(layer["config"]["epsilon"])
        for layer in layers
        if layer.get("class_name") == "BatchNormalization" and "epsilon" in layer.get("config", {})
    }


def _nearest_upsampling(channels: int, spatial_dims: int) -> torch.Tensor:
    """Transposed-conv (k2 s2) weight that equals nearest-neighbour 2x up-sampling."""
    weight = torch.zeros((channels, channels) + (2,) * spatial_dims)
    weight[torch.arange(channels), torch.arange(channels)] = 1.0
    return weight


def read_keras_h5(
    path: str | Path,
) -> tuple[dict[str, torch.Tensor], list[str], list[tuple[str, str]], dict[str, str]]:
    """Convert a Keras 2 ``.h5`` file to reference PyTorch names.

    Returns:
        ``(state_dict, notes, dropped, adapted)``: ``dropped`` lists Keras layers with weights
        but no PyTorch counterpart, ``adapted`` the keys made up rather than copied.

    Raises:
        SemgenError: not an HDF5 file, or no reference layer in it.
    """
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise SemgenError(f"not a readable HDF5 (Keras .h5) file ({exc})", path) from None
    mapping = keras_layer_map()
    state: dict[str, torch.Tensor] = {}
    dropped: list[tuple[str, str]] = []
    with f:
        root = f.get("model_weights", f)
        layers = (
            _names(root.attrs["layer_names"])
            if "layer_names" in root.attrs
            else [k for k in root if isinstance(root[k], h5py.Group)]
        )
        for layer in layers:
            weights = _layer_weights(root[layer]) if layer in root else {}
            if not weights:
                continue
            if layer not in mapping:
                dropped.append((layer, "Keras layer with no PyTorch counterpart"))
                continue
            for param, array in weights.items():
                if param not in _PARAM_NAMES:
                    dropped.append((f"{layer}/{param}", "unknown Keras weight"))
                    continue
                state[f"{mapping[layer]}.{_PARAM_NAMES[param]}"] = _convert(param, array)
            if "moving_mean" in weights:
                state[f"{mapping[layer]}.num_batches_tracked"] = torch.tensor(0)
        epsilons = _bn_epsilons(f)
    if not state:
        raise SemgenError(
            "no Keras layers of the reference U-Net (depth_{i}_conv / "
            "depth_{i}_bn) found in this HDF5 file",
            path,
        )
    notes = []
    if any(k.endswith("running_var") for k in state):
        eps = ", ".join(f"{e:g}" for e in sorted(epsilons)) if epsilons else "1e-3 (default)"
        notes.append(
            f"Keras BatchNormalization eps {eps} vs PyTorch 1e-5: outputs "
            "differ slightly unless the norm layers' eps is changed"
        )
    adapted = _add_upsampling(state)
    return state, notes, dropped, adapted


def _add_upsampling(state: dict[str, torch.Tensor]) -> dict[str, str]:
    """If the Keras decoder is present, add transposed convs equal to its ``UpSampling3D``."""
    adapted: dict[str, str] = {}
    feeds = ("down_tr512", "up_tr256", "up_tr128")  # the block whose output each up_tr receives
    for up, feed in zip(_DECODER, feeds, strict=True):
        source = state.get(f"{feed}.ops.1.conv1.weight")
        if source is None or f"{up}.ops.0.conv1.weight" not in state:
            continue
        channels, spatial_dims = source.shape[0], source.dim() - 2
        state[f"{up}.up_conv.weight"] = _nearest_upsampling(channels, spatial_dims)
        state[f"{up}.up_conv.bias"] = torch.zeros(channels)
        for key in (f"{up}.up_conv.weight", f"{up}.up_conv.bias"):
            adapted[key] = "nearest-neighbour up-sampling (Keras UpSampling3D has no weights)"
    return adapted
