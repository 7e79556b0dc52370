"""The Backbone protocol: the reference U-Net and MONAI's BasicUNet both follow it, the split
BasicUNet computes exactly what MONAI's own forward does, and families register by name."""

from __future__ import annotations

import pytest
import torch
from monai.networks.nets import BasicUNet
from torch import nn

from semantic_genesis.models import (
    UNet3D,
    YNet3D,
    build_backbone,
    card_from_model,
    create_model,
    load_model,
    register_model,
    registry,
    save_model,
)
from semantic_genesis.models.backbone import Backbone, Encoder, check_input_size
from semantic_genesis.models.monai_backbones import BasicUNetBackbone
from semantic_genesis.utils.errors import SemgenError

FULL = ("unet3d", "ynet3d", "monai-basicunet", "monai-basicunet-ynet")
ENCODERS = ("encoder3d", "monai-basicunet-encoder")


@pytest.mark.parametrize("name", FULL)
def test_full_networks_follow_the_backbone_protocol(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, width=4, n_classes=3, out_channels=2).eval()
    assert isinstance(model, Backbone)
    x = torch.rand(2, 1, 32, 32, 16)
    bottleneck, skips = model.encode(x)
    assert bottleneck.shape[1] == model.bottleneck_channels
    assert all(s.shape[0] == 2 for s in skips) and skips[0].shape[2:] == x.shape[2:]
    out = model.decode(bottleneck, skips)
    assert out.shape == (2, model.out_channels, 32, 32, 16)
    assert model.in_channels == 1 and model.out_channels == 2
    encoder = model.encoder_state_dict()
    assert encoder and all(k.startswith(model.encoder_prefixes) for k in encoder)
    assert not any(k.startswith(model.encoder_prefixes) for k in model.state_dict()
                   if k.startswith(model.decoder_prefixes))
    assert any(k.startswith(model.output_prefix) for k in model.state_dict())


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_only_networks_are_encoders_not_backbones(name: str) -> None:
    model = create_model(name, width=4, n_classes=3, head="mlp").eval()
    assert isinstance(model, Encoder) and not isinstance(model, Backbone)
    assert model(torch.rand(2, 1, 16, 16, 16)).shape == (2, 3)
    assert not any(k.startswith(("up_tr", "upcat_", "out_tr", "final_conv"))
                   for k in model.state_dict())


def test_basicunet_split_equals_monai_forward() -> None:
    torch.manual_seed(0)
    ours = create_model("monai-basicunet", width=4, out_channels=2, norm="instance")
    monai = BasicUNet(3, 1, 2, features=(4, 4, 8, 16, 32, 4), norm=("instance", {"affine": True}))
    monai.load_state_dict(ours.state_dict())  # same modules, same keys
    assert list(ours.state_dict()) == list(monai.state_dict())
    x = torch.rand(2, 1, 32, 16, 16)
    for training in (False, True):
        ours.train(training)
        monai.train(training)
        expected = monai(x)
        assert torch.equal(ours.decode(*ours.encode(x)), expected)
        assert torch.equal(ours(x), expected)


def test_reference_backbone_is_today_s_ynet_and_unet() -> None:
    torch.manual_seed(0)
    ynet = build_backbone("reference", 4, n_classes=5, head="keras")
    torch.manual_seed(0)
    expected = create_model("ynet3d", width=4, n_classes=5, head="keras")
    assert type(ynet) is YNet3D and ynet.model_name == "ynet3d"
    assert list(ynet.state_dict()) == list(expected.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(ynet.state_dict().values(),
                                                  expected.state_dict().values(), strict=True))
    x = torch.rand(2, 1, 16, 16, 16)
    for a, b in zip(ynet.eval()(x), expected.eval()(x), strict=True):
        assert torch.equal(a, b)
    unet = build_backbone("reference", 4)
    assert type(unet) is UNet3D and unet.model_name == "unet3d"


def test_monai_backbone_with_a_head_and_its_card() -> None:
    net = build_backbone("monai-basicunet", 4, n_classes=3)
    assert net.model_name == "monai-basicunet-ynet" and net.clc_out is not None
    seg, cls = net.eval()(torch.rand(2, 1, 16, 16, 16))
    assert seg.shape == (2, 1, 16, 16, 16) and cls.shape == (2, 3)
    card = card_from_model(net)
    assert card.backbone == "monai-basicunet" and card.architecture == "monai-basicunet-ynet"
    assert card_from_model(create_model("unet3d", width=4)).backbone == "reference"


