"""Prediction over whole scans with MONAI's sliding-window inference.

The network sees windows of its training patch size; overlapping windows are blended with a
Gaussian weight, so window borders leave no seams. The scan stays on the CPU and only the windows
travel to the device, so scans of any size fit.
"""

from __future__ import annotations

import numpy as np
import torch

from semantic_genesis.finetune.backbone import set_train_mode
from semantic_genesis.utils.errors import SemgenError


@torch.no_grad()
def predict_logits_volume(
    model: torch.nn.Module,
    array: np.ndarray,
    patch: tuple[int, int, int],
    device: torch.device,
    batch_size: int = 4,
    overlap: float = 0.25,
) -> torch.Tensor:
    """Logits (C, X, Y, Z) of a whole (X, Y, Z) scan in [0, 1] (padded where it is smaller
    than the patch, cropped back)."""
    from monai.inferers import sliding_window_inference

    set_train_mode(model, False)
    x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    logits = sliding_window_inference(
        x,
        roi_size=tuple(patch),
        sw_batch_size=batch_size,
        predictor=model,
        overlap=overlap,
        mode="gaussian",
        sw_device=device,
        device=torch.device("cpu"),
    )
    return logits[0]


def predict_volume(
    model: torch.nn.Module,
    array: np.ndarray,
    patch: tuple[int, int, int],
    device: torch.device,
    batch_size: int = 4,
    overlap: float = 0.25,
) -> np.ndarray:
    """The uint8 label map of a whole scan: sigmoid > 0.5 (one channel) or arg-max."""
    logits = predict_logits_volume(model, array, patch, device, batch_size, overlap)
    bad = int((~torch.isfinite(logits)).sum())
    if bad:  # NaN > 0 is False: the map would silently read as background there
        raise SemgenError(f"the network's output holds {bad} NaN or infinite values on a "
                          f"{tuple(array.shape)} scan (the weights hold NaN?); no label map made")
    return logits_to_labels(logits[None])[0].numpy()


def logits_to_labels(logits: torch.Tensor) -> torch.Tensor:
    """uint8 label maps from logits (N, C, ...): sigmoid > 0.5 for one channel, else arg-max."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).to(torch.uint8)  # sigmoid(x) > 0.5 <=> x > 0
    return logits.argmax(dim=1).to(torch.uint8)
