"""`semgen pretrain --backbone nnunet` -> `semgen export --nnunet`: the file loads with nnU-Net's
own `load_pretrained_weights` into the network nnU-Net's own trainer builds from the same plans,
every key but the segmentation outputs transferred; and `semgen phantoms --layout nnunet`
writes a raw dataset nnU-Net's integrity check accepts."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest
import torch

from semantic_genesis.bridges.nnunet import SEG_LAYERS, WEIGHTS_KEY, minimal_plans
from semantic_genesis.cli import main
from semantic_genesis.models import create_model, save_model
from semantic_genesis.models.checkpoint import read_checkpoint
from semantic_genesis.models.registry import CARD_KWARGS
from tests.helpers import make_cohort
from tests.pretrain.conftest import write_engine_patterns

PRETRAIN = ["--epochs", "1", "--batch-size", "6", "--no-figures", "--no-multires"]


@pytest.fixture(scope="module")
def plans_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small hand-written nnUNetPlans.json: 3 stages of 4, 8, 16 features, patch 16^3."""
    path = tmp_path_factory.mktemp("plans") / "nnUNetPlans.json"
    path.write_text(json.dumps(minimal_plans(patch_size=(16, 16, 16))))
    return path


@pytest.fixture(scope="module")
def nnunet_run(tmp_path_factory: pytest.TempPathFactory, plans_file: Path) -> Path:
    """One epoch of Semantic Genesis on nnU-Net's network; its best.pt."""
    root = tmp_path_factory.mktemp("nnunet_run")
    records = make_cohort(root / "cohort", n=6, shape=(48, 48, 32), n_val=2, seed=1)
    patterns = write_engine_patterns(root / "patterns", root / "cohort", records,
                                     corners=((10, 16, 8), (16, 16, 8), (0, 0, 8)))
    assert main(["pretrain", str(patterns), "--out", str(root / "run"), "--backbone", "nnunet",
                 "--plans", str(plans_file), *PRETRAIN]) == 0
    return root / "run" / "checkpoints" / "best.pt"


