"""`semgen prepare` never loses or changes the user's files, stops clearly on disk faults, flags
doubtful results and refuses impossible settings (issue 14)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semantic_genesis.cli import main
from semantic_genesis.io import normalize_intensity
from semantic_genesis.io.manifests import read_cohort
from semantic_genesis.prepare.cohort import PrepareConfig, prepare
from semantic_genesis.utils.config import from_dict
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.outdir import claim_output
from tests.disks import mounted_tmpfs, remount_tmpfs
from tests.io.scans import ANATOMICAL, ct_volume, write_nifti_nib

SMALL = ["--min-shape", "8", "8", "4"]
SPACING = (0.7, 0.8, 2.5)
ROOT = Path(__file__).parents[1]


def _scans(folder: Path, n: int = 3) -> list[Path]:
    return [write_nifti_nib(folder / f"ct{i}.nii.gz", ct_volume(seed=i), SPACING)
            for i in range(n)]


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _prepare(*args: str | Path) -> int:
    return main(["prepare", *map(str, args), *SMALL])


# --- the folder belongs to prepare --------------------------------------------------------------


def test_a_folder_of_the_users_files_is_refused_and_left_unchanged(tmp_path, capsys):
    scans = _scans(tmp_path / "in")
    out = tmp_path / "mine"
    (out / "volumes").mkdir(parents=True)
    np.save(out / "volumes" / "ct0.npy", np.arange(10))  # the user's, named like a scan id
    (out / "notes.txt").write_text("my notes")
    before = _snapshot(out)
    assert _prepare(*scans, "--out", out) == 2
    assert "did not write" in capsys.readouterr().err
    assert _snapshot(out) == before and sorted(os.listdir(out)) == ["notes.txt", "volumes"]


def test_an_out_holding_an_input_is_refused_and_the_input_unchanged(tmp_path, capsys):
    out = tmp_path / "cohort"
    (scan,) = _scans(out / "scans", 1)
    before = scan.read_bytes()
    assert _prepare(scan, "--out", out) == 2
    assert "contains (or is) the input" in capsys.readouterr().err
    assert scan.read_bytes() == before and not (out / "volumes").exists()
    assert _prepare(scan, "--out", scan) == 2  # --out is the input itself
    assert scan.read_bytes() == before


def test_a_rerun_removes_only_its_own_volumes_and_says_so(tmp_path, capsys):
    scans = _scans(tmp_path / "in", 4)
    out = tmp_path / "cohort"
    assert _prepare(*scans, "--out", out) == 0
    np.save(out / "volumes" / "theirs.npy", np.arange(5))  # no sidecar: not prepare's
    (out / "volumes" / "theirs.json").write_text('{"mine": true}')
    capsys.readouterr()
    assert _prepare(*scans[:2], "--out", out) == 0
    err = capsys.readouterr().err
    assert "removed 2 volume(s) of the earlier run" in err and "ct2, ct3" in err
    assert sorted(os.listdir(out / "volumes")) == [
        "ct0.json", "ct0.npy", "ct1.json", "ct1.npy", "theirs.json", "theirs.npy"]
    assert _prepare(*scans[:2], "--out", out, "--modality", "ct") == 0  # other settings
    assert "redid 2 volume(s) of the earlier run" in capsys.readouterr().err


def test_a_users_file_named_like_a_volume_is_never_overwritten(tmp_path, capsys):
    scans = _scans(tmp_path / "in", 2)
    out = tmp_path / "cohort"
    assert _prepare(scans[0], "--out", out) == 0
    np.save(out / "volumes" / "ct1.npy", np.arange(7))  # the user's, no sidecar
    before = (out / "volumes" / "ct1.npy").read_bytes()
    assert _prepare(*scans, "--out", out) == 0
    assert (out / "volumes" / "ct1.npy").read_bytes() == before
    assert not (out / "volumes" / "ct1.json").exists()
    assert [r.id for r in read_cohort(out)] == ["ct0"]
    err = capsys.readouterr().err
    assert f"skipped {scans[1]}" in err and "was not written by `semgen prepare`" in err


def test_a_folder_of_an_earlier_release_is_reused_keeping_foreign_files(tmp_path):
    scans = _scans(tmp_path / "in", 2)
    out = tmp_path / "cohort"
    prepare(scans, out, PrepareConfig(min_shape=(8, 8, 4)))
    (out / ".semgen-output.json").unlink()  # as written before markers existed
    (out / ".semgen.lock").unlink()
    np.save(out / "volumes" / "extra.npy", np.arange(3))
    report = prepare(scans[:1], out, PrepareConfig(min_shape=(8, 8, 4)))
    assert report.removed_ids == ["ct1"] and (out / "volumes" / "extra.npy").is_file()


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    scans = _scans(tmp_path / "in", 1)
    out = tmp_path / "cohort"
    busy = pytest.raises(SemgenError, match="another `semgen prepare` is writing")
    with claim_output(out, "prepare"), busy:  # another run holds the folder
        prepare(scans, out, PrepareConfig(min_shape=(8, 8, 4)))
    assert not (out / "volumes").exists()
    prepare(scans, out, PrepareConfig(min_shape=(8, 8, 4)))  # the lock died with its holder
    assert [r.id for r in read_cohort(out)] == ["ct0"]


# --- disk faults --------------------------------------------------------------------------------


def test_a_full_disk_stops_with_one_line_and_a_retry_works(tmp_path, capsys, monkeypatch):
    scans = _scans(tmp_path / "in", 3)
    out = tmp_path / "cohort"
    real_write = np.lib.format.write_array

    def full_disk(fh, array, *args, **kwargs):
        fh.write(b"\x93NUMPY partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", full_disk)
    assert _prepare(*scans, "--out", out) == 2
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert f"{out / 'volumes' / 'ct0.npy'}: no space left on the device" in line
    assert not list(out.rglob(".tmp-*")) and not (out / "cohort.csv").exists()
    monkeypatch.setattr(np.lib.format, "write_array", real_write)
    assert _prepare(*scans, "--out", out) == 0
    assert [r.id for r in read_cohort(out)] == ["ct0", "ct1", "ct2"]


@pytest.mark.slow
def test_a_real_full_then_read_only_disk(tmp_path):
    scans = [write_nifti_nib(tmp_path / "in" / f"v{i}.nii.gz", ct_volume((64, 64, 32), seed=i),
                             SPACING) for i in range(3)]
    env = {**os.environ, "SEMGEN_QUIET": "1", "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "semantic_genesis", "prepare", *map(str, scans)]
    with mounted_tmpfs(tmp_path / "disk", "256k") as disk:
        run = subprocess.run([*cli, "--out", str(disk / "c")], capture_output=True, text=True,
                             env=env)
        assert run.returncode == 2 and "Traceback" not in run.stderr
        assert "no space left on the device" in run.stderr and str(disk / "c") in run.stderr
        assert not list(disk.rglob(".tmp-*"))
        remount_tmpfs(disk, "size=8m")
        run = subprocess.run([*cli, "--out", str(disk / "c")], capture_output=True, env=env)
        assert run.returncode == 0 and len(read_cohort(disk / "c")) == 3
        remount_tmpfs(disk, "ro")
        for out in (disk / "c", disk / "new"):
            run = subprocess.run([*cli, "--out", str(out)], capture_output=True, text=True,
                                 env=env)
            assert run.returncode == 2 and "read-only" in run.stderr, run.stderr
            assert "Traceback" not in run.stderr


# --- every file error is a per-file error ----------------------------------------------------------


def test_a_name_that_is_not_utf8_does_not_stop_the_cohort(tmp_path):
    """SimpleITK used to abort the whole process (exit 134) on such a name."""
    (good,) = _scans(tmp_path / "in", 1)
    os.link(good, os.path.join(os.fsencode(tmp_path / "in"), b"scan_\xff.nii.gz"))
    (tmp_path / "in" / "empty.nii.gz").write_bytes(b"")
    (tmp_path / "in" / "text.mhd").write_text("hello\n")
    env = {**os.environ, "SEMGEN_QUIET": "1", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-m", "semantic_genesis", "prepare",
                          str(tmp_path / "in"), "--out", str(tmp_path / "c"), *SMALL],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    records = {r.id: r for r in read_cohort(tmp_path / "c")}
    assert sorted(records) == ["ct0", "scan"]
    assert records["scan"].source.endswith("scan_\\xff.nii.gz")
    assert records["scan"].sha256 == records["ct0"].sha256
    assert "empty.nii.gz: empty file" in run.stderr.replace("skipped ", "")
    assert "text.mhd" in run.stderr and "Traceback" not in run.stderr


# --- results right or loudly flagged --------------------------------------------------------------


def test_modality_ct_on_an_mr_is_flagged(tmp_path, capsys):
    out = tmp_path / "c"
    assert _prepare(ANATOMICAL, "--out", out, "--modality", "ct") == 0
    err = capsys.readouterr().err
    assert f"warning: {ANATOMICAL}: --modality ct was given, but the values look like MR" in err
    (volume,) = json.loads((out / "prepare-report.json").read_text())["volumes"]
    assert "look like MR" in volume["warnings"][0] and "stored values span only" in \
        volume["warnings"][0]
    (scan,) = _scans(tmp_path / "in", 1)
    assert _prepare(scan, "--out", tmp_path / "m", "--modality", "mr") == 0
    assert f"warning: {scan}: --modality mr was given, but the values look like CT" in \
        capsys.readouterr().err


def test_a_mixed_ct_and_mr_folder_is_flagged(tmp_path, capsys):
    scans = _scans(tmp_path / "in", 2)
    assert _prepare(*scans, ANATOMICAL, "--out", tmp_path / "c") == 0
    err = capsys.readouterr().err
    assert f"warning: {tmp_path / 'c'}: the cohort mixes modalities (2 CT, 1 MR volumes)" in err
    report = json.loads((tmp_path / "c" / "prepare-report.json").read_text())
    assert any("mixes modalities" in w for w in report["warnings"])


# --- settings are checked before any work -------------------------------------------------------


@pytest.mark.parametrize("flags, words", [
    (["--seed", "-1"], "PrepareConfig.seed = -1: must be at least 0"),
    (["--workers", "0"], "PrepareConfig.workers = 0: must be at least 1"),
    (["--val-fraction", "1"], "PrepareConfig.val_fraction = 1.0: must be less than 1"),
    (["--spacing", "1", "0", "1"], "PrepareConfig.spacing"),
    (["--min-shape", "8", "0", "4"], "PrepareConfig.min_shape"),
    (["--window", "100", "-100"], "PrepareConfig.window = (100.0, -100.0): the low end"),
    (["--percentiles", "5", "150"], "PrepareConfig.percentiles = (5.0, 150.0): must be at most"),
    (["--percentiles", "60", "40"], "the low end must be below the high end"),
    (["--npy-spacing", "nan", "1", "1"], "must be a finite number"),
])
def test_impossible_settings_are_refused_before_any_work(tmp_path, capsys, flags, words):
    (scan,) = _scans(tmp_path / "in", 1)
    assert main(["prepare", str(scan), "--out", str(tmp_path / "c"), *flags]) == 2
    assert words in capsys.readouterr().err and not (tmp_path / "c").exists()


def test_yaml_settings_are_checked_alike():
    with pytest.raises(SemgenError, match="PrepareConfig.modality = 'pet': must be one of"):
        from_dict(PrepareConfig, {"modality": "pet"})
    with pytest.raises(SemgenError, match="PrepareConfig.workers = '2': must be a whole number"):
        from_dict(PrepareConfig, {"workers": "2"})


def test_window_and_percentiles_flags_take_effect(tmp_path):
    (scan,) = _scans(tmp_path / "in", 1)
    assert _prepare(scan, "--out", tmp_path / "c", "--modality", "ct", "--window", "-500",
                    "500", "--dtype", "float32") == 0
    stored = np.load(tmp_path / "c" / "volumes" / "ct0.npy")
    np.testing.assert_array_equal(stored, normalize_intensity(ct_volume(seed=0), "ct",
                                                              (-500, 500)))
    assert _prepare(ANATOMICAL, "--out", tmp_path / "m", "--modality", "mr", "--percentiles",
                    "10", "90", "--dtype", "float32") == 0
    stored = np.load(tmp_path / "m" / "volumes" / "anatomical.npy")
    assert np.mean(stored == 0) >= 0.09 and np.mean(stored == 1) >= 0.09


def test_an_unevenly_spaced_dicom_series_is_flagged(tmp_path, capsys):
    import pydicom

    from tests.io.scans import write_ct_series

    write_ct_series(tmp_path / "series", ct_volume(), SPACING)
    for f in (tmp_path / "series").iterdir():
        if pydicom.dcmread(f).InstanceNumber == 6:
            f.unlink()  # a missing middle slice
    out = tmp_path / "c"
    assert _prepare(tmp_path / "series", "--out", out, "--spacing", "1", "1", "2.5") == 0
    err = capsys.readouterr().err
    assert f"warning: {tmp_path / 'series'}: slices are unevenly spaced (gaps from 2.5 to 5" in err
    (volume,) = json.loads((out / "prepare-report.json").read_text())["volumes"]
    assert "unevenly spaced" in volume["warnings"][0]
