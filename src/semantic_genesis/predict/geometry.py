"""From a scan's own grid to the network's and back (docs/design.md, "Predict").

The network sees each scan in one orientation (``PredictConfig.orientation``, LPS by default:
the order of LUNA16 .mhd files and of the phantoms) and at the model card's spacing (or the
scan's own). Reorienting only permutes and flips axes (ITK's ``DICOMOrient``; no interpolation);
resampling is linear (``io.resample_volume``). The outputs go back onto the input's own grid
(size, spacing, origin, direction) with ITK's ``Resample`` through world coordinates, so a label
map overlays its scan in every viewer: nearest neighbour for labels, linear for probabilities.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from semantic_genesis.io.itk import array_from_sitk, from_sitk, resample_volume, to_sitk
from semantic_genesis.io.volume import Volume
from semantic_genesis.predict.config import NATIVE

#: relative difference below which two spacings are the same (no resampling)
_SAME_SPACING = 1e-4


def to_network_grid(volume: Volume, orientation: str,
                    spacing: tuple[float, float, float] | None) -> Volume:
    """``volume`` (values already normalised) reoriented to ``orientation`` and resampled to
    ``spacing`` (None: kept); its notes say what was done."""
    image = to_sitk(Volume(np.asarray(volume.array, dtype=np.float32), volume.spacing,
                           volume.origin, volume.direction))
    notes = list(volume.notes)
    if orientation != NATIVE:
        before = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(
            image.GetDirection())
        if before != orientation:
            image = sitk.DICOMOrient(image, orientation)
            notes.append(f"reoriented from {before} to {orientation}")
    grid = from_sitk(image, volume.path, notes)
    if spacing is not None and not np.allclose(grid.spacing, spacing, rtol=_SAME_SPACING):
        grid = resample_volume(grid, spacing)
    return grid


def to_input_grid(array: np.ndarray, grid: Volume, reference: Volume, labels: bool) -> np.ndarray:
    """``array`` (x, y, z) lying on ``grid`` resampled onto ``reference``'s grid.

    Args:
        labels: nearest neighbour into uint8 (a label map); else linear into float32.
    Voxels of the reference outside the network grid get 0 (background).
    """
    image = to_sitk(Volume(array, grid.spacing, grid.origin, grid.direction))
    target = sitk.Image([int(s) for s in reference.shape], sitk.sitkUInt8)
    target.SetSpacing(tuple(float(s) for s in reference.spacing))
    target.SetOrigin(tuple(float(o) for o in reference.origin))
    target.SetDirection(tuple(float(d) for d in reference.direction))
    interpolator, pixel = ((sitk.sitkNearestNeighbor, sitk.sitkUInt8) if labels
                           else (sitk.sitkLinear, sitk.sitkFloat32))
    out = sitk.Resample(image, target, sitk.Transform(), interpolator, 0.0, pixel)
    return array_from_sitk(out)
