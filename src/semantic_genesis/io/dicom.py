"""DICOM series folders, read with SimpleITK (GDCM).

GDCM groups the folder's files by SeriesInstanceUID and sorts each series by position along the
slice normal (ImagePositionPatient on ImageOrientationPatient), and the series reader applies
RescaleSlope/RescaleIntercept, so a CT series comes out in HU. When a folder holds several
series (a scout, a second reconstruction), the one with the most slices is read and the choice
is written into ``Volume.notes``.

A slice file GDCM cannot parse is left out of every series without a word, and ITK then spreads
the remaining slices over the mean spacing: a volume with the wrong geometry. So a folder with a
DICOM file in no series is refused (naming the files), and unevenly spaced slices (a missing
file) are a warning in ``Volume.warnings`` with the gaps found.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from semantic_genesis.io.formats import has_dicom_preamble, scan_format
from semantic_genesis.io.itk import from_sitk, itk_reason, quiet_itk
from semantic_genesis.io.volume import Volume
from semantic_genesis.utils.errors import SemgenError


def list_series(folder: Path) -> dict[str, list[str]]:
    """SeriesInstanceUID -> its files sorted by slice position, for the DICOM files in
    ``folder`` (not its sub-folders)."""
    with quiet_itk():
        uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
        return {uid: list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))
                for uid in uids}


def _looks_like_dicom(path: Path) -> bool:
    if path.name.upper() == "DICOMDIR":  # an index of a whole disc, not an image
        return False
    return scan_format(path) == "dicom" or has_dicom_preamble(path)


def _check_all_read(folder: Path, files: list[Path], series: dict[str, list[str]]) -> None:
    """Refuse a folder where a DICOM-looking file is in no series (corrupt, truncated, empty)."""
    listed = {Path(n).name for names in series.values() for n in names}
    unread = [p.name for p in files if _looks_like_dicom(p) and p.name not in listed]
    if unread:
        shown = ", ".join(unread[:5]) + (", ..." if len(unread) > 5 else "")
        raise SemgenError(f"{len(unread)} DICOM file(s) could not be read ({shown}); without "
                          "them the series would miss slices and get a wrong spacing: replace "
                          "or remove them", folder)


def _gaps(reader: sitk.ImageSeriesReader, image: sitk.Image) -> str:
    """The distinct distances between neighbouring slices along the slice normal, in words."""
    normal = np.asarray(image.GetDirection(), np.float64).reshape(3, 3)[:, 2]
    try:
        positions = [[float(v) for v in reader.GetMetaData(k, "0020|0032").split("\\")]
                     for k in range(image.GetSize()[2])]
    except (RuntimeError, ValueError):
        return "unknown gaps"
    gaps = np.diff(sorted(float(normal @ np.asarray(p)) for p in positions))
    return f"gaps from {gaps.min():.4g} to {gaps.max():.4g} mm"


def read_dicom_folder(folder: str | Path) -> Volume:
    """Read the largest DICOM series in ``folder`` (see the module docstring)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    if not files:
        raise SemgenError("empty folder: no DICOM files in it", folder)
    series = list_series(folder)
    if not series:
        raise SemgenError(f"no DICOM series found among its {len(files)} file(s)", folder)
    _check_all_read(folder, files, series)
    # the most slices wins; ties go to the smallest UID so the choice is deterministic
    ranked = sorted(series.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    uid, names = ranked[0]
    notes = [f"DICOM series {uid} ({len(names)} slices)"]
    if len(ranked) > 1:
        others = ", ".join(f"{u} ({len(n)} slices)" for u, n in ranked[1:])
        notes = [f"folder holds {len(ranked)} DICOM series; read the largest, {uid} "
                 f"({len(names)} slices); ignored: {others}"]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(names)
    reader.MetaDataDictionaryArrayUpdateOn()
    try:
        with quiet_itk():
            image = reader.Execute()
    except RuntimeError as exc:
        raise SemgenError(f"cannot read DICOM series {uid}: {itk_reason(exc)}", folder) from None
    uneven = image.HasMetaDataKey("ITK_non_uniform_sampling_deviation")  # gone after from_sitk
    try:
        volume = from_sitk(image, folder, notes)
    except ValueError as exc:
        raise SemgenError(str(exc), folder) from None
    if uneven:
        volume.warnings.append(
            f"slices are unevenly spaced ({_gaps(reader, image)}; a missing slice?): the volume "
            f"uses their mean spacing {volume.spacing[2]:.4g} mm, so positions along the slice "
            "axis are off")
    return volume
