"""Data layouts: LUNA16 world mm -> voxel (checked against SimpleITK), splits, cubes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from semantic_genesis.finetune.config import FinetuneConfig
from semantic_genesis.finetune.data import (
    VolumeCache,
    extract_cube,
    find_images,
    read_candidates,
    split_cases,
    subsample,
)
from semantic_genesis.finetune.tasks.classify import cut_cubes, select_candidates
from semantic_genesis.utils.errors import SemgenError

# an oblique direction (rotation about z by 30 degrees, then about x by 20) and an odd origin
_A, _B = np.deg2rad(30), np.deg2rad(20)
_RZ = np.array([[np.cos(_A), -np.sin(_A), 0], [np.sin(_A), np.cos(_A), 0], [0, 0, 1]])
_RX = np.array([[1, 0, 0], [0, np.cos(_B), -np.sin(_B)], [0, np.sin(_B), np.cos(_B)]])
DIRECTION = tuple((_RX @ _RZ).ravel())
ORIGIN = (-171.3, -190.25, -302.5)
SPACING = (0.7, 0.8, 2.5)
SIZE = (48, 40, 30)  # SimpleITK order (x, y, z)


def _write_luna16(root: Path, marks: list[tuple[int, int, int]]) -> sitk.Image:
    """subset0/<uid>.mhd written by SimpleITK, with a bright voxel at each (i, j, k) index."""
    arr = np.full(SIZE[::-1], -900, np.int16)  # numpy order (z, y, x)
    for i, j, k in marks:
        arr[k, j, i] = 500
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(SPACING)
    img.SetOrigin(ORIGIN)
    img.SetDirection(DIRECTION)
    (root / "subset0").mkdir(parents=True)
    sitk.WriteImage(img, str(root / "subset0" / "1.3.6.1.4.1.14519.5.2.1.6279.mhd"))
    return img


def test_world_to_voxel_agrees_with_simpleitk(tmp_path: Path) -> None:
    from semantic_genesis.io import read_volume

    img = _write_luna16(tmp_path, [])
    vol = read_volume(tmp_path / "subset0" / "1.3.6.1.4.1.14519.5.2.1.6279.mhd")
    rng = np.random.default_rng(0)
    idx = rng.uniform(0, 1, (20, 3)) * np.array(SIZE)
    world = np.array([img.TransformContinuousIndexToPhysicalPoint(tuple(p)) for p in idx])
    expected = np.array([img.TransformPhysicalPointToContinuousIndex(tuple(w)) for w in world])
    np.testing.assert_allclose(vol.world_to_voxel(world), expected, atol=1e-6)
    assert vol.shape == SIZE  # (x, y, z), the order of ITK's index


def test_candidate_cube_is_centred_on_its_world_point(tmp_path: Path) -> None:
    marks = [(20, 15, 12), (3, 37, 28)]  # the second sits near a corner: the cube is padded
    img = _write_luna16(tmp_path, marks)
    uid = "1.3.6.1.4.1.14519.5.2.1.6279"
    rows = ["seriesuid,coordX,coordY,coordZ,class"]
    for m in marks:
        w = img.TransformIndexToPhysicalPoint(m)
        rows.append(f"{uid},{w[0]},{w[1]},{w[2]},1")
    (tmp_path / "candidates.csv").write_text("\n".join(rows) + "\n")
    images = find_images(tmp_path)
    assert list(images) == [uid]
    cands = read_candidates(tmp_path / "candidates.csv")
    cache = VolumeCache(tmp_path / "cache", modality="ct")
    cubes = cut_cubes(cands, images, cache, (8, 8, 6))
    for cube in cubes.cubes:
        assert cube.shape == (8, 8, 6)
        # the marked voxel (500 HU -> 0.75) is the cube centre (index p // 2), nothing else is
        assert np.argwhere(cube > 0.5).tolist() == [[4, 4, 3]]
    assert cubes.cubes[1][0, 0, 0] == 0  # padding outside the scan


def test_extract_cube_rounds_and_pads() -> None:
    a = np.arange(10 * 10 * 10, dtype=np.float32).reshape(10, 10, 10)
    cube = extract_cube(a, (5.4, 4.6, 0.2), (4, 4, 2))
    np.testing.assert_array_equal(cube[:, :, 1], a[3:7, 3:7, 0])  # centre (5, 5, 0)
    assert np.all(cube[:, :, 0] == 0)  # z = -1 lies outside


def test_splits_are_per_patient_deterministic_and_overridable(tmp_path: Path) -> None:
    ids = [f"p{i}" for i in range(10)]
    a = split_cases(ids, seed=0)
    assert a == split_cases(list(reversed(ids)), seed=0)
    assert a != split_cases(ids, seed=1)
    assert sorted(a.values()).count("train") == 6 and sorted(a.values()).count("test") == 2
    (tmp_path / "split.csv").write_text("id,split\np0,train\np1,test\n")
    assert split_cases(ids, 0, split_file=tmp_path / "split.csv") == {"p0": "train", "p1": "test"}
    (tmp_path / "bad.csv").write_text("id,split\np0,training\n")
    with pytest.raises(SemgenError, match="unknown split"):
        split_cases(ids, 0, split_file=tmp_path / "bad.csv")
    with pytest.raises(SemgenError, match="at least 3"):
        split_cases(["a", "b"], 0)


def test_label_fraction_subsets_are_nested_and_seeded() -> None:
    items = list(range(40))
    small, big = subsample(items, 0.1, 3), subsample(items, 0.5, 3)
    assert len(small) == 4 and len(big) == 20 and set(small) <= set(big)
    assert subsample(items, 0.5, 4) != big
    assert subsample(items, 0.001, 0) and subsample(items, 1.0, 0) == items


def test_label_fraction_subsamples_training_candidates_only(tiny_data: Path) -> None:
    full, _, info_full = select_candidates(tiny_data, FinetuneConfig())
    part, _, info = select_candidates(tiny_data, FinetuneConfig(label_fraction=0.5))
    assert part["test"] == full["test"] and part["val"] == full["val"]
    assert set(part["train"]) < set(full["train"])
    assert {c.label for c in part["train"]} == {0, 1}
    assert info["train_positives"] == round(info_full["train_positives"] / 2)


def test_bad_candidates_files(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("seriesuid,coordX,coordY,class\na,1,2,0\n")
    with pytest.raises(SemgenError, match="coordZ"):
        read_candidates(tmp_path / "c.csv")
    (tmp_path / "c.csv").write_text("seriesuid,coordX,coordY,coordZ,class\na,1,x,3,0\n")
    with pytest.raises(SemgenError, match="line 2"):
        read_candidates(tmp_path / "c.csv")
    with pytest.raises(SemgenError, match="no images"):
        find_images(tmp_path)


def test_luna16_folds_are_the_models_genesis_split() -> None:
    images = {f"uid{n}": Path(f"/luna/subset{n}/uid{n}.mhd") for n in range(10)}
    split = split_cases(list(images), seed=0, images=images)
    assert [split[f"uid{n}"] for n in range(10)] == ["train"] * 5 + ["val"] * 2 + ["test"] * 3
    only_subset0 = {
        "a": Path("/l/subset0/a.mhd"),
        "b": Path("/l/subset0/b.mhd"),
        "c": Path("/l/subset0/c.mhd"),
    }
    assert sorted(split_cases(list(only_subset0), 0, images=only_subset0).values()) == [
        "test",
        "train",
        "val",
    ]  # too few folds: a random split instead
