"""Checkpoints and scans for the predict tests.

``threshold_checkpoint`` is a fine-tuned segmentation checkpoint whose output is a known
function: a registered one-voxel convolution, ``logit = 40 * (x - 0.55)`` on the [0, 1] CT scale,
labels every voxel brighter than 100 HU (0.55 on the -1000..1000 window). Its weights are saved
through the normal checkpoint writer (``save_model``, with a fine-tune model card) and loaded back
by ``semgen predict`` like any other. It stands in for a trained network where the test is about
geometry: a real fine-tune on phantoms is in ``test_predict_slow.py``.

``phantom_scan`` writes (with SimpleITK) an anisotropic, asymmetric "nodule" (+200 HU) in lung
(-850 HU) on a grid whose axes are permuted and flipped and whose spacing is not the model's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from torch import nn

THRESHOLD_MODEL = "test-threshold3d"
#: the model card's spacing (mm); the phantom scan is on another one
MODEL_SPACING = (1.5, 1.5, 1.5)
#: the phantom's grid: axes permuted (x->z, y->x, z->y) with one flipped; anisotropic spacing
SCAN_DIRECTION = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
SCAN_SPACING = (1.2, 2.0, 0.9)
SCAN_SHAPE = (30, 22, 40)
#: HU threshold the model applies, as the [0, 1] value of the -1000..1000 window
LEVEL = 0.55


class Threshold(nn.Module):
    """A one-voxel convolution; ``size_multiple`` 1 (no pooling)."""

    size_multiple = 1

    def __init__(self, **_: object) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 1, 1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _register() -> None:
    from semantic_genesis.models.registry import list_models, register_model

    if THRESHOLD_MODEL not in list_models():
        register_model(lambda **kw: Threshold(**kw), name=THRESHOLD_MODEL)


def save_threshold_checkpoint(path: Path, **card_fields: object) -> Path:
    """Save the threshold network with a fine-tuned segmentation card."""
    from semantic_genesis.models.card import ModelCard
    from semantic_genesis.models.checkpoint import save_model

    _register()
    model = Threshold()
    with torch.no_grad():
        model.conv.weight.fill_(40.0)
        model.conv.bias.fill_(-40.0 * LEVEL)
    fields = {"architecture": THRESHOLD_MODEL, "n_classes": 2, "head": "mlp",
              "patch_size": (16, 16, 16), "spacing": MODEL_SPACING, "modality": "ct",
              "pretext": "finetune-segment", "semantic": False, **card_fields}
    return save_model(path, model, ModelCard(**fields))


@pytest.fixture(scope="session")
def threshold_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_threshold_checkpoint(tmp_path_factory.mktemp("threshold") / "model.pt")


def phantom_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(HU volume, nodule mask) in (x, y, z) order on ``SCAN_SHAPE``: an off-centre ellipsoid,
    so a flipped or permuted prediction would not land on it."""
    x, y, z = np.meshgrid(*(np.arange(s, dtype=float) for s in SCAN_SHAPE), indexing="ij")
    sx, sy, sz = SCAN_SPACING  # an ellipsoid in millimetres
    mask = (((x - 9) * sx / 8) ** 2 + ((y - 14) * sy / 6) ** 2 + ((z - 25) * sz / 10) ** 2) <= 1
    hu = np.full(SCAN_SHAPE, -850.0, np.float32)
    hu[mask] = 200.0
    return hu.astype(np.int16), mask.astype(np.uint8)


def write_scan(array: np.ndarray, path: Path) -> Path:
    """Write an (x, y, z) array on the phantom's grid with SimpleITK."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    image.SetSpacing(SCAN_SPACING)
    image.SetOrigin((-31.0, 12.5, 140.0))
    image.SetDirection(SCAN_DIRECTION)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture()
def phantom_scan(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """(a phantom scan as NIfTI, its nodule mask in (x, y, z))."""
    hu, mask = phantom_arrays()
    return write_scan(hu, tmp_path / "scans" / "phantom.nii.gz"), mask
