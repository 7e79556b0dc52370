"""Target networks: no ReLU before the sigmoid, initialisation from checkpoints, freezing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from semantic_genesis.finetune.backbone import LinearProbe, build_model, set_train_mode
from semantic_genesis.models import ModelCard, create_model
from semantic_genesis.models.checkpoint import save_checkpoint
from semantic_genesis.utils.errors import SemgenError


@pytest.fixture(scope="module")
def ynet_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    torch.manual_seed(1)
    model = create_model("ynet3d", width=8, n_classes=3)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    card = ModelCard(architecture="ynet3d", width=8, n_classes=3, patch_size=(16, 16, 16))
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint({"state_dict": state, "model_card": card.to_dict()}, path)
    return path, state


def test_classifier_can_output_probabilities_below_one_half() -> None:
    """The SG README puts a ReLU before the sigmoid, so p >= 0.5 always (method.md §9.23).
    Here a few steps on negatives push the probability well below 0.5."""
    torch.manual_seed(0)
    model, _ = build_model("classify", 1, width=8)
    x = torch.rand(4, 1, 16, 16, 16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(15):
        loss = F.binary_cross_entropy_with_logits(model(x)[:, 0], torch.zeros(4))
        opt.zero_grad()
        loss.backward()
        opt.step()
    set_train_mode(model, False)
    with torch.no_grad():
        prob = torch.sigmoid(model(x)[:, 0])
    assert prob.max() < 0.3


def test_checkpoint_initialises_encoder_and_decoder(ynet_ckpt) -> None:
    path, state = ynet_ckpt
    clf, info = build_model("classify", 1, init=str(path))
    assert info["pretrained"] and info["width"] == 8 and not info["load"]["missing"][:0]
    assert torch.equal(
        clf.state_dict()["down_tr512.ops.1.conv1.weight"], state["down_tr512.ops.1.conv1.weight"]
    )
    seg, info = build_model("segment", 1, init=str(path))
    assert torch.equal(
        seg.state_dict()["up_tr64.ops.1.conv1.weight"], state["up_tr64.ops.1.conv1.weight"]
    )
    assert torch.equal(
        seg.state_dict()["out_tr.final_conv.weight"], state["out_tr.final_conv.weight"]
    )
    assert info["decoder_pretrained"]
    seg3, info = build_model("segment", 3, init=str(path))  # 3 labels: new output conv
    assert info["load"]["shape_mismatch"] == ["out_tr.final_conv.weight", "out_tr.final_conv.bias"]
    assert seg3(torch.rand(1, 1, 16, 16, 16)).shape == (1, 3, 16, 16, 16)


def test_bad_initialisations(ynet_ckpt, tmp_path: Path) -> None:
    path, _ = ynet_ckpt
    with pytest.raises(SemgenError, match="width"):
        build_model("classify", 1, init=str(path), width=16)
    with pytest.raises(SemgenError, match="not found"):
        build_model("classify", 1, init=str(tmp_path / "missing.pt"))
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, tmp_path / "other.pt")
    with pytest.raises(SemgenError):
        build_model("classify", 1, init=str(tmp_path / "other.pt"))


def test_frozen_encoder_and_linear_probe_keep_pretrained_weights(ynet_ckpt) -> None:
    path, state = ynet_ckpt
    model, info = build_model("segment", 1, init=str(path), freeze_encoder=True)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    set_train_mode(model, True)
    model(torch.rand(2, 1, 16, 16, 16)).mean().backward()
    opt.step()
    after = model.state_dict()
    for key in ("down_tr64.ops.0.conv1.weight", "down_tr64.ops.0.bn1.running_mean"):
        assert torch.equal(after[key], state[key])  # weights and BN statistics unchanged
    assert not torch.equal(after["up_tr64.ops.1.conv1.weight"], state["up_tr64.ops.1.conv1.weight"])
    probe, info = build_model("classify", 1, init=str(path), linear_probe=True)
    assert isinstance(probe, LinearProbe)
    trainable = [n for n, p in probe.named_parameters() if p.requires_grad]
    assert trainable == ["fc.weight", "fc.bias"]
    assert info["trainable_parameters"] == 16 * 8 + 1


def test_official_layout_without_a_card_loads(ynet_ckpt, tmp_path: Path) -> None:
    """The released SG/MG files: no model card, keys behind ``module.`` (and SG's misspelled
    ``classficationNet.``); width and norm are read off the tensors."""
    _, state = ynet_ckpt
    for prefix in ("module.", "module.classficationNet."):
        path = tmp_path / f"official-{prefix.count('.')}.pt"
        torch.save({"state_dict": {prefix + k: v for k, v in state.items()}, "epoch": 3}, path)
        model, info = build_model("classify", 1, init=str(path))
        assert info["width"] == 8 and info["model_card"]["name"] == "ynet3d"
        assert torch.equal(
            model.state_dict()["down_tr256.ops.0.conv1.weight"],
            state["down_tr256.ops.0.conv1.weight"],
        )


@pytest.fixture(scope="module")
def monai_ckpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A pre-trained-like MONAI BasicUNet with a 3-class head, saved with its model card."""
    from semantic_genesis.models import build_backbone, card_from_model, save_model

    torch.manual_seed(2)
    model = build_backbone("monai-basicunet", 4, n_classes=3)
    path = tmp_path_factory.mktemp("monai") / "best.pt"
    save_model(path, model, card_from_model(model, patch_size=(16, 16, 16)))
    return path, {k: v.clone() for k, v in model.state_dict().items()}


