"""``discover`` end to end on the phantom cohort: outputs, air test and borders, determinism,
resume after a kill, sharding, families, and bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from semantic_genesis.discovery import DiscoverConfig, DiscoverWarning, discover
from semantic_genesis.discovery.config import FEATURE_KINDS
from semantic_genesis.discovery.coordinates import corner_bounds
from semantic_genesis.io.manifests import (
    open_volume,
    read_classes,
    read_cohort,
    read_discover_info,
    read_patterns,
)
from semantic_genesis.utils.config import load_config
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.outdir import claim_output
from tests.discovery.conftest import PATCH, family, small_config
from tests.discovery.reference import reference_air_score

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _run(cohort, out, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiscoverWarning)
        return discover(cohort, out, small_config(**kw))


def _files(out: Path) -> tuple[bytes, bytes]:
    return (out / "patterns.csv").read_bytes(), (out / "classes.csv").read_bytes()


def test_outputs_follow_the_contracts(ae_run, phantom_cohort) -> None:
    import torch

    from semantic_genesis.discovery.features import load_features
    from semantic_genesis.models.checkpoint import read_checkpoint

    out, result = ae_run
    info = read_discover_info(out)
    assert info["cohort"] == str(phantom_cohort.resolve()) and info["patch"] == list(PATCH)
    assert info["n_classes"] == result.n_classes >= 3
    assert {"config", "skipped_references", "skipped_neighbours", "timings", "run_info",
            "cohort_fingerprint"} <= set(info)
    rows, classes = read_patterns(out), read_classes(out)
    assert len(rows) == result.n_patterns and len(classes) == result.n_classes
    assert {r.cls for r in rows} == set(range(result.n_classes))
    for c in classes:  # K = 5 train (the reference first) and 2 val instances per class
        mine = [r for r in rows if r.cls == c.cls]
        assert [r.rank for r in mine if r.split == "train"] == list(range(5))
        assert [r.rank for r in mine if r.split == "val"] == [0, 1]
        ref = next(r for r in mine if r.rank == 0 and r.split == "train")
        assert (ref.patient_id, ref.x, ref.y, ref.z) == (c.patient_id, c.x, c.y, c.z)
    feats, _ = load_features(out / "features.npz")
    assert feats.ids == sorted(r.id for r in read_cohort(phantom_cohort))
    assert feats.features.shape == (9, 16 * 4)  # 16 x ae_width: the pooled bottleneck
    ckpt = read_checkpoint(out / "autoencoder.pt")
    assert ckpt["model_card"]["architecture"] == "autoencoder3d"
    assert ckpt["card"]["feature_dim"] == 64 and len(ckpt["card"]["train_loss"]) >= 1
    assert all(isinstance(v, torch.Tensor) for v in ckpt["state_dict"].values())
    assert load_config(DiscoverConfig, out / "discover-config.yaml") == small_config(
        montage_classes=3)
    assert (out / "patterns.png").stat().st_size > 10_000
    assert not (out / ".cache").exists()


def test_every_class_passes_the_air_test_borders_and_distance(ae_run, phantom_cohort) -> None:
    out, _ = ae_run
    config = small_config()
    records = {r.id: r for r in read_cohort(phantom_cohort)}
    classes = read_classes(out)
    for c in classes:
        vol = open_volume(phantom_cohort, records[c.patient_id])
        lo, hi = corner_bounds(vol.shape, config.rules())
        corner = np.array([c.x, c.y, c.z])
        assert (corner >= lo).all() and (corner <= hi).all()
        window = np.asarray(vol[c.x:c.x + PATCH[0], c.y:c.y + PATCH[1], c.z:c.z + PATCH[2] + 3])
        score = reference_air_score(window, PATCH)
        assert score <= 0.15 and score == pytest.approx(c.air_score, abs=1e-6)
    corners = np.array([[c.x, c.y, c.z] for c in classes], float)
    gaps = np.sqrt(((corners[:, None] - corners[None]) ** 2).sum(-1))
    assert gaps[~np.eye(len(corners), dtype=bool)].min() >= config.min_distance
    for r in read_patterns(out):  # every crop fits its own volume
        assert all(a + s <= n for a, s, n in zip((r.x, r.y, r.z), r.size,
                                                  records[r.patient_id].shape, strict=True))


def test_neighbours_come_from_the_family_first(ae_run, phantom_cohort) -> None:
    """Phantom families are near-identical anatomy: the auto-encoder's nearest patients to a
    reference are its own family (train and val), then the others."""
    out, result = ae_run
    split = {r.id: r.split for r in read_cohort(phantom_cohort)}
    for c in result.classes:
        fam = family(c.patient_id)
        n_train = sum(split[p] == "train" and family(p) == fam for p in split)
        n_val = sum(split[p] == "val" and family(p) == fam for p in split)
        assert [family(p) == fam for p in c.train[:n_train]] == [True] * n_train
        assert not any(family(p) == fam for p in c.train[n_train:])
        assert [family(p) == fam for p in c.val] == [True] * n_val + [False] * (2 - n_val)


def test_same_seed_same_patterns_other_seed_different(ae_run, phantom_cohort, tmp_path) -> None:
    feats = str(ae_run[0] / "features.npz")
    _run(phantom_cohort, tmp_path / "a", features=feats, seed=1, min_distance=8)
    _run(phantom_cohort, tmp_path / "b", features=feats, seed=1, min_distance=8)
    _run(phantom_cohort, tmp_path / "c", features=feats, seed=2, min_distance=8)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a")[0] != _files(tmp_path / "c")[0]


def test_killed_run_resumes_to_the_same_result(ae_run, phantom_cohort, tmp_path) -> None:
    feats = str(ae_run[0] / "features.npz")
    args = ["--classes", "6", "--instances", "4", "--val-instances", "1", "--patch",
            *map(str, PATCH), "--features", feats, "--min-distance", "8", "--trials", "4000",
            "--device", "cpu"]
    _run(phantom_cohort, tmp_path / "whole", features=feats, n_classes=6, instances=4,
         val_instances=1, min_distance=8, trials=4000)
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "semantic_genesis", "discover",
                             str(phantom_cohort), "--out", str(out), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((out / "classes").glob("ref-*.json")) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed, not finished
    done = len(list((out / "classes").glob("ref-*.json")))
    assert 1 <= done < 6 and not (out / "patterns.csv").exists()
    _run(phantom_cohort, out, features=feats, n_classes=6, instances=4, val_instances=1,
         min_distance=8, trials=4000)
    assert _files(out) == _files(tmp_path / "whole")


def test_ranks_share_the_work_and_agree(ae_run, phantom_cohort, tmp_path, monkeypatch) -> None:
    feats = str(ae_run[0] / "features.npz")
    whole = tmp_path / "whole"
    _run(phantom_cohort, whole, features=feats, min_distance=8)
    out = tmp_path / "sharded"
    with claim_output(out, "discover"):  # rank 0 claims the folder before any rank writes
        pass
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    _run(phantom_cohort, out, features=feats, min_distance=8)
    assert not (out / "patterns.csv").exists()  # rank 1 writes its parts, never the outputs
    parts_rank1 = sorted(p.name for p in (out / "classes").glob("ref-*.json"))
    monkeypatch.setenv("RANK", "0")
    _run(phantom_cohort, out, features=feats, min_distance=8)
    assert _files(out) == _files(whole) and parts_rank1


def test_small_cohort_clips_k_with_a_warning(ae_run, phantom_cohort, tmp_path) -> None:
    feats = str(ae_run[0] / "features.npz")
    with pytest.warns(DiscoverWarning) as record:
        result = discover(phantom_cohort, tmp_path / "k", small_config(
            features=feats, instances=200, val_instances=30, n_classes=2))
    messages = " | ".join(str(w.message) for w in record)
    assert "K = 7 instead of 200" in messages and "2 instead of 30 validation" in messages
    assert (result.k_train, result.k_val) == (7, 2)
    assert read_discover_info(tmp_path / "k")["k_train"] == 7
    rows = read_patterns(tmp_path / "k")
    assert sum(r.cls == 0 and r.split == "train" for r in rows) == 7


def test_failing_references_are_replaced_and_reported(ae_run, phantom_cohort, tmp_path) -> None:
    feats = str(ae_run[0] / "features.npz")
    result = _run(phantom_cohort, tmp_path / "r", features=feats, n_classes=3, trials=8,
                  max_tissue=0.1)
    assert result.skipped_references and result.n_classes >= 1
    assert [c.unit for c in result.classes] == sorted(c.unit for c in result.classes)
    skipped = {s["unit"] for s in result.skipped_references}
    assert skipped.isdisjoint(c.unit for c in result.classes)
    info = read_discover_info(tmp_path / "r")
    assert info["skipped_references"][0]["reason"]


def test_every_reference_failing_is_one_clear_error(ae_run, phantom_cohort, tmp_path) -> None:
    feats = str(ae_run[0] / "features.npz")
    with pytest.raises(SemgenError, match="no reference patient has a valid coordinate"):
        _run(phantom_cohort, tmp_path / "e", features=feats, patch=(88, 88, 56))
    with pytest.raises(SemgenError, match="no reference patient"):
        _run(phantom_cohort, tmp_path / "f", features=feats, max_tissue=0.0, trials=5)


def test_other_settings_in_the_folder_are_refused(ae_run, phantom_cohort, tmp_path) -> None:
    feats = str(ae_run[0] / "features.npz")
    out = tmp_path / "o"
    _run(phantom_cohort, out, features=feats, seed=3, min_distance=8)
    with pytest.raises(SemgenError, match="other settings"):
        _run(phantom_cohort, out, features=feats, seed=4, min_distance=8)
    _run(phantom_cohort, tmp_path / "fresh", features=feats, seed=4, min_distance=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiscoverWarning)
        discover(phantom_cohort, out, small_config(features=feats, seed=4, min_distance=8),
                 overwrite=True)
    assert _files(out) == _files(tmp_path / "fresh")


def test_bad_settings(phantom_cohort, tmp_path) -> None:
    for kw, msg in [({"features": "nowhere.npz"}, "--features"),
                    ({"features": "encoder"}, "--encoder-checkpoint"),
                    ({"patch": (0, 8, 8)}, r"DiscoverConfig.patch = \(0, 8, 8\)"),
                    ({"index": "hnsw"}, "index"),
                    ({"ae_shape": (30, 32, 16)}, "multiples of 8")]:
        with pytest.raises(SemgenError, match=msg):
            discover(phantom_cohort, tmp_path, small_config(**kw))
    with pytest.raises(SemgenError, match="not a prepared cohort"):
        discover(tmp_path, tmp_path / "x", small_config())
    assert set(FEATURE_KINDS) == {"ae", "encoder"}


def test_pretrained_encoder_as_feature_source(phantom_cohort, tmp_path) -> None:
    from semantic_genesis.discovery.features import load_features
    from semantic_genesis.models import create_model, save_model

    ckpt = save_model(tmp_path / "enc.pt", create_model("unet3d", width=2))
    result = _run(phantom_cohort, tmp_path / "p", features="encoder", encoder_checkpoint=ckpt,
                  n_classes=2, min_distance=8)
    feats, _ = load_features(tmp_path / "p" / "features.npz")
    assert feats.features.shape == (9, 32) and result.feature_dim == 32  # 16 x width 2
    assert result.n_classes == 2 and not (tmp_path / "p" / "autoencoder.pt").exists()
