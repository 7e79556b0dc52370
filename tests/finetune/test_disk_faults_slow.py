"""Real full and read-only disks (a small tmpfs; needs the right to mount, else skipped):
finetune, benchmark and phantoms end in one line naming the folder, exit 2, leave no temporary
file, and a retry after freeing space works."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from semantic_genesis.cli import main
from tests.disks import mounted_tmpfs, remount_tmpfs

from .test_data_checks import TINY_FLAGS


@pytest.fixture
def disk(tmp_path: Path):  # noqa: ANN201
    with mounted_tmpfs(tmp_path / "disk", "200k") as folder:
        yield folder


def _commands(data: Path, out: Path, tmp_path: Path) -> dict[str, list[str]]:
    bench = tmp_path / "b.yaml"
    bench.write_text(yaml.safe_dump({
        "inits": {"scratch": "scratch"}, "seeds": [0],
        "settings": {"epochs": 1, "width": 4, "patch": [16, 16, 16], "batch_size": 4,
                     "steps_per_epoch": 1},
        "tasks": [{"name": "tiny", "data": str(data), "task": "classify"}]}))
    return {
        "finetune": ["finetune", "--task", "classify", "--data", str(data), "--out",
                     str(out / "f"), *TINY_FLAGS],
        "benchmark": ["benchmark", str(bench), "--out", str(out / "b")],
        "phantoms": ["phantoms", "--out", str(out / "p"), "--n", "1", "--shape", "96", "96",
                     "64", "--spacing", "3.6", "3.6", "4.6", "--workers", "1"],
    }


@pytest.mark.slow
def test_full_disk_then_retry(tiny_data: Path, tmp_path: Path, disk: Path, capsys) -> None:
    for verb, argv in _commands(tiny_data, disk, tmp_path).items():
        assert main(argv) == 2, verb
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no space left" in err[0] and str(disk) in err[0], verb
        assert not [p for p in disk.rglob("*") if p.name.startswith(".tmp")], verb
    remount_tmpfs(disk, "size=64m")  # space freed
    for verb, argv in _commands(tiny_data, disk, tmp_path).items():  # into what was left
        assert main(argv) == 0, verb


@pytest.mark.slow
def test_read_only_disk(tiny_data: Path, tmp_path: Path, disk: Path, capsys) -> None:
    remount_tmpfs(disk, "ro")
    for verb, argv in _commands(tiny_data, disk, tmp_path).items():
        assert main(argv) == 2, verb
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "read-only" in err[0], verb
