"""prepare(): the cohort contract, idempotence, crash safety, bad input, `semgen prepare`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

from semantic_genesis.cli import main
from semantic_genesis.io import normalize_intensity
from semantic_genesis.io.manifests import read_cohort
from semantic_genesis.prepare.cohort import PrepareConfig, assign_splits, prepare
from tests.io.scans import (
    ANATOMICAL,
    EXAMPLE_4D,
    ct_volume,
    write_ct_series,
    write_nifti_nib,
    write_sitk,
)

SMALL = PrepareConfig(min_shape=(8, 8, 4))
SPACING = (0.7, 0.8, 2.5)


def _good_inputs(root: Path) -> list[Path]:
    return [write_nifti_nib(root / "ct1.nii.gz", ct_volume(seed=1), SPACING),
            write_sitk(root / "ct2.mhd", ct_volume(seed=2), SPACING),
            write_ct_series(root / "ct3", ct_volume(seed=3), SPACING) and root / "ct3",
            ANATOMICAL]


def _files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted((folder / "volumes").iterdir())}


def test_prepare_writes_the_contract(tmp_path):
    inputs = _good_inputs(tmp_path / "in")
    report = prepare(inputs, tmp_path / "cohort", SMALL)
    records = {r.id: r for r in read_cohort(tmp_path / "cohort")}
    assert sorted(records) == ["anatomical", "ct1", "ct2", "ct3"] and report.n_prepared == 4
    assert sorted(r.split for r in records.values()) == ["train", "train", "train", "val"]
    assert {r.modality for r in records.values()} == {"ct", "mr"}
    assert records["anatomical"].modality == "mr" and records["ct3"].modality == "ct"
    ct1 = records["ct1"]
    assert ct1.shape == (20, 24, 12) and ct1.spacing == pytest.approx(SPACING)
    assert ct1.file == "volumes/ct1.npy" and len(ct1.sha256) == 64
    stored = np.load(tmp_path / "cohort" / ct1.file, mmap_mode="r")
    assert stored.dtype == np.float16 and stored.min() >= 0 and stored.max() <= 1
    expected = normalize_intensity(ct_volume(seed=1), "ct").astype(np.float16)
    np.testing.assert_array_equal(stored, expected)
    saved = json.loads((tmp_path / "cohort" / "prepare-report.json").read_text())
    assert saved["n_prepared"] == 4 and saved["skipped"] == []
    assert "run_info" in saved and saved["config"]["min_shape"] == [8, 8, 4]
    by_id = {v["id"]: v for v in saved["volumes"]}
    assert "air in Hounsfield units" in by_id["ct2"]["modality_reason"]
    config = yaml.safe_load((tmp_path / "cohort" / "prepare-config.yaml").read_text())
    assert config["modality"] == "auto" and config["dtype"] == "float16"


def test_rerun_is_idempotent_and_redoes_only_what_changed(tmp_path):
    inputs = _good_inputs(tmp_path / "in")
    out = tmp_path / "cohort"
    prepare(inputs, out, SMALL)
    csv_before, files_before = (out / "cohort.csv").read_text(), _files(out)
    report = prepare(inputs, out, SMALL)
    assert {v["status"] for v in report.volumes} == {"reused"}
    assert _files(out) == files_before and (out / "cohort.csv").read_text() == csv_before
    write_sitk(tmp_path / "in" / "ct2.mhd", ct_volume(seed=9), SPACING)  # new content
    report = prepare(inputs, out, SMALL)
    assert {v["id"] for v in report.volumes if v["status"] == "prepared"} == {"ct2"}
    report = prepare(inputs, out, PrepareConfig(min_shape=(8, 8, 4), modality="ct"))
    assert {v["status"] for v in report.volumes} == {"prepared"}  # a new recipe redoes all
    report = prepare(inputs[:2], out, SMALL)  # fewer inputs: the others leave the folder
    assert sorted(report.removed) == ["anatomical.json", "anatomical.npy", "ct3.json", "ct3.npy"]
    assert sorted(p.name for p in (out / "volumes").iterdir()) == [
        "ct1.json", "ct1.npy", "ct2.json", "ct2.npy"]


def test_leftovers_of_a_killed_run_are_cleaned_and_redone(tmp_path):
    inputs = _good_inputs(tmp_path / "in")
    out = tmp_path / "cohort"
    prepare(inputs, out, SMALL)
    # what a kill can leave: a half-written temporary, a volume whose final sidecar never
    # came (its sidecar still says "writing"), a sidecar whose volume was damaged afterwards
    (out / "volumes" / ".tmp-ct1.npy.x1y2z3w4.npy").write_bytes(b"\x93NUMPY half")
    (out / ".tmp-cohort.csv.abcd_123.csv").write_text("id,split\n")
    side = json.loads((out / "volumes" / "ct2.json").read_text())
    (out / "volumes" / "ct2.json").write_text(json.dumps({**side, "status": "writing"}))
    (out / "volumes" / "ct3.npy").write_bytes(b"\x93NUMPY broken")
    # temporaries with names prepare never gives are not its own: left alone
    (out / ".tmp-my-notes.txt").write_text("mine")
    (out / "volumes" / ".tmp-ct1.npy.short.npy").write_text("mine too")
    report = prepare(inputs, out, SMALL)
    status = {v["id"]: v["status"] for v in report.volumes}
    assert status == {"anatomical": "reused", "ct1": "reused", "ct2": "prepared",
                      "ct3": "prepared"}
    assert sorted(p.name for p in out.rglob(".tmp-*")) == [".tmp-ct1.npy.short.npy",
                                                          ".tmp-my-notes.txt"]
    for r in read_cohort(out):
        assert np.load(out / r.file, mmap_mode="r").shape == r.shape


def _sidecar_says_ok(path: Path) -> bool:
    try:
        return json.loads(path.read_text())["status"] == "ok"
    except (OSError, ValueError):
        return False


def test_prepare_killed_mid_run_then_rerun(tmp_path):
    """A `semgen prepare` subprocess gets SIGKILL once its first volume is done."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(8):
        hu = ct_volume((128, 112, 64), seed=i)
        nib.save(nib.Nifti1Image(hu, np.diag([0.7, 0.7, 1.5, 1])), src / f"v{i}.nii.gz")
    out = tmp_path / "cohort"
    env = {**os.environ, "SEMGEN_QUIET": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    args = [str(src), "--out", str(out), "--min-shape", "8", "8", "4"]
    proc = subprocess.Popen([sys.executable, "-m", "semantic_genesis", "prepare", *args],
                            env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not _sidecar_says_ok(out / "volumes" / "v0.json"):
        assert proc.poll() is None and time.monotonic() < deadline, "prepare ended early"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "cohort.csv").exists()  # killed mid-run
    first = (out / "volumes" / "v0.npy").stat().st_mtime_ns
    assert main(["prepare", *args]) == 0
    records = read_cohort(out)
    assert sorted(r.id for r in records) == [f"v{i}" for i in range(8)]  # complete, no duplicates
    assert not list(out.rglob(".tmp-*"))  # no partial file
    for r in records:
        assert np.load(out / r.file, mmap_mode="r").shape == (128, 112, 64)
    assert (out / "volumes" / "v0.npy").stat().st_mtime_ns == first  # not redone
    assert sorted(p.name for p in (out / "volumes").iterdir()) == sorted(
        f"v{i}{ext}" for i in range(8) for ext in (".json", ".npy"))


@pytest.mark.slow
def test_torchrun_ranks_share_the_work(tmp_path):
    """Two ranks under torchrun: each prepares its share, rank 0 assembles one cohort."""
    inputs = _good_inputs(tmp_path / "in")
    env = {**os.environ, "SEMGEN_QUIET": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    out = tmp_path / "cohort"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc-per-node", "2", "-m", "semantic_genesis", "prepare",
                    *map(str, inputs), "--out", str(out), "--min-shape", "8", "8", "4"],
                   env=env, check=True, capture_output=True)
    assert sorted(r.id for r in read_cohort(out)) == ["anatomical", "ct1", "ct2", "ct3"]
    report = json.loads((out / "prepare-report.json").read_text())
    assert sorted(v["status"] for v in report["volumes"]) == [
        "done by another rank", "done by another rank", "prepared", "prepared"]
    single = tmp_path / "single"
    prepare(inputs, single, SMALL)
    assert read_cohort(single) == read_cohort(out)


