"""Expanding user inputs into scans with ids; source hashing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from semantic_genesis.io.formats import source_sha256
from semantic_genesis.io.inputs import assign_ids, find_scans
from tests.io.scans import ct_volume, write_ct_series, write_sitk


def test_ids_are_unique_and_sanitised():
    paths = [Path("/d/a/ct.nii"), Path("/d/b/ct.nii.gz"), Path("/d/p1/s/ct.nrrd"),
             Path("/d/p2/s/ct.nrrd"), Path("/d/x/scan.nii"), Path("/d/x/scan.mhd"),
             Path("/d/y/pat ient#1.nii.gz")]
    assert assign_ids(paths) == ["a_ct", "b_ct", "p1_s_ct", "p2_s_ct", "scan", "scan-2",
                                 "pat_ient_1"]


def test_folder_expansion(tmp_path):
    root = tmp_path / "data"
    hu = ct_volume()
    write_sitk(root / "luna" / "1.2.3.mhd", hu, (1, 1, 1))  # + 1.2.3.raw, not a scan itself
    write_sitk(root / "pyrad" / "lung1_image.nrrd", hu, (1, 1, 1))
    write_sitk(root / "pyrad" / "lung1_label.nrrd", hu, (1, 1, 1))
    write_sitk(root / "labels" / "p1.nii.gz", hu, (1, 1, 1))
    write_ct_series(root / "dicom" / "series7", hu, (1, 1, 1))
    (root / "README.txt").write_text("scans")
    (root / ".hidden.nii").write_text("x")
    out = root / "cohort"
    write_sitk(out / "volumes" / "old.nii", hu, (1, 1, 1))  # the output folder is never read
    scans, skipped = find_scans([root, tmp_path / "missing.nii"], exclude=[out])
    assert [(s.id, s.path.relative_to(root).as_posix()) for s in scans] == [
        ("1.2.3", "luna/1.2.3.mhd"), ("lung1_image", "pyrad/lung1_image.nrrd"),
        ("series7", "dicom/series7")]
    reasons = {Path(s.input).name: s.reason for s in skipped}
    assert reasons["missing.nii"] == "not found"
    assert "label map or mask" in reasons["lung1_label.nrrd"]
    assert "label map or mask" in reasons["p1.nii.gz"]
    # an explicit label file and an explicit empty folder are taken (and judged when read)
    (tmp_path / "empty").mkdir()
    scans, _ = find_scans([root / "pyrad" / "lung1_label.nrrd", tmp_path / "empty"])
    assert [s.id for s in scans] == ["empty", "lung1_label"]
    scans, skipped = find_scans([out], exclude=[out])
    assert scans == [] and skipped[0].reason == "is the output folder"


def test_source_sha256_covers_raw_and_dicom_files(tmp_path):
    hu = ct_volume()
    mhd = write_sitk(tmp_path / "ct.mhd", hu, (1, 1, 1))
    before = source_sha256(mhd)
    raw = tmp_path / "ct.raw"
    data = bytearray(raw.read_bytes())
    data[10] ^= 1
    raw.write_bytes(bytes(data))
    assert source_sha256(mhd) != before
    write_ct_series(tmp_path / "s", hu, (1, 1, 1))
    first = source_sha256(tmp_path / "s")
    assert first == source_sha256(tmp_path / "s")
    np.save(tmp_path / "s" / "extra.npy", hu)
    assert source_sha256(tmp_path / "s") != first


def test_pipes_and_devices_are_skipped_not_read(tmp_path):
    """Reading a pipe or /dev/zero would never end: such inputs are skipped with the reason."""
    os.mkfifo(tmp_path / "pipe.nii.gz")
    scans, skipped = find_scans([tmp_path / "pipe.nii.gz", "/dev/zero"])
    assert scans == []
    assert [(s.input, s.reason.split(";")[0]) for s in skipped] == [
        (str(tmp_path / "pipe.nii.gz"), "not a regular file (a device, pipe or socket)"),
        ("/dev/zero", "not a regular file (a device, pipe or socket)")]