def test_a_monai_checkpoint_rebuilds_from_its_card(tmp_path) -> None:
    net = build_backbone("monai-basicunet", 4, n_classes=3).eval()
    save_model(tmp_path / "m.pt", net, card_from_model(net, patch_size=(16, 16, 16)))
    again = load_model(tmp_path / "m.pt").eval()
    assert type(again) is BasicUNetBackbone and again.model_card.backbone == "monai-basicunet"
    x = torch.rand(2, 1, 16, 16, 16)
    assert all(torch.equal(a, b) for a, b in zip(net(x), again(x), strict=True))


def test_the_registry_lists_backbones_and_names_unknown_ones() -> None:
    assert {"reference", "monai-basicunet"} <= set(registry.list_backbones())
    assert registry.backbone_model("reference", "encoder") == "encoder3d"
    assert registry.backbone_of("monai-basicunet-ynet") == "monai-basicunet"
    assert registry.backbone_of("unet2d") is None
    with pytest.raises(SemgenError, match="unknown backbone 'resnet'; available: .*monai-basicunet"):
        build_backbone("resnet", 4)


def test_a_family_registered_outside_the_package_builds_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_ROLES", dict(registry._ROLES))

    @register_model(name="tiny-unet", backbone="tiny", role="unet")
    def tiny(**kw) -> nn.Module:
        return UNet3D(width=2, out_channels=kw["out_channels"])

    assert "tiny" in registry.list_backbones()
    assert build_backbone("tiny", 8, out_channels=3).out_channels == 3
    with pytest.raises(SemgenError, match="backbone 'tiny' has no 'ynet' model"):
        build_backbone("tiny", 8, n_classes=2)
    with pytest.raises(ValueError, match="already has a 'unet' model"):
        register_model(tiny, name="tiny-unet-2", backbone="tiny", role="unet")
    with pytest.raises(ValueError, match="role 'decoder'"):
        register_model(tiny, name="x", backbone="tiny", role="decoder")


def test_sizes_the_poolings_cannot_halve_are_refused() -> None:
    net = create_model("monai-basicunet", width=4).eval()
    with pytest.raises(SemgenError, match=r"input size \(24, 32, 16\).*multiple of 16"):
        net(torch.rand(1, 1, 24, 32, 16))
    with pytest.raises(SemgenError, match=r"patch \(64, 64, 40\): monai-basicunet needs .* 16"):
        check_input_size(net, (64, 64, 40))
    check_input_size(net, (64, 64, 32))
    check_input_size(create_model("unet3d", width=4), (64, 64, 40))  # three poolings: 8


def test_monai_backbone_refuses_what_it_cannot_build() -> None:
    with pytest.raises(SemgenError, match="norm 'batch_always' is not available"):
        create_model("monai-basicunet", width=4, norm="batch_always")
    with pytest.raises(SemgenError, match="needs n_classes of at least 1"):
        create_model("monai-basicunet-ynet", width=4, n_classes=0)
    group = create_model("monai-basicunet", width=4, norm="group")
    assert any(isinstance(m, nn.GroupNorm) for m in group.modules())


def test_info_and_export_read_a_monai_checkpoint(tmp_path, capsys) -> None:
    from semantic_genesis.cli import main

    net = build_backbone("monai-basicunet", 4, n_classes=3).eval()
    src = tmp_path / "m.pt"
    save_model(src, net, card_from_model(net, patch_size=(16, 16, 16)))
    assert main(["info", str(src)]) == 0
    shown = capsys.readouterr().out
    assert "monai-basicunet-ynet" in shown and "encoder 56,220" in shown
    assert main(["export", str(src), "--out", str(tmp_path / "enc.pt"), "--encoder-only"]) == 0
    encoder = load_model(tmp_path / "enc.pt").eval()
    assert encoder.model_card.architecture == "monai-basicunet-encoder"
    assert encoder.model_card.backbone == "monai-basicunet"
    x = torch.rand(2, 1, 16, 16, 16)
    assert torch.equal(encoder(x), net.encode(x)[0].flatten(2).mean(dim=2))  # pooled features
    code = main(["export", str(src), "--out", str(tmp_path / "m.ts"), "--torchscript",
                 "--input-shape", "24", "24", "24"])
    err = capsys.readouterr().err
    assert code == 2 and "each a multiple of 16, got [24, 24, 24]" in err
