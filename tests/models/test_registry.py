"""The registry and the front door."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from semantic_genesis.models import (
    EncoderClassifier,
    ModelCard,
    UNet3D,
    YNet3D,
    card_from_model,
    create_model,
    list_models,
    register_model,
    registry,
)
from semantic_genesis.utils.errors import SemgenError


def test_names_and_classes() -> None:
    assert {"unet3d", "ynet3d", "encoder3d"} <= set(list_models())
    # the pattern filters (other tests may have registered their own "*3d" models)
    found = list_models("*3d")
    assert {"encoder3d", "unet3d", "ynet3d"} <= set(found) and found == sorted(found)
    assert all(n.endswith("3d") for n in found) and "nnunet" not in found
    assert isinstance(create_model("unet3d", width=4), UNet3D)
    assert isinstance(create_model("ynet3d", width=4), YNet3D)
    assert isinstance(create_model("encoder3d", width=4), EncoderClassifier)


def test_create_model_passes_every_option() -> None:
    model = create_model(
        "ynet3d", in_channels=2, n_classes=5, width=4, norm="instance", head="keras", out_channels=3
    )
    seg, cls = model.eval()(torch.rand(1, 2, 16, 16, 16))
    assert seg.shape == (1, 3, 16, 16, 16) and cls.shape == (1, 5)
    assert isinstance(model.down_tr64.ops[0].bn1, nn.InstanceNorm3d)
    assert model.clc_out.kind == "keras"
    card = card_from_model(model, patch_size=(32, 32, 16))
    assert card.model_kwargs() == {
        "name": "ynet3d",
        "width": 4,
        "in_channels": 2,
        "n_classes": 5,
        "norm": "instance",
        "head": "keras",
        "out_channels": 3,
    }
    assert ModelCard.from_dict(card.to_dict()) == card


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(SemgenError, match="unknown model 'resnet50'; available: encoder2d"):
        create_model("resnet50")


def test_register_model_adds_a_name_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    @register_model
    def tiny_unet(**kw) -> nn.Module:
        return UNet3D(width=2, in_channels=kw["in_channels"])

    assert "tiny_unet" in list_models()
    assert create_model("tiny_unet", in_channels=3).width == 2
    with pytest.raises(ValueError, match="already registered"):
        register_model(tiny_unet)
