"""``semgen convert`` (issue 17 item 3): the official Semantic Genesis / Models Genesis ``.pt``
and Keras ``.h5`` layouts become Hugging Face-format folders that load to the same outputs as the
official files loaded directly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from semantic_genesis.cli import main
from semantic_genesis.models import create_model
from tests.bridges.single_thread import one_thread  # noqa: F401 (autouse)
from tests.models.test_weights import (
    keras_unet_layers,
    official_sg_checkpoint,
    write_keras_h5,
    ynet_state,
)


def outputs(model: torch.nn.Module) -> tuple[torch.Tensor, ...]:
    x = torch.rand(2, 1, 16, 16, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y = model.eval()(x)
    return y if isinstance(y, tuple) else (y,)


def same(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_official_semantic_genesis_pt(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = official_sg_checkpoint(tmp_path / "semantic_genesis_chest_ct.pt", ynet_state(width=8))
    out = tmp_path / "sg-hf"
    assert main(["convert", str(path), str(out)]) == 0
    report = capsys.readouterr().out
    assert "load report" in report and "115" in report and "projection head" in report
    direct = create_model("ynet3d", width=8, n_classes=44, pretrained=path, strict=True)
    converted = create_model(None, pretrained=out)
    assert converted.load_report.ok and converted.n_classes == 44
    assert same(outputs(direct), outputs(converted))
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["ynet3d"] and config["semantic"] is True
    assert config["notes"]["release"] == "Semantic Genesis"
    assert config["notes"]["converted_from"] == path.name
    assert config["notes"]["load_report"]["dropped"] == 3  # the contrastive wrapper's leftovers


def test_models_genesis_pt(tmp_path: Path) -> None:
    torch.manual_seed(1)
    unet = create_model("unet3d", width=8)
    path = tmp_path / "Genesis_Chest_CT.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in unet.state_dict().items()},
                "optimizer_state_dict": {"state": {}, "param_groups": []}}, path)
    out = tmp_path / "mg-hf"
    assert main(["convert", str(path), str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["unet3d"] and config["semantic"] is False
    assert config["notes"]["release"] == "Models Genesis"
    assert same(outputs(create_model("unet3d", width=8, pretrained=path)),
                outputs(create_model(None, pretrained=out)))


def test_keras_h5(tmp_path: Path) -> None:
    path = tmp_path / "Genesis_Chest_CT.h5"
    write_keras_h5(path, keras_unet_layers(4, np.random.default_rng(1), decoder=True),
                   full_model=False)
    out = tmp_path / "keras-hf"
    assert main(["convert", str(path), str(out)]) == 0
    direct = create_model("unet3d", width=4, pretrained=path, strict=True)
    converted = create_model(None, pretrained=out)
    assert converted.width == 4 and same(outputs(direct), outputs(converted))
    config = json.loads((out / "config.json").read_text())
    assert config["notes"]["source_format"] == "Keras .h5"
    assert config["notes"]["load_report"]["adapted"] == 6  # Keras' up-sampling as a conv


def test_architecture_options_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = official_sg_checkpoint(tmp_path / "sg.pt", ynet_state(width=8))
    # the official file into the U-Net only: the head is dropped, the rest converts
    assert main(["convert", str(path), str(tmp_path / "unet"), "--arch", "unet3d"]) == 0
    assert json.loads((tmp_path / "unet" / "config.json").read_text())["architectures"] == [
        "unet3d"]
    # a width that does not fit is refused in one line, and nothing is written
    assert main(["convert", str(path), str(tmp_path / "bad"), "--width", "4"]) == 2
    assert "do not fit" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    # the output may not be the source's folder
    assert main(["convert", str(path), str(tmp_path)]) == 2
