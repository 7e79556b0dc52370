"""ITK's NIfTI writer reports a short write only on stderr; write_nifti must raise instead."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from semantic_genesis.io import Volume, write_nifti
from semantic_genesis.io.writers import _check_written
from semantic_genesis.utils.errors import SemgenError
from tests.disks import mounted_tmpfs


def test_an_itk_error_line_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SemgenError, match="NWAD: wrote only 0"):
        _check_written(["** ERROR: NWAD: wrote only 0 of 100 bytes to file"], tmp_path / "t",
                       tmp_path / "a.nii")


def test_other_c_messages_are_passed_on(tmp_path: Path, capsys) -> None:
    _check_written(["a note from ITK"], tmp_path / "t", tmp_path / "a.nii")
    assert "a note from ITK" in capsys.readouterr().err


def test_a_normal_write_round_trips(tmp_path: Path) -> None:
    import nibabel as nib

    array = np.random.default_rng(0).random((8, 9, 10)).astype(np.float32)
    path = write_nifti(Volume(array, (1.0, 2.0, 3.0)), tmp_path / "a.nii.gz")
    np.testing.assert_array_equal(np.asarray(nib.load(path).dataobj), array)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["a.nii", "a.nii.gz"])
def test_a_full_disk_is_an_error_not_a_truncated_file(tmp_path: Path, name: str) -> None:
    """Before: no exception, and a truncated (or empty) file under the final name."""
    array = np.random.default_rng(0).random((96, 96, 64)).astype(np.float32)
    with mounted_tmpfs(tmp_path / "disk", "48k") as disk:
        with pytest.raises(OSError) as info:
            write_nifti(Volume(array, (1.0, 1.0, 1.0)), disk / name)
        assert info.value.errno == errno.ENOSPC
        assert list(disk.iterdir()) == []
