"""A MONAI backbone pre-trains and fine-tunes through the same verbs (issue 15, "Backbone"):
`semgen pretrain --backbone monai-basicunet`, then `semgen finetune --init best.pt`, and the
checkpoint's model card names the backbone all the way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from semantic_genesis.cli import main
from semantic_genesis.models import ModelCard, load_model
from semantic_genesis.models.checkpoint import read_checkpoint
from semantic_genesis.models.monai_backbones import BasicUNetBackbone
from semantic_genesis.models.unet import YNet3D

PRETRAIN = ["--width", "4", "--epochs", "1", "--batch-size", "6", "--no-figures", "--no-multires"]
FINETUNE = ["--epochs", "1", "--patch", "16", "16", "16", "--batch-size", "4",
            "--steps-per-epoch", "1"]


@pytest.fixture(scope="module")
def monai_run(engine_patterns: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One epoch of Semantic Genesis on a width-4 MONAI BasicUNet; its best.pt."""
    run = tmp_path_factory.mktemp("monai_run") / "run"
    assert main(["pretrain", str(engine_patterns), "--out", str(run),
                 "--backbone", "monai-basicunet", *PRETRAIN]) == 0
    return run / "checkpoints" / "best.pt"


def test_pretraining_a_monai_backbone_records_it_in_the_card(monai_run: Path) -> None:
    card = ModelCard.from_dict(read_checkpoint(monai_run)["model_card"])
    assert card.backbone == "monai-basicunet" and card.architecture == "monai-basicunet-ynet"
    model = load_model(monai_run)  # rebuilt from the card, loaded strictly
    assert isinstance(model, BasicUNetBackbone) and model.width == 4 and model.n_classes == 3


@pytest.mark.parametrize("task", ["segment", "classify"])
def test_the_pretrained_monai_backbone_fine_tunes(
    monai_run: Path, tiny_data: Path, tmp_path: Path, task: str
) -> None:
    out = tmp_path / task
    assert main(["finetune", "--task", task, "--data", str(tiny_data), "--out", str(out),
                 "--init", str(monai_run), *FINETUNE]) == 0
    init = json.loads((out / "metrics.json").read_text())["initialisation"]
    assert init["pretrained"] and init["backbone"] == "monai-basicunet"
    assert init["architecture"] == ("monai-basicunet" if task == "segment"
                                    else "monai-basicunet-encoder")
    from semantic_genesis.models import load_model

    card = torch.load(out / "model.pt", weights_only=True)["model_card"]
    assert card["backbone"] == "monai-basicunet" and card["architecture"] == init["architecture"]
    assert load_model(out / "model.pt").load_report.ok  # the fine-tuned weights reload by card


def test_scratch_fine_tuning_takes_the_backbone_flag(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "scratch"
    assert main(["finetune", "--task", "segment", "--data", str(tiny_data), "--out", str(out),
                 "--init", "scratch", "--backbone", "monai-basicunet", "--width", "4",
                 *FINETUNE, "--no-save-model"]) == 0
    init = json.loads((out / "metrics.json").read_text())["initialisation"]
    assert init["backbone"] == "monai-basicunet" and not init["pretrained"]


def test_a_checkpoint_of_another_backbone_is_refused_in_one_line(
    monai_run: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    code = main(["finetune", "--task", "segment", "--data", str(tiny_data), "--out", str(out),
                 "--init", str(monai_run), "--backbone", "reference", *FINETUNE])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(monai_run) in err[0]
    assert "holds a monai-basicunet backbone" in err[0] and "not reference" in err[0]
    assert not out.exists()  # refused before any data or folder
    code = main(["finetune", "--task", "segment", "--data", str(tiny_data), "--out", str(out),
                 "--init", str(monai_run), "--width", "8", *FINETUNE])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--width 8 differs from the checkpoint's width 4" in err[0]
    assert not out.exists()  # refused before any data or folder
    code = main(["finetune", "--task", "segment", "--data", str(tiny_data), "--out", str(out),
                 "--backbone", "resnet", *FINETUNE])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "backbone = 'resnet': must be one of" in err[0]


def test_pretraining_refuses_what_the_backbone_cannot_take(
    engine_patterns: Path, monai_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["pretrain", str(engine_patterns), "--out", str(tmp_path / "a"),
                 "--backbone", "resnet", *PRETRAIN])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown backbone 'resnet'" in err[0]
    code = main(["pretrain", str(engine_patterns), "--out", str(tmp_path / "b"),
                 "--init", str(monai_run), *PRETRAIN])  # a MONAI checkpoint into the reference
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(monai_run) in err[0]


def test_the_reference_backbone_is_still_the_default(engine_patterns: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["pretrain", str(engine_patterns), "--out", str(run), *PRETRAIN]) == 0
    best = run / "checkpoints" / "best.pt"
    card = ModelCard.from_dict(read_checkpoint(best)["model_card"])
    assert card.backbone == "reference" and card.architecture == "ynet3d"
    assert type(load_model(best)) is YNet3D
