"""SimpleITK glue: Volume <-> sitk.Image, readable ITK error reasons, resampling.

SimpleITK arrays are (z, y, x); a :class:`Volume` is (x, y, z) (method.md §1: the reference
transposes SimpleITK's arrays the same way), so every conversion reverses the axes.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from semantic_genesis.io.volume import Volume

_ITK_PREFIX = re.compile(r"^(ITK ERROR: \w+\(0x[0-9a-f]+\): |sitk::ERROR: |\[\w+\] )")


def itk_reason(exc: BaseException) -> str:
    """The informative part of an ITK exception, without source paths and object addresses.

    ITK messages look like ``Exception thrown in ...cxx:99:\\nITK ERROR: Image(0x..): <what,
    possibly over several lines>`` (kept whole: the last line alone may be a bare matrix row such
    as ``0 0 0``) or, for NRRD, a stack of ``[nrrd] ...`` lines whose last one says what went
    wrong.
    """
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("Exception thrown in")]
    if not lines:
        return type(exc).__name__
    start = next((i for i, ln in enumerate(lines)
                  if ln.startswith(("ITK ERROR:", "sitk::ERROR:"))), None)
    if start is not None:
        return _ITK_PREFIX.sub("", " ".join(lines[start:]))[:300]
    informative = [ln for ln in lines if "trouble" not in ln and not ln.endswith(":")]
    line = (informative or lines)[-1]
    return _ITK_PREFIX.sub("", line)[:300]


def geometry_problem(spacing: tuple, origin: tuple, direction: tuple) -> str | None:
    """What is wrong with a volume's geometry in words, or None when it is usable.

    Spacing must be finite and positive, the origin finite, and the direction cosines an
    orthonormal matrix (otherwise world coordinates, e.g. of candidates, land in the wrong voxel).
    """
    sp, org = np.asarray(spacing, np.float64), np.asarray(origin, np.float64)
    matrix = np.asarray(direction, np.float64).reshape(3, 3)
    if not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        return f"voxel spacing {_fmt(sp)} mm is not three positive numbers"
    if not np.all(np.isfinite(org)):
        return f"origin {_fmt(org)} is not three finite numbers"
    if not np.all(np.isfinite(matrix)) or not np.allclose(matrix @ matrix.T, np.eye(3),
                                                          atol=1e-3):
        return (f"direction cosines {_fmt(matrix.ravel(), ' ')} are not an orthonormal "
                "(rotation) matrix")
    return None


def geometry_reason(itk_message: str) -> str:
    """A user's words for ITK's refusals of a header's geometry (zero spacing, a direction
    matrix with determinant 0); other messages unchanged."""
    lower = itk_message.lower()
    if "spacing" in lower and ("zero" in lower or "refusing" in lower):
        return ("invalid geometry in the header: the voxel spacing is zero, negative or not a "
                f"number ({itk_message})")
    if "direction" in lower and ("determinant" in lower or "refusing" in lower):
        return ("invalid geometry in the header: the direction cosines do not form a rotation "
                f"matrix ({itk_message})")
    return itk_message


@contextlib.contextmanager
def quiet_itk() -> Iterator[None]:
    """Silence ITK's stderr warnings (e.g. non-uniform slice spacing) during a read.

    The facts those warnings carry are recorded in ``Volume.notes`` instead.
    """
    previous = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(previous)


@contextlib.contextmanager
def captured_c_stderr() -> Iterator[list[str]]:
    """Capture what C code (ITK's NIfTI library) prints on file descriptor 2 during the block;
    the yielded list holds those lines once the block has ended.

    ITK's NIfTI writer reports a short write (``** ERROR: NWAD: wrote only 0 of ... bytes``,
    e.g. on a full disk) only there, without raising: the caller must look at the lines.
    """
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines.extend(held.read().decode(errors="replace").splitlines())


def array_from_sitk(image: sitk.Image) -> np.ndarray:
    """The voxels of ``image`` with ITK's index order, i.e. (x, y, z[, t...]).

    Raises:
        ValueError: for vector images (several components per voxel).
    """
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError(f"{image.GetNumberOfComponentsPerPixel()} components per voxel "
                         "(a colour or vector image); a scalar volume is needed")
    array = sitk.GetArrayFromImage(image)
    return array.transpose(tuple(range(array.ndim - 1, -1, -1)))


def geometry_3d(spacing: tuple, origin: tuple, direction: tuple
                ) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """The first three axes of an N-D ITK geometry (spacing, origin, row-major direction)."""
    n = len(spacing)
    matrix = np.asarray(direction, dtype=np.float64).reshape(n, n)[:3, :3]
    return (tuple(float(s) for s in spacing[:3]), tuple(float(o) for o in origin[:3]),
            tuple(float(d) for d in matrix.ravel()))


def to_sitk(volume: Volume) -> sitk.Image:
    """A SimpleITK image of ``volume`` (float16 -> float32, bool -> uint8: ITK has neither)."""
    array = np.asarray(volume.array)
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8)
    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    image.SetSpacing(tuple(float(s) for s in volume.spacing))
    image.SetOrigin(tuple(float(o) for o in volume.origin))
    image.SetDirection(tuple(float(d) for d in volume.direction))
    return image


def from_sitk(image: sitk.Image, path: str | Path | None = None,
              notes: list[str] | None = None) -> Volume:
    """A :class:`Volume` of a 3D SimpleITK image."""
    spacing, origin, direction = geometry_3d(image.GetSpacing(), image.GetOrigin(),
                                             image.GetDirection())
    return Volume(array=array_from_sitk(image), spacing=spacing, origin=origin,
                  direction=direction, path=None if path is None else Path(path),
                  notes=list(notes or []))


def resample_volume(volume: Volume, spacing: tuple[float, float, float],
                    interpolator: int = sitk.sitkLinear) -> Volume:
    """Resample ``volume`` to ``spacing`` (mm) over the same field of view.

    The reference keeps native spacing (method.md §1: its 2 mm B-spline helper is never called);
    this is the optional alternative. Linear interpolation is the default because it never
    overshoots (a B-spline rings around the air/body edge). The grid keeps the origin and
    direction; voxels past the original extent take the volume's minimum (air for CT).
    """
    new_spacing = tuple(float(s) for s in spacing)
    if len(new_spacing) != 3 or min(new_spacing) <= 0:
        raise ValueError(f"spacing must be three positive numbers, got {spacing}")
    image = to_sitk(Volume(np.asarray(volume.array, dtype=np.float32), volume.spacing,
                           volume.origin, volume.direction))
    size = [max(1, int(round(n * s / t)))
            for n, s, t in zip(volume.shape, volume.spacing, new_spacing, strict=True)]
    out = sitk.Resample(image, size, sitk.Transform(), interpolator, image.GetOrigin(),
                        new_spacing, image.GetDirection(), float(np.min(volume.array)),
                        sitk.sitkFloat32)
    note = (f"resampled from {_fmt(volume.spacing)} mm ({_fmt(volume.shape)}) to "
            f"{_fmt(new_spacing)} mm ({_fmt(size)})")
    resampled = from_sitk(out, volume.path, [*volume.notes, note])
    resampled.warnings = list(volume.warnings)
    return resampled


def _fmt(values, sep: str = "x") -> str:
    return sep.join(f"{v:g}" for v in values)
