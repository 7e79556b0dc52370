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

from .conftest import DIRECTION, SPACING

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
