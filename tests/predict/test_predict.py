"""`semgen predict` on segmentation checkpoints: geometry, folders with a broken file, resume."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from semantic_genesis.cli import main
from semantic_genesis.predict import PredictConfig, predict
from tests.predict.conftest import LEVEL, phantom_arrays, write_scan


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "predictions.csv") as fh:
        return {Path(r["input"]).name: r for r in csv.DictReader(fh)}


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 2 * float(np.sum(a & b)) / max(1, int(a.sum() + b.sum()))


def test_label_map_lies_on_the_input_grid(threshold_checkpoint, phantom_scan, tmp_path) -> None:
    scan, mask = phantom_scan
    out = tmp_path / "out"
    code = main(["predict", str(threshold_checkpoint), str(scan), "--out", str(out),
                 "--probabilities", "--montage"])
    assert code == 0
    image, label = sitk.ReadImage(str(scan)), sitk.ReadImage(str(out / "labels/phantom.nii.gz"))
    assert label.GetSize() == image.GetSize()
    np.testing.assert_allclose(label.GetSpacing(), image.GetSpacing(), rtol=1e-6)
    np.testing.assert_allclose(label.GetOrigin(), image.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(label.GetDirection(), image.GetDirection(), atol=1e-6)
    assert label.GetPixelID() == sitk.sitkUInt8
    predicted = sitk.GetArrayFromImage(label).transpose(2, 1, 0)
    assert _dice(predicted, mask) > 0.8  # resampled to 1.5 mm and back: edges may move a voxel
    prob = sitk.ReadImage(str(out / "probabilities/phantom.nii.gz"))
    assert prob.GetPixelID() == sitk.sitkFloat32 and prob.GetSize() == image.GetSize()
    values = sitk.GetArrayFromImage(prob)
    inside = 1 / (1 + np.exp(-40 * (0.6 - LEVEL)))  # 200 HU is 0.6 on the window
    assert values.min() >= 0 and abs(values.max() - inside) < 1e-3
    assert (out / "labels/phantom.png").stat().st_size > 1000
    row = _rows(out)["phantom.nii.gz"]
    assert row["status"] == "done" and int(row["voxels_labelled"]) == int(np.sum(predicted))


def test_native_orientation_gives_the_same_map(threshold_checkpoint, phantom_scan,
                                               tmp_path) -> None:
    """The threshold network is orientation-free: reorienting must change nothing but the
    resampling grid, so both maps overlap the nodule."""
    scan, mask = phantom_scan
    result = predict(threshold_checkpoint, [scan], tmp_path / "native",
                     PredictConfig(orientation="native"))
    assert result.count("done") == 1
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "native/labels/phantom.nii.gz")))
    assert _dice(label.transpose(2, 1, 0), mask) > 0.8


def test_a_broken_file_is_reported_and_the_rest_finish(threshold_checkpoint, tmp_path,
                                                       capsys) -> None:
    hu, _ = phantom_arrays()
    folder = tmp_path / "scans"
    write_scan(hu, folder / "a.nii.gz")
    write_scan(hu[::-1].copy(), folder / "c.nrrd")
    (folder / "b.nii.gz").write_bytes(b"\x1f\x8b\x08\x00 not a real gzip stream" * 10)
    out = tmp_path / "out"
    assert main(["predict", str(threshold_checkpoint), str(folder), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "b.nii.gz" in err and "failed" in err
    rows = _rows(out)
    assert rows["b.nii.gz"]["status"] == "failed" and rows["b.nii.gz"]["message"]
    assert rows["a.nii.gz"]["status"] == rows["c.nrrd"]["status"] == "done"
    assert (out / "labels/a.nii.gz").is_file() and (out / "labels/c.nii.gz").is_file()
    assert not (out / "labels/b.nii.gz").exists()


def test_resume_skips_done_cases_and_redoes_changed_ones(threshold_checkpoint, tmp_path) -> None:
    hu, _ = phantom_arrays()
    folder = tmp_path / "scans"
    for name in ("a", "b"):
        write_scan(hu, folder / f"{name}.nii.gz")
    out = tmp_path / "out"
    first = predict(threshold_checkpoint, [folder], out)
    assert first.count("done") == 2
    stamp = (out / "labels/a.nii.gz").stat().st_mtime_ns
    again = predict(threshold_checkpoint, [folder], out)
    assert again.count("reused") == 2 and again.count("done") == 0
    assert (out / "labels/a.nii.gz").stat().st_mtime_ns == stamp
    assert {r["status"] for r in _rows(out).values()} == {"reused"}
    write_scan(hu[:, ::-1].copy(), folder / "b.nii.gz")  # a changed input is redone
    changed = predict(threshold_checkpoint, [folder], out)
    assert {r["case"]: r["status"] for r in changed.rows} == {"a": "reused", "b": "done"}
    other = predict(threshold_checkpoint, [folder], out, PredictConfig(overlap=0.5))
    assert other.count("done") == 2  # another setting: redone
    assert predict(threshold_checkpoint, [folder], out, PredictConfig(overlap=0.5),
                   overwrite=True).count("done") == 2


def test_probabilities_dropped_on_a_rerun_are_removed(threshold_checkpoint, phantom_scan,
                                                      tmp_path) -> None:
    scan, _ = phantom_scan
    out = tmp_path / "out"
    predict(threshold_checkpoint, [scan], out, PredictConfig(probabilities=True))
    assert (out / "probabilities/phantom.nii.gz").is_file()
    predict(threshold_checkpoint, [scan], out)
    assert not (out / "probabilities/phantom.nii.gz").exists()
    assert (out / "labels/phantom.nii.gz").is_file()


def test_a_folder_holding_someone_elses_files_is_refused_untouched(
        threshold_checkpoint, phantom_scan, tmp_path, capsys) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "labels").mkdir()
    (theirs / "labels" / "scan.nii.gz").write_bytes(b"their own segmentation")
    code = main(["predict", str(threshold_checkpoint), str(phantom_scan), "--out", str(theirs)])
    assert code == 2 and "did not write" in capsys.readouterr().err
    assert (theirs / "labels" / "scan.nii.gz").read_bytes() == b"their own segmentation"
    assert sorted(p.name for p in theirs.rglob("*")) == ["labels", "scan.nii.gz"]
