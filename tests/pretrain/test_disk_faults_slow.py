"""`semgen pretrain` and `semgen export` on a really full or read-only disk (a small tmpfs): one
line, exit 2, no temporary file left, and a retry after freeing space works."""

from __future__ import annotations

from pathlib import Path

import pytest

from semantic_genesis.cli import main
from semantic_genesis.models import ModelCard, create_model, save_model
from semantic_genesis.utils.atomic import TMP_PREFIX
from tests.disks import mounted_tmpfs, remount_tmpfs

pytestmark = pytest.mark.slow
ARGS = ["--width", "4", "--epochs", "1", "--batch-size", "6", "--no-figures", "--no-multires"]


def _one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_pretrain_on_a_full_then_freed_disk(
    engine_patterns: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mounted_tmpfs(tmp_path / "disk", "64k") as disk:
        run = disk / "run"
        assert main(["pretrain", str(engine_patterns), "--out", str(run), *ARGS]) == 2
        assert "no space left on the device" in _one_line(capsys.readouterr().err)
        assert not list(disk.rglob(f"{TMP_PREFIX}*"))
        remount_tmpfs(disk, "size=64m")  # space freed: the same command works
        assert main(["pretrain", str(engine_patterns), "--out", str(run), *ARGS]) == 0
        assert (run / "checkpoints" / "last.pt").is_file()


def test_pretrain_into_a_read_only_disk(
    engine_patterns: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with mounted_tmpfs(tmp_path / "disk", "1m") as disk:
        remount_tmpfs(disk, "ro")
        assert main(["pretrain", str(engine_patterns), "--out", str(disk / "run"), *ARGS]) == 2
        assert "read-only" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("kind", ["--encoder-only", "--torchscript"])
def test_export_to_a_full_disk(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    ckpt = tmp_path / "model.pt"
    card = ModelCard(architecture="ynet3d", width=4, n_classes=3, patch_size=(16, 16, 16))
    save_model(ckpt, create_model("ynet3d", width=4, n_classes=3), card)
    with mounted_tmpfs(tmp_path / "disk", "8k") as disk:
        out = disk / "exported.pt"
        assert main(["export", str(ckpt), "--out", str(out), kind]) == 2  # torch.jit.save aborted
        assert f"{out}: no space left" in _one_line(capsys.readouterr().err)
        assert list(disk.iterdir()) == []
