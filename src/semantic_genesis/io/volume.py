"""The in-memory volume every reader returns.

Axis order is (x, y, z) = (rows, cols, slices), as in the reference code, which transposes
SimpleITK's (z, y, x) arrays. ``array[i, j, k]`` is the voxel at continuous index (i, j, k) in
ITK's convention, so ITK's geometry applies unchanged:

    world = origin + direction @ (index * spacing)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Volume:
    """A 3D image with its geometry.

    Attributes:
        array: voxel values, shape (x, y, z).
        spacing: voxel size in mm along x, y, z.
        origin: world position (mm) of voxel (0, 0, 0).
        direction: 3x3 direction cosines, row-major (ITK ``GetDirection`` order).
        path: the file or folder it was read from, if any.
        notes: what the reader decided (e.g. which DICOM series, which 4D volume).
        warnings: what may make this volume wrong (e.g. unevenly spaced DICOM slices); callers
            print them and record them in their report.
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    path: Path | None = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.array.shape)  # type: ignore[return-value]

    def _matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=np.float64).reshape(3, 3)

    def voxel_to_world(self, index: np.ndarray) -> np.ndarray:
        """Continuous voxel indices (N, 3) in (x, y, z) order -> world mm (N, 3)."""
        idx = np.atleast_2d(np.asarray(index, dtype=np.float64))
        return np.asarray(self.origin) + (idx * np.asarray(self.spacing)) @ self._matrix().T

    def world_to_voxel(self, points_mm: np.ndarray) -> np.ndarray:
        """World mm (N, 3) -> continuous voxel indices (N, 3) in (x, y, z) order.

        This is ITK's ``TransformPhysicalPointToContinuousIndex``; LUNA16 candidate coordinates
        (``coordX, coordY, coordZ``) go through it.
        """
        pts = np.atleast_2d(np.asarray(points_mm, dtype=np.float64))
        rel = (pts - np.asarray(self.origin)) @ np.linalg.inv(self._matrix()).T
        return rel / np.asarray(self.spacing)
