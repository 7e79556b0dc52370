"""DICOM series folders, read with SimpleITK (GDCM).

GDCM groups the folder's files by SeriesInstanceUID and sorts each series by position along the
slice normal (ImagePositionPatient on ImageOrientationPatient), and the series reader applies
RescaleSlope/RescaleIntercept, so a CT series comes out in HU. When a folder holds several
series (a scout, a second reconstruction), the one with the most slices is read and the choice
is written into ``Volume.notes``.
"""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

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


def read_dicom_folder(folder: str | Path) -> Volume:
    """Read the largest DICOM series in ``folder`` (see the module docstring)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    if not files:
        raise SemgenError("empty folder: no DICOM files in it", folder)
    series = list_series(folder)
    if not series:
        raise SemgenError(f"no DICOM series found among its {len(files)} file(s)", folder)
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
    try:
        with quiet_itk():
            image = reader.Execute()
    except RuntimeError as exc:
        raise SemgenError(f"cannot read DICOM series {uid}: {itk_reason(exc)}", folder) from None
    if image.HasMetaDataKey("ITK_non_uniform_sampling_deviation"):
        notes.append("slice spacing is not uniform (missing slices?); ITK used the mean spacing")
    try:
        return from_sitk(image, folder, notes)
    except ValueError as exc:
        raise SemgenError(str(exc), folder) from None
