"""`semgen export` never replaces its input nor a file it was not told to replace, and leaves
nothing half-written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from semantic_genesis.cli import main
from semantic_genesis.models import ModelCard, create_model, save_model
from semantic_genesis.utils.atomic import TMP_PREFIX


@pytest.fixture()
def ckpt(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt"
    card = ModelCard(architecture="ynet3d", width=4, n_classes=3, patch_size=(16, 16, 16))
    save_model(path, create_model("ynet3d", width=4, n_classes=3), card)
    return path


def _export(ckpt: Path, out: Path, *extra: str) -> int:
    return main(["export", str(ckpt), "--out", str(out), "--encoder-only", *extra])


def test_export_onto_its_own_input_is_refused_even_with_overwrite(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = ckpt.read_bytes()
    link = tmp_path / "link.pt"
    link.symlink_to(ckpt)
    hard = tmp_path / "hard.pt"
    os.link(ckpt, hard)
    for out in (ckpt, link, hard, tmp_path / "." / "model.pt"):
        assert _export(ckpt, out, "--overwrite") == 2
        assert "is the checkpoint being exported" in capsys.readouterr().err
    assert ckpt.read_bytes() == before


def test_an_existing_file_is_replaced_only_with_overwrite(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "encoder.pt"
    out.write_text("the user's file")
    assert _export(ckpt, out) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "the user's file"
    assert _export(ckpt, out, "--overwrite") == 0
    assert torch.load(out, weights_only=True)["model_card"]["architecture"] == "encoder3d"
    assert _export(ckpt, tmp_path) == 2
    assert "is a folder" in capsys.readouterr().err


def test_a_disk_fault_is_one_line_and_leaves_no_file(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "out"))

    monkeypatch.setattr(torch, "save", read_only)
    (tmp_path / "out").mkdir()
    assert _export(ckpt, tmp_path / "out" / "encoder.pt") == 2
    err = capsys.readouterr().err
    assert "read-only" in err and len(err.strip().splitlines()) == 1
    assert list((tmp_path / "out").iterdir()) == []
    assert not list(tmp_path.glob(f"**/{TMP_PREFIX}*"))


def test_bad_trace_options_are_refused(
    ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "m.ts"
    assert main(["export", str(ckpt), "--out", str(out), "--torchscript", "--batch-size", "0"]) == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err
    assert main(["export", str(ckpt), "--out", str(out), "--torchscript",
                 "--input-shape", "-16", "16", "16"]) == 2
    assert "--input-shape" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--n-classes", "-1"], "a head needs n_classes of at least 1, got -1"),
        (["--out-channels", "0"], "out_channels must be at least 1, got 0"),
        (["--width", "100000"], "width=100000"),
        (["--input-shape", "4096", "4096", "4096"], "choose a smaller --input-shape"),
    ],
)
def test_impossible_networks_and_inputs_are_refused_before_they_are_made(
    extra: list[str], message: str, ckpt: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "m.ts"
    assert main(["export", str(ckpt), "--out", str(out), "--torchscript", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
