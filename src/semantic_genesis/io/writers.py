"""Writers: NIfTI (with geometry) and .npy (the array only, as the cohort stores volumes).

Both write to a temporary name and rename (``utils.atomic``), so a killed process never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import SimpleITK as sitk

from semantic_genesis.io.itk import captured_c_stderr, itk_reason, to_sitk
from semantic_genesis.io.volume import Volume
from semantic_genesis.utils.atomic import atomic_path, save_npy_atomic
from semantic_genesis.utils.errors import SemgenError


def write_nifti(volume: Volume, path: str | Path, compress: bool | None = None) -> Path:
    """Write ``volume`` as NIfTI (``.nii`` or ``.nii.gz``) with its spacing, origin and direction.

    ITK converts its LPS geometry to the NIfTI RAS affine, so nibabel and every viewer see the
    volume where ITK does. float16 is stored as float32 and bool as uint8 (NIfTI has neither).

    Args:
        compress: gzip the data; defaults to True for a ``.gz`` name.
    """
    path = Path(path)
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        raise SemgenError("a NIfTI file name must end in .nii or .nii.gz", path)
    suffix = ".nii.gz" if path.name.lower().endswith(".gz") else ".nii"
    compress = suffix == ".nii.gz" if compress is None else compress
    image = to_sitk(volume)
    with atomic_path(path, suffix=suffix) as tmp:
        try:
            with captured_c_stderr() as messages:
                sitk.WriteImage(image, str(tmp), compress)
        except RuntimeError as exc:
            raise SemgenError(f"cannot write NIfTI: {itk_reason(exc)}", path) from None
        _check_written(messages, tmp, path)
    return path


def _check_written(messages: list[str], tmp: Path, path: Path) -> None:
    """Raise when ITK's NIfTI library reported a failed or short write (it does not raise);
    pass its other messages on to stderr."""
    errors = [m for m in messages if "ERROR" in m]
    for message in messages:
        if message not in errors:
            print(message, file=sys.stderr)
    if not errors:
        return
    stat = os.statvfs(tmp.parent)
    if stat.f_bavail * stat.f_frsize < 1 << 20:  # the disk is (nearly) full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    raise SemgenError(f"cannot write NIfTI: {errors[0].strip('* ')}", path)


def write_npy(volume: Volume, path: str | Path) -> Path:
    """Write the array of ``volume`` (axis order x, y, z) as a memory-mappable ``.npy``.

    A ``.npy`` holds no geometry; the cohort keeps spacing and origin in ``cohort.csv``.
    """
    return save_npy_atomic(path, volume.array)