def test_a_monai_checkpoint_fine_tunes_as_the_same_backbone(monai_ckpt) -> None:
    path, state = monai_ckpt
    clf, info = build_model("classify", 1, init=str(path), patches={"patch": (16, 16, 16)})
    assert info["backbone"] == "monai-basicunet"
    assert info["architecture"] == "monai-basicunet-encoder"
    assert info["load"]["missing"] and all(k.startswith("clc_out.") for k in info["load"]["missing"])
    assert torch.equal(clf.state_dict()["down_4.convs.conv_1.conv.weight"],
                       state["down_4.convs.conv_1.conv.weight"])
    assert clf.eval()(torch.rand(2, 1, 16, 16, 16)).shape == (2, 1)
    seg, info = build_model("segment", 3, init=str(path))
    assert info["architecture"] == "monai-basicunet" and info["decoder_pretrained"]
    assert torch.equal(seg.state_dict()["upcat_1.convs.conv_0.conv.weight"],
                       state["upcat_1.convs.conv_0.conv.weight"])
    assert "final_conv.weight" in info["load"]["shape_mismatch"]  # 1 -> 3 outputs: new conv
    probe, _ = build_model("segment", 3, init=str(path), linear_probe=True)
    assert {n for n, p in probe.named_parameters() if p.requires_grad} == {
        "final_conv.weight", "final_conv.bias"}
    frozen, _ = build_model("classify", 1, init=str(path), freeze_encoder=True)
    trainable = {n for n, p in frozen.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("clc_out.") for n in trainable)


def test_scratch_builds_the_backbone_asked_for() -> None:
    model, info = build_model("segment", 2, width=4, backbone="monai-basicunet")
    assert info["backbone"] == "monai-basicunet" and not info["pretrained"]
    assert model.eval()(torch.rand(2, 1, 16, 16, 16)).shape == (2, 2, 16, 16, 16)
    _, info = build_model("classify", 1, width=4)
    assert info["backbone"] == "reference" and info["architecture"] == "encoder3d"


def test_a_checkpoint_of_another_backbone_is_refused(ynet_ckpt, monai_ckpt) -> None:
    with pytest.raises(SemgenError, match="holds a reference backbone .*not monai-basicunet"):
        build_model("classify", 1, init=str(ynet_ckpt[0]), backbone="monai-basicunet")
    with pytest.raises(SemgenError, match="holds a monai-basicunet backbone .*not reference"):
        build_model("segment", 2, init=str(monai_ckpt[0]), backbone="reference")
    with pytest.raises(SemgenError, match="unknown backbone 'resnet'"):
        build_model("segment", 2, backbone="resnet")


def test_patches_the_backbone_cannot_take_are_refused_before_training() -> None:
    with pytest.raises(SemgenError, match=r"inference_patch \(24, 24, 24\): monai-basicunet .* 16"):
        build_model("segment", 2, width=4, backbone="monai-basicunet",
                    patches={"patch": (32, 32, 16), "inference_patch": (24, 24, 24)})
    build_model("segment", 2, width=4, patches={"patch": (24, 24, 24)})  # reference: 8 is enough


def test_the_cli_refuses_a_patch_the_backbone_cannot_take_before_any_work(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from semantic_genesis.cli import main

    out = tmp_path / "o"
    code = main(["finetune", "--task", "segment", "--data", str(tiny_data), "--out", str(out),
                 "--backbone", "monai-basicunet", "--width", "4", "--patch", "24", "24", "24"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "patch (24, 24, 24): monai-basicunet needs every size to be a multiple of 16" in err[0]
    assert not out.exists()
