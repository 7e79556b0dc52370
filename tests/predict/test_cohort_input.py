"""`semgen predict` on a prepared cohort: volumes already in [0, 1], geometry from cohort.csv."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from semantic_genesis.io.manifests import CohortRecord, write_cohort
from semantic_genesis.predict import predict
from semantic_genesis.utils.atomic import save_npy_atomic


def test_cohort_volumes_are_not_normalised_again(threshold_checkpoint, tmp_path) -> None:
    cohort = tmp_path / "cohort"
    volume = np.zeros((24, 20, 16), np.float16)
    volume[5:12, 6:10, 4:9] = 0.9  # bright on the [0, 1] scale; 0.9 "HU" would be 0.50045
    save_npy_atomic(cohort / "volumes" / "p1.npy", volume)
    direction = (1, 0, 0, 0, -1, 0, 0, 0, 1)
    write_cohort(cohort, [CohortRecord(
        id="p1", split="train", source="x", modality="ct", shape=volume.shape,
        spacing=(1.5, 1.5, 1.5), sha256="0" * 64, file="volumes/p1.npy",
        extra={"origin_x": "10", "origin_y": "-4", "origin_z": "7",
               "direction": " ".join(str(d) for d in direction)})])
    result = predict(threshold_checkpoint, [cohort], tmp_path / "out")
    assert result.count("done") == 1
    label = sitk.ReadImage(str(tmp_path / "out/labels/p1.nii.gz"))
    assert label.GetSize() == volume.shape and label.GetOrigin() == (10.0, -4.0, 7.0)
    np.testing.assert_allclose(label.GetDirection(), direction)
    predicted = sitk.GetArrayFromImage(label).transpose(2, 1, 0)
    np.testing.assert_array_equal(predicted, volume > 0.55)  # same spacing: nothing resampled