def test_workers_give_the_same_cohort(tmp_path):
    inputs = [*_good_inputs(tmp_path / "in"), _bad_text_nifti(tmp_path / "in")]
    prepare(inputs, tmp_path / "one", SMALL)
    report = prepare(inputs, tmp_path / "two", PrepareConfig(min_shape=(8, 8, 4), workers=2))
    assert report.skipped == [{"input": str(inputs[-1]), "reason":
                               "a text file, although named .gz; not a NIfTI image"}]
    assert read_cohort(tmp_path / "one") == read_cohort(tmp_path / "two")
    for r in read_cohort(tmp_path / "one"):
        assert (tmp_path / "one" / r.file).read_bytes() == (tmp_path / "two" / r.file).read_bytes()


def test_resampling_is_optional(tmp_path):
    path = write_nifti_nib(tmp_path / "ct.nii.gz", ct_volume(), SPACING)
    prepare([path], tmp_path / "c", PrepareConfig(min_shape=(8, 8, 4), spacing=(1.4, 1.6, 2.5)))
    (record,) = read_cohort(tmp_path / "c")
    assert record.shape == (10, 12, 12) and record.spacing == (1.4, 1.6, 2.5)
    assert record.split == "train"  # a single patient is never held out


def test_modality_none_and_constant_volumes(tmp_path):
    unit = np.random.default_rng(0).random((16, 12, 8)).astype(np.float32)
    np.save(tmp_path / "unit.npy", unit)  # the reference's pre-normalised .npy
    np.save(tmp_path / "hu.npy", ct_volume())
    np.save(tmp_path / "flat.npy", np.full((16, 12, 8), 0.3, np.float32))
    report = prepare([tmp_path / n for n in ("unit.npy", "hu.npy", "flat.npy")],
                     tmp_path / "c", PrepareConfig(min_shape=(8, 8, 4), modality="none",
                                                   dtype="float32"))
    (record,) = report.records
    assert record.id == "unit" and record.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_array_equal(np.load(tmp_path / "c" / record.file), unit)
    reasons = {Path(s["input"]).name: s["reason"] for s in report.skipped}
    assert "not [0, 1]; use modality ct or mr" in reasons["hu.npy"]
    assert "same value (0.3)" in reasons["flat.npy"]


