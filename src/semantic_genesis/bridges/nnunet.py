"""Pre-trained weights for nnU-Net v2 (``semgen export CHECKPOINT --nnunet OUT.pth``).

``nnUNetv2_train DATASET CONFIG FOLD -pretrained_weights FILE`` calls nnU-Net's
``load_pretrained_weights`` (``nnunetv2/run/load_pretrained_weights.py``), which

- reads ``torch.load(FILE)["network_weights"]``: a state dict keyed like nnU-Net's network;
- requires every key of the network it built, except those containing ``.seg_layers.`` (the 1x1
  segmentation outputs, whose number of classes is the target's), with the same shape;
- copies the matching keys and ignores the rest.

:func:`export_nnunet` writes exactly that: ``{"network_weights": {key: tensor}}``, plain CPU
tensors only (loadable with ``weights_only=True``), from a checkpoint of the ``nnunet`` backbone
(models/nnunet_backbone.py), whose keys already are nnU-Net's. Left out: the self-classification
head ``clc_out`` (not part of nnU-Net's network) and the ``seg_layers`` (the restoration output,
which nnU-Net skips anyway). With the target's plans, :func:`check_fits_plans` runs the loader's
own checks first, so a plans mismatch is one line at export time rather than an assertion deep
in ``nnUNetv2_train`` (method.md §7.4).

:func:`minimal_plans` writes a small but complete ``nnUNetPlans.json`` by hand, in the format of
nnU-Net's ``ExperimentPlanner``, for tests and quick CPU runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from semantic_genesis.utils.errors import SemgenError

#: what nnU-Net's loader never transfers (the segmentation output convolutions)
SEG_LAYERS = ".seg_layers."
#: the key nnU-Net's loader reads
WEIGHTS_KEY = "network_weights"
_ARCHITECTURES = "dynamic_network_architectures.architectures.unet."
_NETWORKS = ("PlainConvUNet", "ResidualEncoderUNet")


def nnunet_weights(model: Any) -> dict[str, Tensor]:
    """An ``nnunet`` backbone's weights as nnU-Net's loader takes them: nnU-Net's keys, no
    ``clc_out``, no ``seg_layers``, detached contiguous CPU tensors."""
    return {k: v.detach().cpu().contiguous().clone()
            for k, v in model.nnunet_state_dict().items() if SEG_LAYERS not in k}


def check_fits_plans(
    weights: Mapping[str, Tensor],
    plans: str | Path | Mapping[str, Any],
    configuration: str,
    in_channels: int = 1,
) -> None:
    """nnU-Net's loader's checks, run now: every non-``seg_layers`` key of the network
    nnU-Net builds from ``plans`` is in ``weights`` with the same shape.

    Raises:
        SemgenError: the keys or shapes that do not match (the first few named).
    """
    import torch

    from semantic_genesis.models.nnunet_backbone import build_nnunet_network, read_plans

    source = None if isinstance(plans, Mapping) else plans
    with torch.device("meta"):  # shapes only
        network = build_nnunet_network(read_plans(plans), configuration, in_channels, 2, True)
    wrong = [
        f"{k} {tuple(v.shape)} vs {tuple(weights[k].shape) if k in weights else 'missing'}"
        for k, v in network.state_dict().items()
        if SEG_LAYERS not in k and (k not in weights or weights[k].shape != v.shape)
    ]
    if wrong:
        raise SemgenError(
            f"the weights do not fit the network of plans configuration {configuration!r}: "
            f"{len(wrong)} key(s) missing or of another shape (network vs weights), e.g. "
            f"{'; '.join(wrong[:3])}; pre-train with these plans (--plans)", source)


def export_nnunet(
    checkpoint: str | Path,
    out: str | Path,
    plans: str | Path | Mapping[str, Any] | None = None,
    configuration: str | None = None,
) -> Path:
    """Write ``checkpoint`` (an ``nnunet`` backbone) as nnU-Net pre-trained weights ``out``.

    Args:
        checkpoint: our checkpoint (``best.pt`` / ``last.pt`` of ``semgen pretrain --backbone
            nnunet``); it is rebuilt from its card (plans included) and loaded strictly.
        out: the ``.pth`` to write, atomically.
        plans, configuration: the target's plans (default: none, no check) and configuration
            (default: the one pre-training used) to check the weights against.

    Raises:
        SemgenError: not an ``nnunet`` checkpoint, or weights that do not fit ``plans``.
    """
    from semantic_genesis.models.checkpoint import save_checkpoint
    from semantic_genesis.models.registry import create_model, model_kwargs_of
    from semantic_genesis.models.weights import read_weights

    src = read_weights(checkpoint)
    family = (src.card or {}).get("backbone")
    if family != "nnunet":
        raise SemgenError(
            f"--nnunet needs a checkpoint of the nnunet backbone, this one holds "
            f"{family or 'no model card'}; pre-train with --backbone nnunet --plans PLANS.json",
            checkpoint)
    model = create_model(**model_kwargs_of(src), pretrained=src, strict=True)
    weights = nnunet_weights(model)
    if plans is not None:
        check_fits_plans(weights, plans, configuration or model.configuration, model.in_channels)
    return save_checkpoint({WEIGHTS_KEY: weights}, out)


def _stage_strides(patch_size: Sequence[int], n_stages: int) -> list[list[int]]:
    """nnU-Net-style strides: 1 for the first stage, then 2 on every axis still at least 8."""
    strides, size = [[1, 1, 1]], list(patch_size)
    for _ in range(n_stages - 1):
        step = [2 if s >= 8 and s % 2 == 0 else 1 for s in size]
        strides.append(step)
        size = [s // t for s, t in zip(size, step, strict=True)]
    return strides


def minimal_plans(
    patch_size: Sequence[int] = (16, 32, 32),
    features: Sequence[int] = (4, 8, 16),
    spacing: Sequence[float] = (2.5, 1.5, 1.5),
    network: str = "PlainConvUNet",
    dataset_name: str = "Dataset999_Tiny",
    plans_name: str = "nnUNetPlans",
    configuration: str = "3d_fullres",
) -> dict[str, Any]:
    """A complete nnU-Net v2 plans dict with one small 3D configuration (written as nnU-Net's
    ``ExperimentPlanner`` writes it: same keys, CT normalisation, default resampling).

    Args:
        patch_size: in nnU-Net's axis order (``z, y, x`` for the identity transpose).
        features: features per stage (their number is the number of stages).
        spacing: target spacing in mm, nnU-Net's axis order.
        network: ``PlainConvUNet`` or ``ResidualEncoderUNet``.
    """
    if network not in _NETWORKS:
        raise SemgenError(f"network {network!r}: choose {' or '.join(_NETWORKS)}")
    n = len(features)
    blocks = "n_conv_per_stage" if network == "PlainConvUNet" else "n_blocks_per_stage"
    arch = {
        "network_class_name": _ARCHITECTURES + network,
        "arch_kwargs": {
            "n_stages": n, "features_per_stage": [int(f) for f in features],
            "conv_op": "torch.nn.modules.conv.Conv3d", "kernel_sizes": [[3, 3, 3]] * n,
            "strides": _stage_strides(patch_size, n), blocks: [2] * n,
            "n_conv_per_stage_decoder": [2] * (n - 1), "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
            "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }
    resample = "resample_data_or_seg_to_shape"
    kw = {"order_z": 0, "force_separate_z": None}
    config = {
        "data_identifier": f"{plans_name}_{configuration}", "preprocessor_name":
        "DefaultPreprocessor", "batch_size": 2, "patch_size": [int(p) for p in patch_size],
        "median_image_size_in_voxels": [int(p) for p in patch_size],
        "spacing": [float(s) for s in spacing], "normalization_schemes": ["CTNormalization"],
        "use_mask_for_norm": [False], "resampling_fn_data": resample, "resampling_fn_seg":
        resample, "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, **kw},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, **kw},
        "resampling_fn_probabilities": resample,
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, **kw},
        "architecture": arch, "batch_dice": False,
    }
    return {
        "dataset_name": dataset_name, "plans_name": plans_name,
        "original_median_spacing_after_transp": [float(s) for s in spacing],
        "original_median_shape_after_transp": [int(p) for p in patch_size],
        "image_reader_writer": "SimpleITKIO", "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2], "configurations": {configuration: config},
        "experiment_planner_used": "ExperimentPlanner", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {
            "max": 1000.0, "mean": 0.0, "median": 0.0, "min": -1000.0,
            "percentile_00_5": -1000.0, "percentile_99_5": 1000.0, "std": 300.0}},
    }
