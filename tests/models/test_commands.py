"""`semgen info` and `semgen export` on a tiny checkpoint."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from semantic_genesis.cli import main
from semantic_genesis.cli.export import ONNX_HINT
from semantic_genesis.models import ModelCard, create_model, save_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    model = create_model("ynet3d", width=4, n_classes=3)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_model(
        path,
        model,
        ModelCard(
            architecture="ynet3d", width=4, n_classes=3, patch_size=(32, 32, 16), pretext="sg"
        ),
        epoch=7,
    )
    return path, model.eval()


def test_info_prints_card_counts_and_report(tiny, capsys: pytest.CaptureFixture[str]) -> None:
    path, model = tiny
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    counts = model.parameter_counts()
    assert "architecture      ynet3d" in out and "pretext           sg" in out
    assert f"total {counts['total']:,}" in out and f"head {counts['head']:,}" in out
    assert "other entries: epoch" in out
    assert "matched           115" in out and "missing             0" in out


def test_info_against_another_architecture(tiny, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = tiny
    assert main(["info", str(path), "--arch", "encoder3d", "--n-classes", "2", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["architecture"]["name"] == "encoder3d"
    assert info["parameters"]["decoder"] == 0
    report = info["load_report"]
    assert len(report["matched"]) == 56 + 7 and len(report["unexpected"]) == 50
    assert [k for k, _ in report["dropped"]] == ["clc_out.fc1.weight", "clc_out.fc1.bias"]
    assert main(["info", str(path), "--arch", "encoder3d", "--n-classes", "2", "--strict"]) == 2
    assert "weights do not load strictly" in capsys.readouterr().err


def test_info_refuses_an_unsafe_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    class Payload:
        def __reduce__(self):
            return print, ("code ran",)

    torch.save({"state_dict": {}, "x": Payload()}, tmp_path / "evil.pt")
    assert main(["info", str(tmp_path / "evil.pt")]) == 2
    captured = capsys.readouterr()
    assert "refused" in captured.err and "code ran" not in captured.out + captured.err


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_export_torchscript_reproduces_the_model(tiny, tmp_path: Path) -> None:
    path, model = tiny
    out = tmp_path / "tiny.ts.pt"
    assert main(["export", str(path), "--out", str(out), "--torchscript"]) == 0
    extra = {"model_card.json": ""}
    scripted = torch.jit.load(str(out), _extra_files=extra)
    assert json.loads(extra["model_card.json"])["patch_size"] == [32, 32, 16]
    x = torch.rand(1, 1, 32, 32, 16)
    with torch.no_grad():
        for got, want in zip(scripted(x), model(x), strict=True):
            assert torch.allclose(got, want, atol=1e-5)


def test_export_encoder_only(tiny, tmp_path: Path) -> None:
    path, model = tiny
    out = tmp_path / "encoder.pt"
    assert main(["export", str(path), "--out", str(out), "--encoder-only"]) == 0
    payload = torch.load(out, weights_only=True)
    assert all(k.startswith("down_tr") for k in payload["state_dict"])
    assert payload["model_card"]["architecture"] == "encoder3d"
    assert payload["model_card"]["notes"]["export"] == "encoder-only"
    encoder = create_model("encoder3d", width=4, n_classes=0, pretrained=out, strict=True).eval()
    x = torch.rand(2, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.allclose(encoder.encode(x)[0], model.encode(x)[0])


def test_export_onnx_needs_the_extra(
    tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = tiny
    out = tmp_path / "tiny.onnx"
    rc = main(["export", str(path), "--out", str(out), "--onnx"])
    if all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript")):
        import onnx

        assert rc == 0
        onnx.checker.check_model(onnx.load(str(out)))
    else:
        assert rc == 2 and not out.exists()
        assert ONNX_HINT in capsys.readouterr().err


def test_export_refuses_weights_that_do_not_fit(
    tiny, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = tiny
    rc = main(
        ["export", str(path), "--out", str(tmp_path / "x.pt"), "--torchscript", "--width", "8"]
    )
    assert rc == 2 and "with a different shape" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
