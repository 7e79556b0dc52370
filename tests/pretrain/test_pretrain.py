"""`pretrain` end to end on tiny patterns: it learns, writes its run folder, refuses bad input."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from semantic_genesis.io.manifests import read_discover_info, read_patterns, write_patterns
from semantic_genesis.models import ModelCard, create_model
from semantic_genesis.pretrain import PretrainConfig, pretrain
from semantic_genesis.pretrain.trainer import Trainer
from semantic_genesis.utils import SemgenError, write_json
from tests.pretrain.conftest import write_engine_patterns

#: small and quick: width 8, base crops only unless a test needs multi-resolution.
QUICK = {"width": 8, "batch_size": 6, "figures": False, "multires": False}


def _metrics(out: Path) -> list[dict[str, str]]:
    with open(out / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _assert_learned(out: Path, result) -> None:
    rows = _metrics(out)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    # in-painting's loss is Pathak's: MSE inside the dropped box (method.md §3.4)
    assert float(rows[-1]["train_box_mse"]) < float(rows[0]["train_box_mse"])
    assert float(rows[-1]["val_ce"]) < float(rows[0]["val_ce"])
    assert float(rows[-1]["val_acc"]) > 1 / 3 + 0.1  # 3 classes: chance is 1/3
    assert result.epochs_run == 5 and 1 <= result.best_epoch <= 5
    assert result.best_val_loss == pytest.approx(min(float(r["val_loss"]) for r in rows), rel=1e-5)
    for key in ("lr", "cubes_per_s", "seconds", "val_box_mse", "val_ce"):
        assert float(rows[0][key]) > 0
    assert "train_rot_ce" not in rows[0]  # no rotation term in this method


def _assert_run_folder(out: Path) -> None:
    for name in ("curves.png", "restorations.png", "pretrain-config.yaml", "metrics.csv"):
        assert (out / name).stat().st_size > 0, name
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["pretext"] == "inpaint" and info["result"]["epochs_run"] == 5
    assert "torch" in info["run_info"] and info["data"]["n_classes"] == 3


def _assert_checkpoints(out: Path, fingerprint: str) -> None:
    for name in ("best.pt", "last.pt"):
        ckpt = torch.load(out / "checkpoints" / name, weights_only=True)
        card = ModelCard.from_dict(ckpt["model_card"])
        assert (card.architecture, card.width, card.n_classes) == ("ynet3d", 8, 3)
        assert (card.pretext, card.semantic, card.patch_size) == ("inpaint", True, (16, 16, 16))
        assert card.data_fingerprint == fingerprint
        model = create_model("ynet3d", n_classes=3, width=8)
        model.load_state_dict(ckpt["state_dict"], strict=True)
    assert {"optimizer", "scheduler", "rng", "early_stopping", "history"} <= set(ckpt)


def test_pretraining_learns_and_writes_a_complete_run_folder(
    engine_patterns: Path, tmp_path: Path
) -> None:
    """Five epochs of in-painting + semantics, λ_cls = 1, with the reference's always-batch-
    statistics norm (standard BN's running statistics lag far behind a 15-step run): the
    losses fall, validation pseudo-class accuracy ends above chance, and the run folder holds
    figures, events, config, provenance and checkpoints that load strictly with their card."""
    config = PretrainConfig(
        pretext="inpaint",
        semantic=True,
        width=8,
        norm="batch_always",
        epochs=5,
        batch_size=6,
        lambda_cls=1.0,
        multires=False,
        seed=0,
    )
    result = pretrain(engine_patterns, tmp_path, config)
    _assert_learned(tmp_path, result)
    _assert_run_folder(tmp_path)
    _assert_checkpoints(tmp_path, read_discover_info(engine_patterns)["cohort_fingerprint"])


def test_existing_run_is_never_continued_silently(engine_patterns: Path, tmp_path: Path) -> None:
    config = PretrainConfig(**{**QUICK, "width": 4}, epochs=1)
    pretrain(engine_patterns, tmp_path, config)
    with pytest.raises(SemgenError, match="--resume"):
        pretrain(engine_patterns, tmp_path, config)
    # --resume of a finished run trains nothing more
    config.resume = True
    assert pretrain(engine_patterns, tmp_path, config).epochs_run == 1
    assert len(_metrics(tmp_path)) == 1
    config.width = 8
    with pytest.raises(SemgenError, match="different settings"):
        pretrain(engine_patterns, tmp_path, config)
    config.resume, config.overwrite = False, True  # --overwrite starts afresh
    assert pretrain(engine_patterns, tmp_path, config).epochs_run == 1


@pytest.mark.parametrize(
    ("pretext", "semantic", "arch"),
    [
        ("genesis", False, "unet3d"),  # Models Genesis
        ("none", True, "ynet3d"),  # self-classification only: the decoder never runs
        ("rotation", True, "ynet3d"),  # rotation + semantics, with its own head
    ],
)
def test_methods_write_strictly_loadable_checkpoints(
    pretext: str, semantic: bool, arch: str, engine_patterns: Path, tmp_path: Path
) -> None:
    config = PretrainConfig(**{**QUICK, "width": 4}, pretext=pretext, semantic=semantic, epochs=1)
    result = pretrain(engine_patterns, tmp_path, config)
    ckpt = torch.load(result.last_checkpoint, weights_only=True)
    card = ModelCard.from_dict(ckpt["model_card"])
    assert card.architecture == arch and card.pretext == pretext
    create_model(**card.model_kwargs()).load_state_dict(ckpt["state_dict"], strict=True)
    row = _metrics(tmp_path)[0]
    assert (row.get("train_mse", "") != "") == (pretext == "genesis")
    assert (row.get("train_acc", "") != "") == semantic
    if pretext == "rotation":
        assert row["train_rot_ce"] != "" and card.notes["n_rotations"] > 1
        head = ckpt["aux_state_dict"]
        assert head["rotation.fc1.weight"].shape[0] == card.notes["n_rotations"]
    if pretext == "none":  # decoder untouched: still at its initial weights
        torch.manual_seed(0)
        fresh = create_model("ynet3d", n_classes=3, width=4)
        assert torch.equal(
            fresh.state_dict()["out_tr.final_conv.weight"],
            ckpt["state_dict"]["out_tr.final_conv.weight"],
        )


def test_patterns_from_another_cohort_are_refused(engine_patterns: Path, tmp_path: Path) -> None:
    other = shutil.copytree(engine_patterns, tmp_path / "patterns")
    info = json.loads((other / "discover.json").read_text())
    write_json(other / "discover.json", {**info, "cohort_fingerprint": "0123456789abcdef"})
    with pytest.raises(SemgenError, match="another cohort"):
        pretrain(other, tmp_path / "run", PretrainConfig(**QUICK, epochs=1))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_class_without_training_instance_is_named(engine_patterns: Path, tmp_path: Path) -> None:
    other = shutil.copytree(engine_patterns, tmp_path / "patterns")
    write_patterns(
        other,
        [p for p in read_patterns(engine_patterns) if not (p.cls == 2 and p.split == "train")],
    )
    with pytest.raises(SemgenError, match="class 2 has no training instance"):
        pretrain(other, tmp_path / "run", PretrainConfig(**QUICK, epochs=1))


def test_nan_voxels_stop_the_run_naming_the_volume(engine_cohort, tmp_path: Path) -> None:
    """NaNs in a volume once surfaced as a NaN loss blamed on the learning rate; the dataset
    now checks each volume against the cohort contract when it opens it."""
    cohort_dir, records = engine_cohort
    cohort = shutil.copytree(cohort_dir, tmp_path / "cohort")
    patterns = write_engine_patterns(tmp_path / "patterns", cohort, records)
    config = PretrainConfig(**QUICK, pretext="identity", epochs=1)
    pretrain(patterns, tmp_path / "run", config)
    for r in records:  # same cohort.csv (so the same fingerprint), now with NaN voxels
        vol = np.load(cohort / r.file)
        vol[::2] = np.nan
        np.save(cohort / r.file, vol)
    config.epochs, config.resume = 2, True
    with pytest.raises(SemgenError, match="finite and in \\[0, 1\\].*min nan") as err:
        pretrain(patterns, tmp_path / "run", config)
    assert str(cohort / "volumes") in str(err.value)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes"),
    ],
)
def test_out_of_memory_suggests_a_smaller_batch_or_width(
    error: Exception, engine_patterns: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(self, epoch: int) -> None:
        raise error

    monkeypatch.setattr(Trainer, "train_epoch", explode)
    with pytest.raises(SemgenError, match="smaller --batch-size.*smaller --width"):
        pretrain(engine_patterns, tmp_path, PretrainConfig(**QUICK, epochs=1))


def test_gradient_accumulation_matches_the_full_batch(
    engine_patterns: Path, tmp_path: Path
) -> None:
    """--accumulate 2 (two micro-batches of 3) takes the same steps as one batch of 6 (GroupNorm
    and the identity pretext: no batch statistics, no random perturbation)."""
    losses = []
    for k in (1, 2):
        config = PretrainConfig(
            **{**QUICK, "width": 4}, norm="group", pretext="identity", accumulate=k, epochs=1
        )
        pretrain(engine_patterns, tmp_path / f"a{k}", config)
        losses.append([float(r["train_loss"]) for r in _metrics(tmp_path / f"a{k}")])
    assert losses[1] == pytest.approx(losses[0], rel=1e-4)