def _fails(capsys: pytest.CaptureFixture[str], pattern: str, argv: list[str]) -> None:
    """``semgen ARGV`` exits 2 with one error line matching ``pattern``."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(pattern, err), err


def _nnunet_trainer_network(plans_file: Path, n_labels: int) -> torch.nn.Module:
    """The network nnUNetv2_train builds (the trainer's own static method, deep supervision on)."""
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    manager = PlansManager(str(plans_file))
    return nnUNetTrainer.build_network_architecture(
        manager, manager.get_configuration("3d_fullres"), 1, n_labels, True)


def test_the_export_loads_with_nnunet_s_own_loader(
    nnunet_run: Path, plans_file: Path, tmp_path: Path
) -> None:
    from nnunetv2.run.load_pretrained_weights import load_pretrained_weights

    card = read_checkpoint(nnunet_run)["model_card"]
    assert card["backbone"] == "nnunet" and card["architecture"] == "nnunet-ynet"
    assert card["width"] == 4  # the plans' first stage, not --width
    assert card["notes"][CARD_KWARGS]["plans"] == json.loads(plans_file.read_text())
    out = tmp_path / "pretrained.pth"
    assert main(["export", str(nnunet_run), "--nnunet", str(out),
                 "--nnunet-plans", str(plans_file)]) == 0
    saved = torch.load(out, weights_only=True)  # plain tensors only
    assert list(saved) == [WEIGHTS_KEY]
    ours = read_checkpoint(nnunet_run)["state_dict"]
    network = _nnunet_trainer_network(plans_file, 3)  # a 2-label target: 3 outputs
    before = {k: v.clone() for k, v in network.state_dict().items()}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        load_pretrained_weights(network, str(out), verbose=True)
    assert "Loading pretrained weights from file" in printed.getvalue()
    loaded = network.state_dict()
    transferred = [k for k in loaded if SEG_LAYERS not in k]
    assert set(transferred) == set(saved[WEIGHTS_KEY])  # every other key, nothing more
    for key in transferred:
        assert torch.equal(loaded[key], ours[key]), key
    seg = [k for k in loaded if SEG_LAYERS in k]
    assert seg and all(torch.equal(loaded[k], before[k]) for k in seg)  # left to the target
    assert not any(k.startswith("clc_out.") for k in saved[WEIGHTS_KEY])


def test_the_export_refuses_what_nnunet_would_not_load(
    nnunet_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps(minimal_plans(patch_size=(16, 16, 16), features=(8, 16, 32))))
    export = ["export", str(nnunet_run), "--nnunet"]
    _fails(capsys, "do not fit the network of plans configuration '3d_fullres': .* e.g. "
           r"encoder.stages.0.0.convs.0.conv.weight \(8, 1, 3, 3, 3\) vs \(4, 1, 3, 3, 3\)",
           [*export, str(tmp_path / "x.pth"), "--nnunet-plans", str(other)])
    assert not (tmp_path / "x.pth").exists()
    reference = tmp_path / "reference.pt"
    save_model(reference, create_model("unet3d", width=4))
    _fails(capsys, "needs a checkpoint of the nnunet backbone, this one holds reference",
           ["export", str(reference), "--nnunet", str(tmp_path / "y.pth")])
    _fails(capsys, "leave out --out",
           [*export, str(tmp_path / "z.pth"), "--out", str(tmp_path / "z2.pth")])
    taken = tmp_path / "taken.pth"
    taken.write_bytes(b"mine")
    _fails(capsys, "already exists", [*export, str(taken)])
    assert taken.read_bytes() == b"mine"


def test_plans_are_only_for_the_nnunet_backbone(
    nnunet_run: Path, plans_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pretrain = ["pretrain", str(nnunet_run.parents[2] / "patterns"), "--out",
                str(tmp_path / "run"), *PRETRAIN]
    _fails(capsys, "--plans builds nnU-Net's network: it needs --backbone nnunet",
           [*pretrain, "--plans", str(plans_file)])
    _fails(capsys, "pass --plans", [*pretrain, "--backbone", "nnunet"])
    assert not (tmp_path / "run").exists()  # refused before the folder was claimed


def test_phantoms_in_nnunet_s_raw_layout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity

    out = tmp_path / "Dataset501_Phantoms"
    tiny = ["--n", "2", "--shape", "32", "32", "24", "--workers", "1"]
    assert main(["phantoms", "--out", str(out), "--layout", "nnunet", *tiny]) == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "CT"} and meta["numTraining"] == 2
    assert meta["labels"] == {"background": 0, "nodule": 1}
    images = sorted(p.name for p in (out / "imagesTr").iterdir())
    labels = sorted(p.name for p in (out / "labelsTr").iterdir())
    assert images == ["phantom-0000_0000.nii.gz", "phantom-0001_0000.nii.gz"]
    assert labels == ["phantom-0000.nii.gz", "phantom-0001.nii.gz"]
    assert (out / "phantoms" / "annotations.csv").is_file()
    verify_dataset_integrity(str(out), num_processes=1)  # nnU-Net's own check; raises if bad
    _fails(capsys, "must be named DatasetXXX_Name",
           ["phantoms", "--out", str(tmp_path / "phantoms"), "--layout", "nnunet", *tiny])
    assert not (tmp_path / "phantoms").exists()


def test_info_and_the_other_exports_rebuild_it_from_the_card(
    nnunet_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from semantic_genesis.models import load_model

    assert main(["info", str(nnunet_run)]) == 0
    assert "architecture (model card): nnunet-ynet(" in capsys.readouterr().out
    encoder = tmp_path / "encoder.pt"
    assert main(["export", str(nnunet_run), "--encoder-only", "--out", str(encoder)]) == 0
    model = load_model(encoder)  # the plans travel in the card
    assert model.model_name == "nnunet-encoder" and model.load_report.ok
    full = read_checkpoint(nnunet_run)["state_dict"]
    assert all(torch.equal(v, full[k]) for k, v in model.state_dict().items())
