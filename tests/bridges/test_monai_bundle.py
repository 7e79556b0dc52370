"""MONAI bundles (issue 17 item 2): ``semgen export --monai-bundle`` writes a bundle that
``monai.bundle`` loads and runs with sliding-window inference on a phantom scan, and its output is
our model's on the same input."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from semantic_genesis.cli import main
from semantic_genesis.finetune.inference import predict_logits_volume
from semantic_genesis.io.intensity import normalize_intensity
from semantic_genesis.io.readers import read_volume
from semantic_genesis.models import ModelCard, card_from_model, create_model, save_model
from tests.bridges.single_thread import one_thread  # noqa: F401 (autouse)

PATCH = (16, 16, 16)



def checkpoint(path: Path, arch: str, seed: int = 0, **card: object) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(seed)
    kw = {"n_classes": 3} if "ynet" in arch or "encoder" in arch else {}
    model = create_model(arch, width=4, **kw, **{k: v for k, v in card.items()
                                                   if k == "out_channels"})
    for name, buf in model.named_buffers():  # non-trivial running statistics
        if name.endswith("running_mean"):
            buf.normal_(0, 0.1)
    fields = {k: v for k, v in card.items() if k != "out_channels"}
    save_model(path, model, card_from_model(model, patch_size=PATCH, **fields))
    return path, model


def run_bundle(bundle: Path, scans: Path, out: Path) -> None:
    """Initialise and run the bundle through monai.bundle's own workflow class."""
    from monai.bundle import ConfigWorkflow

    workflow = ConfigWorkflow(
        config_file=str(bundle / "configs" / "inference.json"),
        meta_file=str(bundle / "configs" / "metadata.json"), workflow_type="infer",
        bundle_root=str(bundle), dataset_dir=str(scans), output_dir=str(out))
    workflow.initialize()
    assert workflow.check_properties() == []  # every property MONAI requires of inference
    workflow.run()
    workflow.finalize()


def test_monai_basicunet_bundle_is_monai_native_and_matches_our_model(
    tiny_data: Path, tmp_path: Path
) -> None:
    ckpt, model = checkpoint(tmp_path / "sg.pt", "monai-basicunet-ynet")
    bundle = tmp_path / "bundle"
    assert main(["export", str(ckpt), "--monai-bundle", str(bundle)]) == 0
    for name in ("configs/metadata.json", "configs/inference.json", "models/model.pt",
                 "docs/README.md"):
        assert (bundle / name).is_file(), name
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    assert config["network_def"]["_target_"] == "BasicUNet"  # no semantic_genesis needed
    assert "semantic_genesis" not in json.dumps(config)
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert "semantic-genesis" not in meta["required_packages_version"]
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == list(PATCH)
    scans = tmp_path / "scans"
    scans.mkdir()
    scan = tiny_data / "images" / "case00.nii.gz"
    (scans / "case00.nii.gz").symlink_to(scan)
    run_bundle(bundle, scans, tmp_path / "eval")
    got = nib.load(tmp_path / "eval" / "case00_restored.nii.gz")
    # ours: the same scan through our reader, intensity recipe and sliding-window inference
    array = normalize_intensity(read_volume(scan).array, "ct")
    unet = create_model("monai-basicunet", width=4)
    unet.load_state_dict({k: v for k, v in model.state_dict().items()
                          if not k.startswith("clc_out.")})
    expected = torch.sigmoid(predict_logits_volume(unet, array, PATCH, torch.device("cpu")))[0]
    assert got.shape == array.shape
    np.testing.assert_allclose(np.asarray(got.dataobj), expected.numpy(), atol=1e-5)
    assert np.allclose(got.affine, nib.load(scan).affine, atol=1e-4)  # the input's own grid


def test_reference_segmentation_bundle_runs_through_monai_bundle_run(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fine-tuned 2-class reference U-Net whose card asks for other spacing: MONAI resamples,
    segments, and puts the label map back on the scan's grid (``monai.bundle.run``, what
    ``python -m monai.bundle run`` calls, with the README's arguments)."""
    ckpt, _ = checkpoint(tmp_path / "seg.pt", "unet3d", out_channels=2,
                         pretext="finetune-segment", semantic=False, spacing=(2.0, 2.0, 2.5))
    bundle = tmp_path / "bundle"
    assert main(["export", str(ckpt), "--monai-bundle", str(bundle)]) == 0
    config = json.loads((bundle / "configs" / "inference.json").read_text())
    assert config["network_def"]["_target_"] == "semantic_genesis.models.create_model"
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert "semantic-genesis" in meta["required_packages_version"]
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "case01.nii.gz").symlink_to(tiny_data / "images" / "case01.nii.gz")
    from monai.bundle import run

    monkeypatch.chdir(bundle)  # the command line's way: relative paths from the bundle's folder
    run(config_file="configs/inference.json", meta_file="configs/metadata.json",
        bundle_root=".", dataset_dir=str(scans), output_dir=str(tmp_path / "eval"))
    labels = nib.load(tmp_path / "eval" / "case01_seg.nii.gz")
    scan = nib.load(tiny_data / "images" / "case01.nii.gz")
    assert labels.shape == scan.shape and np.allclose(labels.affine, scan.affine, atol=1e-3)
    values = np.unique(np.asarray(labels.dataobj))
    assert set(values.tolist()) <= {0, 1}


def test_an_encoder_cannot_be_a_bundle(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ckpt, _ = checkpoint(tmp_path / "enc.pt", "encoder3d")
    assert main(["export", str(ckpt), "--monai-bundle", str(tmp_path / "b")]) == 2
    assert "needs a 3D network with a decoder" in capsys.readouterr().err
    assert ModelCard.from_dict(torch.load(ckpt, weights_only=True)["model_card"])
