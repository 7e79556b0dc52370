"""``read_volume``: one call for every scan format a user brings.

NIfTI (.nii, .nii.gz), MetaImage (.mhd + .raw as LUNA16 ships it, .mha), NRRD (.nrrd, .nhdr),
NumPy (.npy) and DICOM (a series folder, or one multi-frame file). The array comes back in
(x, y, z) order with ITK geometry (LPS world millimetres), as the reference reads LUNA16
(method.md §1). Every failure is a :class:`SemgenError` naming the file, never a library
traceback.

Dimension rule (the same for every format): trailing singleton axes beyond the third are dropped
(a NIfTI of shape (X, Y, Z, 1) is a 3D volume; that is unambiguous and noted). An image that
holds several 3D volumes (X, Y, Z, T>1) is refused, since any choice among them would be a
guess. A 2D image, or a 3D one with a single slice, is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from semantic_genesis.io.dicom import read_dicom_folder
from semantic_genesis.io.formats import check_binary, check_metaimage, scan_format, source_files
from semantic_genesis.io.itk import (
    from_sitk,
    geometry_3d,
    geometry_problem,
    geometry_reason,
    itk_reason,
    quiet_itk,
)
from semantic_genesis.io.safenames import itk_readable
from semantic_genesis.io.volume import Volume
from semantic_genesis.utils.errors import SemgenError

_NAMES = {"nifti": "NIfTI image", "metaimage": "MetaImage", "nrrd": "NRRD image",
          "npy": ".npy array", "dicom": "DICOM file", None: "image"}


def read_volume(path: str | Path, spacing: tuple[float, float, float] | None = None,
                allow_external_data: bool = False) -> Volume:
    """Read a 3D scan into a :class:`Volume` (array (x, y, z), spacing, origin, direction).

    Args:
        path: a NIfTI, MetaImage, NRRD, .npy or DICOM file, or a folder holding a DICOM series
            (the series with the most slices is read and ``notes`` says so).
        spacing: voxel size (mm) for formats that store none (.npy); 1 mm when not given.
            Formats with a header keep their own (use ``resample_volume`` to change it).
        allow_external_data: read a data file that a MetaImage/NRRD header names outside its
            own folder (refused by default, see ``formats.source_files``).

    Raises:
        SemgenError: naming the file and what is wrong with it (including a geometry that is
            not usable: zero spacing, a direction that is not a rotation).
    """
    path = Path(path)
    files = source_files(path, allow_external_data)  # missing / outside data -> a clear error
    try:
        with itk_readable(path, files) as readable:
            volume = _read(readable, spacing)
    except SemgenError as exc:
        if exc.path is None or exc.path == path:
            raise
        raise SemgenError(exc.reason, path) from None  # name the user's file, not a link
    volume.path = path
    problem = geometry_problem(volume.spacing, volume.origin, volume.direction)
    if problem:
        raise SemgenError(f"invalid geometry: {problem}", path)
    return volume


def _read(path: Path, spacing: tuple[float, float, float] | None) -> Volume:
    fmt = scan_format(path)
    if fmt == "dicom-folder":
        volume = read_dicom_folder(path)
    elif fmt == "npy":
        volume = _read_npy(path, spacing)
    elif fmt == "nifti":
        volume = _read_nifti(path)
    else:
        if fmt == "metaimage" and path.suffix.lower() == ".mhd":
            check_metaimage(path)
        if fmt == "dicom":
            check_binary(path, _NAMES[fmt])
        volume = _read_itk(path, _NAMES[fmt])
    volume.path = path
    hint = "; a single DICOM slice: pass the folder of its series" if fmt == "dicom" else ""
    return _ensure_3d(volume, hint)


def _read_itk(path: Path, what: str) -> Volume:
    try:
        with quiet_itk():
            image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        reason = geometry_reason(itk_reason(exc))
        if "No such file" in reason:  # MetaIO's words for data it could not decompress
            reason = "corrupt or truncated data"
        raise SemgenError(f"cannot read as {what}: {reason}", path) from None
    try:
        return from_sitk(image, path)
    except ValueError as exc:
        raise SemgenError(str(exc), path) from None


def _read_nifti(path: Path) -> Volume:
    """NIfTI voxels through nibabel, geometry through ITK.

    SimpleITK fills a truncated NIfTI with zeros without a word; nibabel refuses it. ITK's header
    reading gives the same LPS geometry as every other format here (and as LUNA16 tools).
    """
    import nibabel as nib

    check_binary(path, "NIfTI image", gzip=path.name.lower().endswith(".gz"))
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with quiet_itk():
            reader.ReadImageInformation()
    except RuntimeError as exc:
        raise SemgenError(f"not a readable NIfTI header: {geometry_reason(itk_reason(exc))}",
                          path) from None
    if reader.GetNumberOfComponents() != 1:
        raise SemgenError(f"{reader.GetNumberOfComponents()} components per voxel (a colour or "
                          "vector image); a scalar volume is needed", path)
    try:
        image = nib.load(str(path))
        array = np.asanyarray(image.dataobj)
    except Exception as exc:  # nibabel raises OSError, EOFError, zlib/gzip errors, ...
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise SemgenError(f"truncated or corrupt NIfTI ({reason})", path) from None
    spacing, origin, direction = geometry_3d(reader.GetSpacing(), reader.GetOrigin(),
                                             reader.GetDirection())
    return Volume(array=array, spacing=spacing, origin=origin, direction=direction, path=path)


def _read_npy(path: Path, spacing: tuple[float, float, float] | None) -> Volume:
    check_binary(path, ".npy array")
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as exc:  # ValueError (pickled/truncated), OSError, EOFError
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise SemgenError(f"not a readable .npy array ({reason})", path) from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise SemgenError(f"holds {getattr(array, 'dtype', type(array))} values, not numbers",
                          path)
    spacing = tuple(float(s) for s in (spacing or (1.0, 1.0, 1.0)))
    if len(spacing) != 3 or min(spacing) <= 0:
        raise SemgenError(f"spacing must be three positive numbers, got {spacing}", path)
    notes = [] if spacing != (1.0, 1.0, 1.0) else ["a .npy has no spacing; assumed 1 mm"]
    return Volume(array=array, spacing=spacing, path=path, notes=notes)  # type: ignore[arg-type]


def _ensure_3d(volume: Volume, hint: str = "") -> Volume:
    """Apply the module's dimension rule (see the module docstring)."""
    array, path = volume.array, volume.path
    shape = tuple(int(s) for s in array.shape)
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim > 3:
        n = int(np.prod(array.shape[3:]))
        raise SemgenError(f"{len(shape)}D image of shape {_fmt(shape)} holds {n} 3D volumes; "
                          "which one to use is ambiguous, pass a single 3D volume", path)
    if array.ndim < 3 or min(array.shape) == 1:
        raise SemgenError(f"a 2D image (shape {_fmt(shape)}), not a 3D volume{hint}", path)
    if array.ndim != len(shape):
        volume.notes.append(f"{len(shape)}D image of shape {_fmt(shape)} holds one 3D volume; "
                            "used it")
    volume.array = array
    return volume


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)