def test_splits_are_per_patient_and_deterministic():
    ids = [f"p{i:02d}" for i in range(30)]
    a = assign_splits(ids, 0.1, seed=0)
    assert a == assign_splits(list(reversed(ids)), 0.1, seed=0)
    assert sum(s == "val" for s in a.values()) == 3
    assert a != assign_splits(ids, 0.1, seed=1)
    assert list(assign_splits(["a", "b"], 0.1, 0).values()).count("val") == 1
    assert set(assign_splits(["a", "b"], 0.0, 0).values()) == {"train"}
    assert set(assign_splits(["a"], 0.5, 0).values()) == {"train"}


# --- bad input: a clear reason in the report (and on stderr), the rest still prepared ----------


def _bad_truncated_nifti(d: Path) -> Path:
    data = write_nifti_nib(d / "trunc.nii.gz", ct_volume(), SPACING).read_bytes()
    (d / "trunc.nii.gz").write_bytes(data[: len(data) // 3])
    return d / "trunc.nii.gz"


def _bad_text_nifti(d: Path) -> Path:
    (d / "notes.nii.gz").write_text("not an image\n")
    return d / "notes.nii.gz"


def _bad_mhd_without_raw(d: Path) -> Path:
    write_sitk(d / "noraw.mhd", ct_volume(), SPACING)
    (d / "noraw.raw").unlink()
    return d / "noraw.mhd"


def _bad_2d(d: Path) -> Path:
    return write_sitk(d / "flat.nrrd", ct_volume()[:, :, :1], SPACING)


def _bad_4d(d: Path) -> Path:
    return EXAMPLE_4D


def _bad_nan(d: Path) -> Path:
    hu = ct_volume().astype(np.float32)
    hu[3, 4, 5] = np.nan
    return write_nifti_nib(d / "nan.nii.gz", hu, SPACING)


def _bad_inf(d: Path) -> Path:
    hu = ct_volume().astype(np.float32)
    hu[1, 1, 1] = np.inf
    np.save(d / "inf.npy", hu)
    return d / "inf.npy"


def _bad_small(d: Path) -> Path:
    return write_nifti_nib(d / "tiny.nii", ct_volume((6, 30, 12)), SPACING)


def _bad_empty_dicom(d: Path) -> Path:
    (d / "dicom_empty").mkdir()
    return d / "dicom_empty"


BAD = {
    "truncated NIfTI": (_bad_truncated_nifti, "truncated or corrupt NIfTI"),
    "text named .nii.gz": (_bad_text_nifti, "a text file"),
    ".mhd without .raw": (_bad_mhd_without_raw, "'noraw.raw' named in the header is missing"),
    "2D image": (_bad_2d, "2D image"),
    "4D image": (_bad_4d, "holds 2 3D volumes"),
    "NaN voxels": (_bad_nan, "1 NaN/Inf voxel"),
    "Inf voxels": (_bad_inf, "1 NaN/Inf voxel"),
    "smaller than the patch": (_bad_small, "smaller than the minimum patch 8x8x4"),
    "empty DICOM folder": (_bad_empty_dicom, "empty folder"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_reported_and_the_rest_prepared(tmp_path, case, capsys):
    make, reason = BAD[case]
    (tmp_path / "in").mkdir()
    bad = make(tmp_path / "in")
    good = write_nifti_nib(tmp_path / "in" / "good.nii.gz", ct_volume(), SPACING)
    out = tmp_path / "cohort"
    assert main(["prepare", str(bad), str(good), "--out", str(out),
                 "--min-shape", "8", "8", "4"]) == 0
    assert [r.id for r in read_cohort(out)] == ["good"]
    (skipped,) = json.loads((out / "prepare-report.json").read_text())["skipped"]
    assert skipped["input"] == str(bad) and reason in skipped["reason"]
    err = capsys.readouterr().err.splitlines()
    (line,) = [ln for ln in err if "skipped" in ln]
    assert str(bad) in line and reason in line


def test_mixed_cohort_of_good_and_bad_inputs(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    bad = [make(src) for make, _ in BAD.values() if make not in (_bad_4d, _bad_empty_dicom)]
    # an empty folder met while searching is nothing to report; given explicitly, it is
    empty = _bad_empty_dicom(tmp_path)
    mixed = src / "mixed_dicom"  # two series: the largest is read and the note says so
    write_ct_series(mixed, ct_volume(seed=5), SPACING, prefix="a")
    write_ct_series(mixed, ct_volume(seed=6)[:, :, :4], SPACING, prefix="b")
    good = _good_inputs(src)
    out = tmp_path / "cohort"
    (src / "empty_subfolder").mkdir()
    assert main(["prepare", str(src), str(EXAMPLE_4D), str(ANATOMICAL), str(empty),
                 "--out", str(out), "--min-shape", "8", "8", "4"]) == 0
    assert sorted(r.id for r in read_cohort(out)) == [
        "anatomical", "ct1", "ct2", "ct3", "mixed_dicom"]
    report = json.loads((out / "prepare-report.json").read_text())
    assert sorted(s["input"] for s in report["skipped"]) == sorted(
        str(p) for p in [*bad, EXAMPLE_4D, empty])
    note = next(v for v in report["volumes"] if v["id"] == "mixed_dicom")["notes"][0]
    assert "2 DICOM series; read the largest" in note
    err = capsys.readouterr().err
    assert err.count("skipped") == len(bad) + 2 and "Traceback" not in err
    assert "--modality auto chose ct" in err and "--modality auto chose mr" in err
    assert len(good) == 4


def test_exit_codes(tmp_path, capsys):
    good = write_nifti_nib(tmp_path / "ct.nii.gz", ct_volume(), SPACING)
    assert main(["prepare", str(good), "--out", str(tmp_path / "ok"), "--min-shape", "8", "8",
                 "4"]) == 0
    (tmp_path / "bad.nii.gz").write_text("text")
    assert main(["prepare", str(tmp_path / "bad.nii.gz"), "--out", str(tmp_path / "none")]) == 2
    assert "no volume was prepared" in capsys.readouterr().err
    assert main(["prepare", str(good), "--out", str(tmp_path / "x"), "--val-fraction",
                 "1.5"]) == 2
    for argv in (["prepare", str(good)], ["prepare", str(good), "--out", "x", "--modality",
                                          "pet"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
