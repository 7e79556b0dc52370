"""Target data that would give wrong numbers without a word (issue 14): fractional labels,
label maps off their image's grid, candidates outside their scan."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from semantic_genesis.cli import main
from semantic_genesis.finetune.data import VolumeCache
from semantic_genesis.finetune.metrics import MetricWarning
from semantic_genesis.io import Volume, write_nifti
from semantic_genesis.utils.errors import SemgenError
from tests.targets import DIRECTION, SPACING

TINY_FLAGS = ["--width", "4", "--epochs", "1", "--patch", "16", "16", "16", "--batch-size", "4",
              "--steps-per-epoch", "1", "--no-save-model"]


def _image(tmp_path: Path) -> Path:
    arr = np.zeros((16, 16, 8), np.int16)
    path = tmp_path / "img.nii.gz"
    write_nifti(Volume(arr, SPACING, (1.0, 2.0, 3.0), DIRECTION), path)
    return path


def test_fractional_labels_are_an_error_naming_the_file(tmp_path: Path) -> None:
    cache = VolumeCache(tmp_path / "cache", "ct")
    image = cache.image(_image(tmp_path))
    lab = np.zeros((16, 16, 8), np.float32)
    lab[4:8, 4:8, 2:4] = 0.4  # a probability map: rounded, it was empty (IoU 1.0)
    path = tmp_path / "lab.nii.gz"
    write_nifti(Volume(lab, SPACING, (1.0, 2.0, 3.0), DIRECTION), path)
    with pytest.raises(SemgenError, match="non-integer values") as err:
        cache.label(path, like=image)
    assert err.value.path == path


@pytest.mark.parametrize("change", ["spacing", "origin", "direction"])
def test_label_map_off_its_image_grid_names_both_files(tmp_path: Path, change: str) -> None:
    cache = VolumeCache(tmp_path / "cache", "ct")
    image_path = _image(tmp_path)
    image = cache.image(image_path)
    geometry = {"spacing": SPACING, "origin": (1.0, 2.0, 3.0), "direction": DIRECTION}
    geometry[change] = {"spacing": (1.0, 1.0, 1.0), "origin": (11.0, 2.0, 3.0),
                        "direction": (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)}[change]
    path = tmp_path / "lab.nii.gz"
    write_nifti(Volume(np.ones((16, 16, 8), np.uint8), **geometry), path)
    with pytest.raises(SemgenError, match=f"not on the grid of its image.*{change}") as err:
        cache.label(path, like=image)
    assert err.value.path == path and str(image_path) in str(err.value)


def test_candidates_outside_their_scan_are_flagged_and_counted(
    tiny_data: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    lines = (data / "candidates.csv").read_text().splitlines()
    first = lines[1].split(",")
    lines.append(f"{first[0]},100000.0,0.0,0.0,0")  # 100 m away
    (data / "candidates.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    with pytest.warns(MetricWarning, match=rf"outside their scan .*line {len(lines)}: {first[0]} at \(100000"):
        code = main(["finetune", "--task", "classify", "--data", str(data), "--out", str(out),
                     *TINY_FLAGS])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["candidates_outside_scan"] == 1
    assert any("outside their scan" in w for w in metrics["warnings"])


def test_nan_voxels_in_an_image_are_an_error_naming_it(tmp_path: Path) -> None:
    arr = np.zeros((16, 16, 8), np.float32)
    arr[2:4, 2:4, 2:4] = np.nan
    path = tmp_path / "nan.nii.gz"
    write_nifti(Volume(arr, SPACING, (0.0, 0.0, 0.0), DIRECTION), path)
    with pytest.raises(SemgenError, match="8 NaN or infinite voxels") as err:
        VolumeCache(tmp_path / "cache", "ct").image(path)
    assert err.value.path == path


def test_nan_weights_are_named_as_nan_not_a_learning_rate() -> None:
    import torch

    from semantic_genesis.finetune.recipes import get_recipe
    from semantic_genesis.finetune.trainer import fit

    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    with pytest.raises(SemgenError, match="weights hold NaN"):
        fit(model, get_recipe("ncc"), 1, lambda opt: float("nan"), lambda: (float("nan"), 0.5))


def test_candidates_of_scans_not_in_the_folder_are_said(tiny_data: Path, tmp_path: Path) -> None:
    from semantic_genesis.finetune.config import FinetuneConfig
    from semantic_genesis.finetune.tasks.classify import select_candidates

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    with open(data / "candidates.csv", "a") as fh:
        fh.write("ghost,1,2,3,1\n")
    with pytest.warns(MetricWarning, match="1 candidate.* not in the data folder .*ghost"):
        _, _, info = select_candidates(data, FinetuneConfig())
    assert info["candidates_without_scan"] == 1 and len(info["warnings"]) == 1
