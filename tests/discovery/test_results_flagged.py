"""Results are right or loudly flagged (issue 14): NaN volumes and NaN features are errors
naming their source, a K below the one asked is warned and recorded, a patch larger than the
volumes says so, and modalities are never mixed inside one class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semantic_genesis.cli import main
from semantic_genesis.discovery import DiscoverWarning, discover
from semantic_genesis.io.manifests import read_classes, read_discover_info, read_patterns
from semantic_genesis.utils.errors import SemgenError
from tests.discovery.conftest import fast_config, small_config, write_cohort_of, write_features


def _poison(cohort: Path, pid: str) -> Path:
    path = cohort / "volumes" / f"{pid}.npy"
    vol = np.load(path)
    vol[10:30, 10:30, 5:20] = np.nan
    np.save(path, vol)
    return path


def test_a_nan_volume_is_an_error_naming_it_ae(chests, tmp_path) -> None:
    path = _poison(chests, "c1")
    config = small_config(patch=(16, 16, 8), n_classes=2, instances=3, val_instances=1,
                          ae_shape=(16, 16, 8), ae_width=2, ae_epochs=1)
    with pytest.raises(SemgenError, match="patient c1 contains NaN") as caught:
        discover(chests, tmp_path / "p", config)
    assert str(path) in str(caught.value)
    assert not (tmp_path / "p" / "discover.json").exists()


def test_a_nan_reference_volume_is_an_error_naming_it(chests, tmp_path) -> None:
    """With features from a file the volumes are read only as references: before, NaNs there
    passed the air test as air."""
    for pid in ("c0", "c1", "c2"):
        _poison(chests, pid)
    with pytest.raises(SemgenError, match="contains NaN"):
        discover(chests, tmp_path / "p", fast_config(chests))


def test_nan_encoder_features_are_an_error_naming_the_source(chests, tmp_path) -> None:
    import torch

    from semantic_genesis.models import create_model, save_model

    model = create_model("unet3d", width=2)
    with torch.no_grad():  # finite weights (the loader refuses NaN ones) that overflow
        for p in model.parameters():
            p.fill_(1e30)
    ckpt = save_model(tmp_path / "nan.pt", model)
    config = small_config(patch=(16, 16, 8), n_classes=2, instances=3, val_instances=1,
                          features="encoder", encoder_checkpoint=str(ckpt), ae_shape=(16, 16, 8))
    with pytest.raises(SemgenError, match="features encoder.*NaN") as caught:
        discover(chests, tmp_path / "p", config)
    assert str(ckpt) in str(caught.value)


def test_fewer_neighbours_than_k_are_warned_and_recorded(chests, tmp_path) -> None:
    with pytest.warns(DiscoverWarning, match="K = 3 instead of 5"):
        result = discover(chests, tmp_path / "p", fast_config(chests, instances=5))
    info = read_discover_info(tmp_path / "p")
    assert (info["k_train"], info["k_train_requested"], result.k_train) == (3, 5, 3)
    assert any("K = 3 instead of 5" in w for w in info["warnings"])


def test_modalities_are_never_mixed_inside_a_class(tmp_path, capsys) -> None:
    """Two CT and two MR patients whose features are all alike: before, a CT reference's
    nearest neighbours were MR patients. Now each class holds one modality, with a note, and
    the smaller neighbour count is a warning and in discover.json."""
    cohort = tmp_path / "cohort"
    write_cohort_of(cohort, [("ct0", "chest", (64, 64, 32), "train", "ct"),
                             ("ct1", "chest", (64, 64, 32), "train", "ct"),
                             ("mr0", "chest", (64, 64, 32), "train", "mr"),
                             ("mr1", "chest", (64, 64, 32), "train", "mr")])
    # MR patients right next to each CT patient in feature space, the other CT far away
    feats = write_features(tmp_path / "f.npz", {"ct0": [0, 0], "mr0": [0.1, 0], "ct1": [9, 9],
                                                 "mr1": [9.1, 9]})
    modality = {"ct0": "ct", "ct1": "ct", "mr0": "mr", "mr1": "mr"}
    out = tmp_path / "p"
    assert main(["discover", str(cohort), "--out", str(out), "--classes", "4", "--instances",
                 "4", "--val-instances", "0", "--patch", "16", "16", "8", "--features",
                 str(feats), "--max-tissue", "1", "--min-distance", "0", "--device",
                 "cpu"]) == 0
    err = capsys.readouterr().err
    assert "neighbours of each reference come only from its own modality" in err
    assert "fewer neighbours than asked" in err
    rows = read_patterns(out)
    for c in read_classes(out):
        members = {r.patient_id for r in rows if r.cls == c.cls}
        assert len(members) == 2 and {modality[p] for p in members} == {modality[c.patient_id]}
    info = read_discover_info(out)
    assert info["k_train"] == 2 and len(info["neighbour_shortfalls"]) == 4


def test_a_patch_larger_than_every_volume_says_so(chests, tmp_path, capsys) -> None:
    out = tmp_path / "p"
    assert main(["discover", str(chests), "--out", str(out), "--patch", "64", "64", "32",
                 "--features", fast_config(chests).features, "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "patch larger than the volume" in err
    assert "64 x 64 x 32" in err and "65 x 65 x 36" in err and "this one is 64 x 64 x 32" in err
    assert not out.exists()  # refused before anything was written


def test_one_volume_smaller_than_the_patch_is_reported_with_both_shapes(tmp_path) -> None:
    """Two training patients, two classes asked: both serve as references; the small one
    cannot hold the patch, which the warning and discover.json say with both shapes."""
    cohort = tmp_path / "cohort"
    write_cohort_of(cohort, [("big", "chest", (64, 64, 40), "train", "ct"),
                             ("tiny", "chest", (32, 32, 16), "train", "ct")])
    with pytest.warns(DiscoverWarning, match="found 1 of 2 classes: 1 x patch larger"):
        discover(cohort, tmp_path / "p", fast_config(cohort, patch=(32, 32, 16),
                                                     max_tissue=1.0, val_instances=0,
                                                     instances=2))
    info = read_discover_info(tmp_path / "p")
    [skipped] = info["skipped_references"]
    assert skipped["patient_id"] == "tiny" and "patch larger than the volume" in skipped["reason"]
    assert "32 x 32 x 16 needs" in skipped["reason"] and "this one is 32 x 32 x 16" in skipped[
        "reason"]
    assert info["fewer_classes"] == {"requested": 2, "found": 1,
                                     "reasons": {"patch larger than the volume": 1}}
