"""read_volume: every format round-trips with (x, y, z) order, spacing, geometry and values."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from semantic_genesis.io import Volume, read_volume, write_nifti, write_npy
from semantic_genesis.utils.errors import SemgenError
from tests.io.scans import (
    ANATOMICAL,
    CT_SMALL,
    EXAMPLE_4D,
    copy_real_slice_as_series,
    ct_volume,
    write_ct_series,
    write_nifti_nib,
    write_sitk,
)

SPACING = (0.7, 0.8, 2.5)
ORIGIN = (-10.0, 20.0, 30.0)


@pytest.mark.parametrize("name", ["ct.nii", "ct.nii.gz"])
def test_nifti_written_by_nibabel(tmp_path, name):
    hu = ct_volume()
    path = write_nifti_nib(tmp_path / name, hu, SPACING, ORIGIN)
    v = read_volume(path)
    assert v.shape == (20, 24, 12)
    np.testing.assert_array_equal(v.array, hu)
    np.testing.assert_allclose(v.spacing, SPACING, rtol=1e-6)
    np.testing.assert_allclose(v.origin, ORIGIN, atol=1e-5)
    np.testing.assert_allclose(v.direction, np.eye(3).ravel(), atol=1e-6)
    # voxel (i, j, k) sits where nibabel's affine puts it (RAS -> LPS flips x and y)
    ras = nib.load(path).affine @ np.array([3, 5, 7, 1.0])
    np.testing.assert_allclose(v.voxel_to_world([3, 5, 7])[0], ras[:3] * [-1, -1, 1], atol=1e-4)


@pytest.mark.parametrize("name", ["ct.mhd", "ct.nrrd", "ct_z.mhd", "ct_z.nrrd"])
def test_itk_formats_written_by_simpleitk(tmp_path, name):
    hu = ct_volume()
    path = write_sitk(tmp_path / name, hu, SPACING, ORIGIN, compress="_z" in name)
    if name == "ct.mhd":
        assert (tmp_path / "ct.raw").is_file()  # the LUNA16 layout
    v = read_volume(path)
    assert v.array.dtype == np.int16
    np.testing.assert_array_equal(v.array, hu)
    np.testing.assert_allclose(v.spacing, SPACING)
    np.testing.assert_allclose(v.origin, ORIGIN)
    image = sitk.ReadImage(str(path))  # ITK's own index (i, j, k) is our array[i, j, k]
    for idx in [(0, 0, 0), (19, 3, 7), (4, 23, 11)]:
        assert v.array[idx] == image.GetPixel(idx)


def test_npy_with_given_and_default_spacing(tmp_path):
    hu = ct_volume()
    np.save(tmp_path / "ct.npy", hu)
    v = read_volume(tmp_path / "ct.npy", spacing=SPACING)
    np.testing.assert_array_equal(v.array, hu)
    assert v.spacing == SPACING
    assert read_volume(tmp_path / "ct.npy").spacing == (1.0, 1.0, 1.0)


def test_writers_round_trip(tmp_path):
    hu = ct_volume().astype(np.float32)
    vol = Volume(hu, SPACING, ORIGIN, (0, 1, 0, 1, 0, 0, 0, 0, 1))
    back = read_volume(write_nifti(vol, tmp_path / "out.nii.gz"))
    np.testing.assert_array_equal(back.array, hu)
    np.testing.assert_allclose(back.direction, vol.direction, atol=1e-6)
    np.testing.assert_allclose(back.origin, ORIGIN, atol=1e-5)
    np.testing.assert_allclose(back.spacing, SPACING, rtol=1e-6)
    np.testing.assert_array_equal(nib.load(tmp_path / "out.nii.gz").get_fdata(), hu)
    write_npy(Volume(hu.astype(np.float16)), tmp_path / "out.npy")
    loaded = np.load(tmp_path / "out.npy", mmap_mode="r")
    assert loaded.dtype == np.float16 and loaded.shape == hu.shape
    assert not list(tmp_path.glob(".tmp-*"))


def test_dicom_series_matches_nifti(tmp_path):
    hu = ct_volume()
    write_ct_series(tmp_path / "series", hu, SPACING, ORIGIN)
    dcm = read_volume(tmp_path / "series")
    nii = read_volume(write_nifti_nib(tmp_path / "ct.nii.gz", hu, SPACING, ORIGIN))
    np.testing.assert_array_equal(dcm.array, nii.array)  # sorted by position, HU restored
    np.testing.assert_allclose(dcm.spacing, nii.spacing, rtol=1e-6)
    np.testing.assert_allclose(dcm.origin, nii.origin, atol=1e-4)
    np.testing.assert_allclose(dcm.direction, nii.direction, atol=1e-6)
    assert "12 slices" in dcm.notes[0]


def test_dicom_rescale_slope_and_intercept(tmp_path):
    hu = ct_volume().astype(np.float64) / 2  # needs slope 0.5 to be stored exactly
    write_ct_series(tmp_path / "s", hu, SPACING, slope=0.5, intercept=-1024)
    np.testing.assert_allclose(read_volume(tmp_path / "s").array, hu)


def test_dicom_mixed_series_reads_largest_and_says_so(tmp_path):
    hu = ct_volume()
    big = write_ct_series(tmp_path / "mixed", hu, SPACING, prefix="a")
    small = write_ct_series(tmp_path / "mixed", hu[:, :, :3], SPACING, prefix="b")
    v = read_volume(tmp_path / "mixed")
    np.testing.assert_array_equal(v.array, hu)
    assert "2 DICOM series" in v.notes[0] and big in v.notes[0] and small in v.notes[0]


def test_real_ct_small_slice_as_series(tmp_path):
    expected = copy_real_slice_as_series(CT_SMALL, tmp_path / "real", 5)
    v = read_volume(tmp_path / "real")
    assert v.shape == (128, 128, 5)
    np.testing.assert_allclose(v.spacing, (0.661468, 0.661468, 5.0), rtol=1e-5)
    np.testing.assert_array_equal(v.array, expected)  # rescale intercept -1024 applied


def test_real_anatomical_nifti():
    v = read_volume(ANATOMICAL)
    assert v.shape == (33, 41, 25) and v.spacing == (2.0, 2.0, 2.0)
    np.testing.assert_array_equal(v.array, np.asanyarray(nib.load(ANATOMICAL).dataobj))


# --- bad input: one clear SemgenError naming the file ------------------------------------------


def _error(path, match):
    with pytest.raises(SemgenError, match=match) as info:
        read_volume(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["ct.nii", "ct.nii.gz"])
def test_truncated_nifti(tmp_path, name):
    data = write_nifti_nib(tmp_path / name, ct_volume(), SPACING).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    _error(tmp_path / name, "truncated or corrupt NIfTI")


def test_text_file_named_nii_gz(tmp_path):
    (tmp_path / "notes.nii.gz").write_text("patient 12: see the scan on the PACS\n")
    _error(tmp_path / "notes.nii.gz", "a text file")


def test_mhd_without_raw(tmp_path):
    write_sitk(tmp_path / "ct.mhd", ct_volume(), SPACING)
    (tmp_path / "ct.raw").unlink()
    _error(tmp_path / "ct.mhd", "data file 'ct.raw' named in the header is missing")


def test_mhd_with_short_raw(tmp_path):
    write_sitk(tmp_path / "ct.mhd", ct_volume(), SPACING)
    raw = tmp_path / "ct.raw"
    raw.write_bytes(raw.read_bytes()[:100])
    _error(tmp_path / "ct.mhd", "truncated")


def test_2d_image(tmp_path):
    write_sitk(tmp_path / "slice.nrrd", ct_volume()[:, :, :1], SPACING)
    _error(tmp_path / "slice.nrrd", "2D image")
    nib.save(nib.Nifti1Image(np.zeros((30, 20), np.int16), np.eye(4)), tmp_path / "flat.nii")
    _error(tmp_path / "flat.nii", "2D image")
    _error(CT_SMALL, "single DICOM slice")


def test_4d_image_with_several_volumes_is_refused():
    _error(EXAMPLE_4D, "holds 2 3D volumes")


def test_4d_image_with_one_volume_is_used(tmp_path):
    hu = ct_volume()
    nib.save(nib.Nifti1Image(hu[..., None], np.diag([*SPACING, 1.0])), tmp_path / "t1.nii.gz")
    v = read_volume(tmp_path / "t1.nii.gz")
    np.testing.assert_array_equal(v.array, hu)
    np.testing.assert_allclose(v.spacing, SPACING, rtol=1e-6)
    assert "holds one 3D volume" in v.notes[0]


def test_empty_dicom_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    _error(tmp_path / "empty", "empty folder")


def test_folder_without_dicom(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.dcm").write_bytes(b"\x00" * 300)
    _error(tmp_path / "junk", "no DICOM series")


def test_missing_file_and_pickled_npy(tmp_path):
    _error(tmp_path / "nope.nii.gz", "not found")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _error(tmp_path / "obj.npy", "not a readable .npy")


def test_copy_of_series_folder_is_independent_of_file_names(tmp_path):
    hu = ct_volume()
    write_ct_series(tmp_path / "s1", hu, SPACING, seed=1)
    shutil.copytree(tmp_path / "s1", tmp_path / "s2")
    for i, f in enumerate(sorted((tmp_path / "s2").iterdir())):
        f.rename(f.with_name(f"z{(i * 5) % 12:02d}.dcm"))
    np.testing.assert_array_equal(read_volume(tmp_path / "s2").array, hu)
