"""A real fine-tune on the phantom-ncs target, then `semgen predict` on a new phantom patient
written on another grid (axes permuted and flipped, another spacing): the label map lies on
that grid and overlaps the nodule mask. Measured 201 s (and 907 s with another copy running) on
a 2-core machine shared with other jobs, hence ``slow``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from semantic_genesis.cli import main

PHANTOMS = {"shape": (64, 64, 48), "spacing": (4.0, 4.0, 5.0),
            "nodule_diameter_mm": (14.0, 28.0), "nodules": (2, 3), "negatives": 2}
#: the new grid: new axis i runs along the world axis of column i (permuted, one flipped)
DIRECTION = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
SPACING = np.array([3.0, 3.5, 4.5])


def regrid(image: sitk.Image, labels: bool) -> sitk.Image:
    """``image`` on the permuted, flipped, 3 x 3.5 x 4.5 mm grid over the same field of view."""
    size_mm = np.array(image.GetSize()) * np.array(image.GetSpacing())
    extent = np.array([size_mm[np.argmax(np.abs(DIRECTION[:, i]))] for i in range(3)])
    size = np.round(extent / SPACING).astype(int)
    centre = np.array(image.TransformContinuousIndexToPhysicalPoint(
        [(s - 1) / 2 for s in image.GetSize()]))
    ref = sitk.Image([int(s) for s in size], image.GetPixelID())
    ref.SetSpacing(tuple(SPACING))
    ref.SetOrigin(tuple(centre - DIRECTION @ ((size - 1) / 2 * SPACING)))
    ref.SetDirection(tuple(DIRECTION.ravel()))
    return sitk.Resample(image, ref, sitk.Transform(),
                         sitk.sitkNearestNeighbor if labels else sitk.sitkLinear,
                         0.0 if labels else -1000.0)


@pytest.mark.slow
def test_finetuned_phantom_model_finds_nodules_on_another_grid(tmp_path: Path) -> None:
    from semantic_genesis.data.phantoms import PhantomConfig, generate_phantoms
    from semantic_genesis.data.targets import prepare_target
    from semantic_genesis.finetune import FinetuneConfig, finetune

    target = prepare_target("phantom-ncs", tmp_path / "target", n=4, seed=1, **PHANTOMS)
    finetune(target.data_dir, tmp_path / "ft", FinetuneConfig(
        task="segment", **target.settings, width=8, epochs=10, patch=(32, 32, 16),
        batch_size=4, steps_per_epoch=5, lr=3e-3, patience=50))
    new = tmp_path / "new"  # a patient the network never saw
    generate_phantoms(new, PhantomConfig(n=1, seed=9, **PHANTOMS))
    image = sitk.ReadImage(str(new / "images" / "phantom-9-0000.nii.gz"))
    mask = regrid(sitk.ReadImage(str(new / "labels" / "phantom-9-0000.nii.gz")), labels=True)
    scan = tmp_path / "scans" / "patient.nii.gz"
    scan.parent.mkdir()
    sitk.WriteImage(regrid(image, labels=False), str(scan))
    out = tmp_path / "pred"
    # the fine-tuned card records no spacing (native): give the phantoms' own
    assert main(["predict", str(tmp_path / "ft" / "model.pt"), str(scan.parent), "--out",
                 str(out), "--spacing", "4", "4", "5", "--montage"]) == 0
    label = sitk.ReadImage(str(out / "labels" / "patient.nii.gz"))
    assert label.GetSize() == mask.GetSize()
    np.testing.assert_allclose(label.GetSpacing(), mask.GetSpacing())
    np.testing.assert_allclose(label.GetOrigin(), mask.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(label.GetDirection(), mask.GetDirection())
    predicted, truth = sitk.GetArrayFromImage(label) > 0, sitk.GetArrayFromImage(mask) > 0
    assert truth.any()
    dice = 2 * np.sum(predicted & truth) / (predicted.sum() + truth.sum())
    assert dice > 0, f"no overlap with the nodules (Dice {dice})"
    assert (out / "labels" / "patient.png").is_file()
