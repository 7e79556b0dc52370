"""Reading stays safe: data files inside the header's folder, names SimpleITK cannot take, a
DICOM series with a broken slice, and headers with impossible geometry."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from semantic_genesis.io import read_volume
from semantic_genesis.io.formats import source_files
from semantic_genesis.utils.errors import SemgenError
from tests.io.scans import ct_volume, write_ct_series, write_nifti_nib, write_sitk

SPACING = (0.7, 0.8, 2.5)
ROOT = Path(__file__).parents[2]


def _point_header_at(header: Path, key: str, sep: str, target: str) -> None:
    lines = [f"{key}{sep}{target}" if ln.startswith(key) else ln
             for ln in header.read_text().splitlines()]
    header.write_text("\n".join(lines) + "\n")


def test_metaimage_data_file_outside_its_folder_is_refused(tmp_path):
    hu = ct_volume()
    header = write_sitk(tmp_path / "scans" / "ct.mhd", hu, SPACING)
    shutil.move(tmp_path / "scans" / "ct.raw", tmp_path / "elsewhere.raw")
    _point_header_at(header, "ElementDataFile", " = ", "../elsewhere.raw")
    with pytest.raises(SemgenError) as info:
        read_volume(header)
    assert info.value.path == header and "outside the header's folder" in info.value.reason
    assert "--allow-external-data" in info.value.reason
    np.testing.assert_array_equal(read_volume(header, allow_external_data=True).array, hu)
    _point_header_at(header, "ElementDataFile", " = ", str(tmp_path / "elsewhere.raw"))
    with pytest.raises(SemgenError, match="outside the header's folder"):
        read_volume(header)  # an absolute path outside is refused the same way


def test_nrrd_detached_data_file_outside_its_folder_is_refused(tmp_path):
    header = write_sitk(tmp_path / "scans" / "ct.nhdr", ct_volume(), SPACING)
    shutil.move(tmp_path / "scans" / "ct.raw", tmp_path / "x.raw")
    _point_header_at(header, "data file", ": ", "../x.raw")
    with pytest.raises(SemgenError, match="'data file' names '../x.raw', outside"):
        source_files(header)
    (tmp_path / "scans" / "sub").mkdir()
    shutil.move(tmp_path / "x.raw", tmp_path / "scans" / "sub" / "x.raw")
    _point_header_at(header, "data file", ": ", "sub/x.raw")  # below the folder: fine
    np.testing.assert_array_equal(read_volume(header).array, ct_volume())


def test_names_that_are_not_utf8_are_read(tmp_path):
    """SimpleITK aborts the process (exit 134) on such names: read in a child process."""
    hu = ct_volume()
    base = os.fsencode(tmp_path)
    nifti = write_nifti_nib(tmp_path / "ok.nii.gz", hu, SPACING)
    os.rename(nifti, os.path.join(base, b"scan_\xff.nii.gz"))
    mhd = write_sitk(tmp_path / "m.mhd", hu, SPACING)
    os.rename(mhd, os.path.join(base, b"m_\xe9.mhd"))  # its .raw keeps its UTF-8 name
    write_ct_series(tmp_path / "series", hu, SPACING)
    os.rename(tmp_path / "series", os.path.join(base, b"series_\xfe"))
    code = ("import os, sys; from semantic_genesis.io import read_volume\n"
            "for name in (b'scan_\\xff.nii.gz', b'm_\\xe9.mhd', b'series_\\xfe'):\n"
            "    v = read_volume(os.fsdecode(os.path.join(os.fsencode(sys.argv[1]), name)))\n"
            "    print(v.shape, int(v.array.sum()))\n")
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:3] == [f"(20, 24, 12) {int(hu.sum())}"] * 3
    assert not list(Path(tmp_path).glob("semgen-read-*"))


def _series_with_broken_slice(folder: Path) -> Path:
    write_ct_series(folder, ct_volume(), SPACING)
    victim = sorted(folder.iterdir())[5]
    data = victim.read_bytes()
    victim.write_bytes(data[:300])  # a truncated header: GDCM silently leaves it out
    return victim


def test_dicom_series_with_a_broken_slice_is_refused(tmp_path):
    victim = _series_with_broken_slice(tmp_path / "series")
    with pytest.raises(SemgenError) as info:
        read_volume(tmp_path / "series")
    assert info.value.path == tmp_path / "series"
    assert f"1 DICOM file(s) could not be read ({victim.name})" in info.value.reason


def test_dicom_series_with_a_missing_slice_warns_with_the_gaps(tmp_path):
    write_ct_series(tmp_path / "series", ct_volume(), SPACING)
    for f in (tmp_path / "series").iterdir():
        if pydicom.dcmread(f).InstanceNumber == 6:
            f.unlink()  # a middle slice: the gaps become uneven
    volume = read_volume(tmp_path / "series")
    (warning,) = volume.warnings
    assert "unevenly spaced (gaps from 2.5 to 5 mm" in warning
    assert volume.shape[2] == 11


@pytest.mark.parametrize("matrix, words", [
    ("0 0 0 0 0 0 0 0 0", "direction cosines do not form a rotation matrix"),
    ("1 1 0 0 1 0 0 0 1", "direction cosines 1 0 0 1 1 0 0 0 1 are not an orthonormal"),
])
def test_impossible_geometry_is_named(tmp_path, matrix, words):
    header = write_sitk(tmp_path / "ct.mhd", ct_volume(), SPACING)
    _point_header_at(header, "TransformMatrix", " = ", matrix)
    with pytest.raises(SemgenError) as info:
        read_volume(header)
    assert words in info.value.reason and not info.value.reason.endswith("0 0 0")


def test_zero_spacing_is_named(tmp_path):
    header = write_sitk(tmp_path / "ct.mhd", ct_volume(), SPACING)
    _point_header_at(header, "ElementSpacing", " = ", "0 0 0")
    with pytest.raises(SemgenError, match="voxel spacing is zero, negative or not a number"):
        read_volume(header)
