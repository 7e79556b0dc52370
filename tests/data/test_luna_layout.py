"""`semgen phantoms --layout luna16`: LUNA16's subset folders, one phantom per subset in turn,
the same voxels and world geometry as the phantoms themselves (data/luna_layout.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from semantic_genesis.cli import main
from semantic_genesis.data.luna_layout import luna_subset
from semantic_genesis.finetune.data import find_images, read_candidates
from semantic_genesis.io import read_volume

ARGS = ["--shape", "32", "32", "24", "--spacing", "10", "10", "12", "--negatives", "1",
        "--workers", "1", "--layout", "luna16"]


def test_phantoms_in_the_luna16_layout(tmp_path: Path) -> None:
    out = tmp_path / "luna"
    assert main(["phantoms", "--out", str(out), "--n", "3", *ARGS]) == 0
    images = find_images(out)
    assert {i: p.parent.name for i, p in images.items()} == {
        f"phantom-{i:04d}": luna_subset(i) for i in range(3)}
    assert all(p.suffix == ".mhd" and p.with_suffix(".raw").is_file() for p in images.values())
    mhd, nifti = (read_volume(out / "subset1" / "phantom-0001.mhd"),
                  read_volume(out / ".phantoms" / "images" / "phantom-0001.nii.gz"))
    np.testing.assert_array_equal(mhd.array, nifti.array)
    assert mhd.origin == nifti.origin and mhd.direction == nifti.direction
    assert {c.seriesuid for c in read_candidates(out / "candidates.csv")} == set(images)
    assert luna_subset(13) == "subset3"
    assert main(["phantoms", "--out", str(out), "--n", "2", *ARGS]) == 0  # a smaller re-run
    assert not list(out.glob("subset2/*")) and sorted(find_images(out)) == [
        "phantom-0000", "phantom-0001"]
