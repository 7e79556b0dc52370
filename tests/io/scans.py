"""Real scan files for the tests, written with nibabel, SimpleITK and pydicom (no mocks).

``ct_volume`` is asymmetric (every axis a different length, values unique along each axis) so a
transposition or a flip cannot go unnoticed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

SITE = Path(np.__file__).resolve().parents[1]
ANATOMICAL = SITE / "nibabel" / "tests" / "data" / "anatomical.nii"
EXAMPLE_4D = SITE / "nibabel" / "tests" / "data" / "example4d.nii.gz"
CT_SMALL = SITE / "pydicom" / "data" / "test_files" / "CT_small.dcm"


def ct_volume(shape: tuple[int, int, int] = (20, 24, 12), seed: int = 0) -> np.ndarray:
    """An int16 HU volume (x, y, z): air around a soft-tissue box, a ramp along every axis."""
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    hu = np.full(shape, -1000, np.int16)
    inner = tuple(slice(s // 5, s - s // 5) for s in shape)
    hu[inner] = (40 + 7 * x + 3 * y + 11 * z)[inner]
    hu += rng.integers(-5, 6, shape).astype(np.int16)
    return hu


def write_nifti_nib(path: Path, array: np.ndarray, spacing: tuple[float, float, float],
                    origin_lps: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Path:
    """Write ``array`` (x, y, z) with nibabel so that ITK sees identity direction, ``spacing``
    and ``origin_lps`` (NIfTI stores RAS: x and y flip sign)."""
    import nibabel as nib

    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[:3, 3] = [-origin_lps[0], -origin_lps[1], origin_lps[2]]
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), str(path))
    return path


def write_sitk(path: Path, array: np.ndarray, spacing: tuple[float, float, float],
               origin: tuple[float, float, float] = (0.0, 0.0, 0.0), compress: bool = False
               ) -> Path:
    """Write ``array`` (x, y, z) with SimpleITK (format from the suffix: .mhd, .nrrd, ...)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), compress)
    return path


def write_ct_series(folder: Path, hu: np.ndarray, spacing: tuple[float, float, float],
                    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
                    slope: float = 1.0, intercept: float = -1024.0,
                    series_uid: str | None = None, seed: int = 0, prefix: str = "slice") -> str:
    """Write ``hu`` (x, y, z) as an axial CT series in ``folder``; return its SeriesInstanceUID.

    Stored values are ``(hu - intercept) / slope`` as uint16; file names are shuffled so that
    reading in name order would scramble the slices.
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study_uid, frame_uid = generate_uid(), generate_uid()
    stored = np.round((hu - intercept) / slope).astype(np.uint16)
    order = np.random.default_rng(seed).permutation(hu.shape[2])
    for k in range(hu.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "CT"
        ds.PatientID = "P1"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [origin[0], origin[1], origin[2] + k * spacing[2]]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [spacing[1], spacing[0]]  # (between rows = y, between columns = x)
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = hu.shape[1], hu.shape[0]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 0
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()  # rows = y
        ds.save_as(folder / f"{prefix}{order[k]:04d}.dcm", enforce_file_format=True)
    return series_uid


def copy_real_slice_as_series(src: Path, folder: Path, n: int) -> np.ndarray:
    """Turn one real CT slice (e.g. pydicom's CT_small.dcm) into an ``n``-slice series, each
    slice offset by a constant so the order can be checked; returns the expected HU (x, y, z)."""
    folder.mkdir(parents=True, exist_ok=True)
    base = pydicom.dcmread(src)
    series_uid = generate_uid()
    thickness = float(base.SliceThickness)
    pixels = base.pixel_array.astype(np.int32)
    expected = []
    for k in range(n):
        ds = pydicom.dcmread(src)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = n - k  # reversed on purpose: position, not number, decides
        pos = [float(v) for v in base.ImagePositionPatient]
        ds.ImagePositionPatient = [pos[0], pos[1], pos[2] + k * thickness]
        slice_k = np.clip(pixels + 10 * k, 0, 32767).astype(pixels.dtype)
        ds.PixelData = slice_k.astype(base.pixel_array.dtype).tobytes()
        ds.save_as(folder / f"img{(7 * k) % n:03d}.dcm")
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        expected.append((slice_k * slope + intercept).T)
    return np.stack(expected, axis=2)
