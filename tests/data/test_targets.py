"""Built-in targets: the phantoms serve both tasks; the MNI152 tissue labels; the lung CTs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from semantic_genesis.data.targets import prepare_target
from semantic_genesis.finetune import FinetuneConfig, finetune
from semantic_genesis.utils.errors import SemgenError

SMALL = {
    "n": 3,
    "seed": 5,
    "shape": (64, 64, 48),
    "spacing": (5.4, 5.4, 6.2),
    "nodule_diameter_mm": (10.0, 25.0),
    "negatives": 4,
}


def test_phantoms_are_a_luna16_style_target_for_both_tasks(tmp_path: Path) -> None:
    ncc = prepare_target("phantom-ncc", tmp_path, **SMALL)
    ncs = prepare_target("phantom-ncs", tmp_path, **SMALL)
    assert ncc.data_dir == ncs.data_dir  # generated once
    assert (ncc.task, ncs.task) == ("classify", "segment")
    assert ncc.settings["recipe"] == "ncc" and ncs.settings["recipe"] == "ncs"
    res = finetune(
        ncc.data_dir,
        tmp_path / "run",
        FinetuneConfig(
            task="classify",
            width=8,
            epochs=1,
            patch=(16, 16, 16),
            batch_size=4,
            steps_per_epoch=1,
            split_seed=1,
            **{k: v for k, v in ncc.settings.items() if k != "recipe"},
        ),
        save_model=False,
    )
    assert 0 <= res.score <= 1 or np.isnan(res.score)
    with pytest.raises(SemgenError, match="unknown target"):
        prepare_target("liver", tmp_path)
    with pytest.raises(SemgenError, match="unknown setting"):
        prepare_target("phantom-ncc", tmp_path, colour="red")


def test_mni152_tissue_labels_and_split(tmp_path: Path) -> None:
    from semantic_genesis.io import read_volume

    target = prepare_target("mni152-tissue", tmp_path, spacing_mm=6.0)
    assert target.task == "segment" and target.settings["modality"] == "mr"
    with open(target.data_dir / "split.csv") as fh:
        split = {r["id"]: r["split"] for r in csv.DictReader(fh)}
    assert sorted(split.values()) == ["test", "train", "val"]
    shapes = []
    for case in split:
        image = read_volume(target.data_dir / "images" / f"{case}.nii.gz")
        label = read_volume(target.data_dir / "labels" / f"{case}.nii.gz")
        assert image.shape == label.shape
        assert set(np.unique(label.array)) == {0, 1, 2}  # other, grey, white matter
        brain = np.asarray(image.array) > 0.3
        assert (np.asarray(label.array)[brain] > 0).mean() > 0.8  # tissue where the brain is
        shapes.append(image.shape)
    assert shapes[0][0] + shapes[1][0] in (32, 33, 34)  # left + right hemisphere ~ 197 mm / 6


def test_lung_tumour_target_says_how_small_it_is(tmp_path: Path) -> None:
    target = prepare_target("lung-tumour", tmp_path)
    assert "TWO scans" in target.notes and "anecdote" in target.notes
    assert (target.data_dir / "split.csv").read_text().splitlines()[1:] == [
        "lung2,train",
        "lung1,test",
    ]
    from semantic_genesis.io import read_volume

    label = read_volume(target.data_dir / "labels" / "lung1.nii.gz")
    assert label.shape == (512, 512, 48) and set(np.unique(label.array)) == {0, 1}
