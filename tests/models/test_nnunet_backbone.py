"""nnU-Net's own network as a backbone: built by nnU-Net's code from a plans file, split into
encode/decode that compute exactly nnU-Net's forward (in nnU-Net's axis order), rebuilt from
its model card, and refusing what it cannot build with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from semantic_genesis.bridges.nnunet import minimal_plans
from semantic_genesis.models import build_backbone, card_from_model, create_model, load_model
from semantic_genesis.models.backbone import Backbone, Encoder, check_input_size
from semantic_genesis.models.checkpoint import save_model
from semantic_genesis.models.nnunet_backbone import NnUNetBackbone
from semantic_genesis.models.registry import CARD_KWARGS, list_backbones
from semantic_genesis.utils.errors import SemgenError


def _nnunet_network(plans: dict, out_channels: int = 1) -> torch.nn.Module:
    arch = plans["configurations"]["3d_fullres"]["architecture"]
    return get_network_from_plans(arch["network_class_name"], arch["arch_kwargs"],
                                  arch["_kw_requires_import"], 1, out_channels,
                                  deep_supervision=False)


@pytest.mark.parametrize("network", ["PlainConvUNet", "ResidualEncoderUNet"])
def test_encode_decode_is_nnunet_s_own_forward_in_its_axis_order(network: str) -> None:
    torch.manual_seed(0)
    plans = minimal_plans(patch_size=(8, 16, 32), network=network)
    ours = create_model("nnunet", plans=plans, out_channels=2).eval()
    theirs = _nnunet_network(plans, 2).eval()
    assert isinstance(ours, Backbone) and ours.backbone_name == "nnunet"
    assert list(ours.state_dict()) == list(theirs.state_dict())  # nnU-Net's keys, all of them
    theirs.load_state_dict(ours.state_dict())
    x = torch.rand(2, 1, 32, 16, 8)  # ours: (x, y, z); nnU-Net: SimpleITK's (z, y, x)
    expected = theirs(x.permute(0, 1, 4, 3, 2)).permute(0, 1, 4, 3, 2)
    bottleneck, skips = ours.encode(x)
    assert bottleneck.shape[1] == ours.bottleneck_channels == 16
    assert torch.allclose(ours.decode(bottleneck, skips), expected, atol=1e-6)
    assert ours(x).shape == (2, 2, 32, 16, 8)


def test_the_roles_and_the_head_on_the_deepest_stage() -> None:
    plans = minimal_plans()
    ynet = build_backbone("nnunet", 32, n_classes=3, plans=plans)
    assert ynet.model_name == "nnunet-ynet" and ynet.width == 4  # the plans' features, not 32
    seg, cls = ynet.eval()(torch.rand(2, 1, 32, 32, 16))
    assert seg.shape == (2, 1, 32, 32, 16) and cls.shape == (2, 3)
    assert ynet.parameter_counts()["head"] == sum(p.numel() for p in ynet.clc_out.parameters())
    encoder = create_model("nnunet-encoder", plans=plans, n_classes=2, head="mlp")
    assert isinstance(encoder, Encoder) and not isinstance(encoder, Backbone)
    assert not any(k.startswith("decoder.") for k in encoder.state_dict())
    assert encoder(torch.rand(1, 1, 16, 16, 16)).shape == (1, 2)
    assert "nnunet" in list_backbones()


def test_strides_decide_the_sizes_per_axis() -> None:
    # nnU-Net order (z, y, x): no pooling along z, as the planner does for thick slices
    net = create_model("nnunet", plans=minimal_plans(patch_size=(4, 32, 32)))
    assert net.axis_multiples == (4, 4, 1) and net.size_multiple == 4
    assert net(torch.rand(1, 1, 16, 8, 3)).shape == (1, 1, 16, 8, 3)
    with pytest.raises(SemgenError, match=r"input size \(16, 6, 3\).*multiples of \(4, 4, 1\)"):
        net(torch.rand(1, 1, 16, 6, 3))
    with pytest.raises(SemgenError, match="multiple of 4"):
        check_input_size(net, (16, 16, 6))


def test_transpose_forward_of_the_plans_is_followed() -> None:
    torch.manual_seed(0)
    plans = minimal_plans(patch_size=(8, 16, 32))
    plans["transpose_forward"], plans["transpose_backward"] = [2, 0, 1], [1, 2, 0]
    ours = create_model("nnunet", plans=plans).eval()
    theirs = _nnunet_network(plans).eval()
    theirs.load_state_dict(ours.state_dict())
    x = torch.rand(1, 1, 8, 16, 32)
    # SimpleITK array (z, y, x) = ours reversed, then nnU-Net's transpose (2, 0, 1): (x, z, y)
    nn_x = x.permute(0, 1, 4, 3, 2).permute(0, 1, 4, 2, 3)
    assert ours.axis_multiples == (2, 4, 4)  # nnU-Net axis 0 (our x) pooled once
    expected = theirs(nn_x)
    assert torch.allclose(ours(x), expected.permute(0, 1, 2, 4, 3), atol=1e-6)


def test_a_checkpoint_rebuilds_from_its_card_alone(tmp_path: Path) -> None:
    plans_file = tmp_path / "nnUNetPlans.json"
    plans_file.write_text(json.dumps(minimal_plans()))
    net = build_backbone("nnunet", 32, n_classes=3, plans=plans_file).eval()
    card = card_from_model(net, patch_size=(32, 32, 16), notes={CARD_KWARGS: net.card_kwargs()})
    save_model(tmp_path / "m.pt", net, card)
    plans_file.unlink()  # the card holds the plans themselves
    again = load_model(tmp_path / "m.pt").eval()
    assert isinstance(again, NnUNetBackbone) and again.load_report.ok
    x = torch.rand(1, 1, 32, 32, 16)
    assert all(torch.equal(a, b) for a, b in zip(net(x), again(x), strict=True))


def test_what_cannot_be_built_is_refused_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(SemgenError, match="built from an nnU-Net plans file: pass --plans"):
        create_model("nnunet")
    with pytest.raises(SemgenError, match="plans file not found"):
        create_model("nnunet", plans=tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SemgenError, match="not a readable nnU-Net plans file") as err:
        create_model("nnunet", plans=bad)
    assert str(bad) in str(err.value)
    with pytest.raises(SemgenError, match="no configuration '3d_lowres'; they have 3d_fullres"):
        create_model("nnunet", plans=minimal_plans(), configuration="3d_lowres")
    flat = minimal_plans(patch_size=(32, 32))
    with pytest.raises(SemgenError, match="is not 3D"):
        create_model("nnunet", plans=flat)
    with pytest.raises(SemgenError, match="needs n_classes of at least 1"):
        create_model("nnunet-ynet", plans=minimal_plans(), n_classes=0)
