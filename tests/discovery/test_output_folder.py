"""``discover``'s output folder belongs to it (issue 14): other folders refused, the user's files
never touched, one run at a time, and a full disk ends in one line with nothing left behind."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from semantic_genesis.cli import main
from semantic_genesis.discovery import DiscoverWarning, discover
from semantic_genesis.discovery import features as features_module
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.outdir import LOCK, MARKER, claim_output
from tests.discovery.conftest import fast_config, small_config
from tests.disks import mounted_tmpfs


def _run(cohort: Path, out: Path, overwrite: bool = False, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiscoverWarning)
        return discover(cohort, out, fast_config(cohort, **kw), overwrite=overwrite)


def test_a_folder_with_user_files_is_refused_and_untouched(chests, tmp_path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    with pytest.raises(SemgenError, match="did not write"):
        _run(chests, out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "my notes"


def test_out_equal_to_or_around_the_cohort_is_refused(chests) -> None:
    before = sorted(p.name for p in chests.iterdir())
    for out in (chests, chests.parent):
        with pytest.raises(SemgenError, match="contains \\(or is\\) the input"):
            _run(chests, out)
    assert sorted(p.name for p in chests.iterdir()) == before


def test_own_folder_is_marked_and_rerun_keeps_user_files(chests, tmp_path) -> None:
    out = tmp_path / "p"
    _run(chests, out, seed=1)
    assert (out / MARKER).is_file() and '"discover"' in (out / MARKER).read_text()
    (out / "classes" / "mine.txt").write_text("keep me")  # a user file inside discover's folder
    with pytest.raises(SemgenError, match="other settings"):
        _run(chests, out, seed=2)
    _run(chests, out, seed=2, overwrite=True)
    assert (out / "classes" / "mine.txt").read_text() == "keep me"  # --overwrite removed parts only
    assert not list(out.glob(".tmp-*"))


def test_a_folder_of_another_verb_is_refused(chests, tmp_path) -> None:
    out = tmp_path / "run"
    with claim_output(out, "pretrain"):
        pass
    with pytest.raises(SemgenError, match="semgen pretrain"):
        _run(chests, out)


def test_a_second_run_into_the_same_folder_is_refused(chests, tmp_path) -> None:
    out = tmp_path / "p"
    # the lock another run would hold
    with claim_output(out, "discover"), pytest.raises(SemgenError, match="is writing"):
        _run(chests, out)
    _run(chests, out)  # the lock died with its holder
    assert (out / "patterns.csv").is_file() and (out / LOCK).exists()


def test_a_full_disk_while_mapping_is_one_error_and_leaves_nothing(chests, tmp_path,
                                                                   monkeypatch) -> None:
    """posix_fallocate refusing the space (as a full disk does) is one SemgenError naming the
    file, no temporary is left, and the same call works once the space is there."""
    out = tmp_path / "p"
    real = os.posix_fallocate

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(features_module.os, "posix_fallocate", full)
    config = small_config(patch=(16, 16, 8), n_classes=2, instances=3, val_instances=1,
                          ae_shape=(16, 16, 8), ae_width=2, ae_epochs=1)
    with pytest.raises(SemgenError, match="no space left") as caught:
        discover(chests, out, config)
    assert ".cache" in str(caught.value)
    assert not list(out.rglob(".tmp-*")) and not list(out.rglob("inputs-*.npy"))
    monkeypatch.setattr(features_module.os, "posix_fallocate", real)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DiscoverWarning)
        assert discover(chests, out, config).n_classes >= 1


@pytest.mark.slow
def test_a_real_full_disk_is_exit_2_not_a_bus_error(chests, tmp_path) -> None:
    """A 1 MiB tmpfs holds the small outputs but not the auto-encoder's input map (3 MiB):
    before, the mapped writes died of SIGBUS (exit 135) and left the map behind."""
    with mounted_tmpfs(tmp_path / "disk", "1m") as disk:
        out = disk / "p"
        args = ["discover", str(chests), "--out", str(out), "--classes", "2", "--instances", "3",
                "--val-instances", "1", "--patch", "16", "16", "8", "--ae-shape", "96", "96",
                "64", "--ae-width", "2", "--ae-epochs", "1", "--device", "cpu"]
        env = {**os.environ, "SEMGEN_QUIET": "1", "OMP_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-m", "semantic_genesis", *args],
                              capture_output=True, text=True, env=env)
        assert done.returncode == 2, done.stderr[-2000:]
        assert "no space left on the device" in done.stderr
        assert done.stderr.strip().count("\n") == 0  # one line, no traceback
        assert not list(out.rglob(".tmp-*")) and not list(out.rglob("*.npy"))
        # free space (a smaller input map), and the same folder works
        args[args.index("--ae-shape") + 1:args.index("--ae-shape") + 4] = ["16", "16", "8"]
        assert main(args) == 0
        assert (out / "patterns.csv").is_file()


def test_an_unreadable_part_file_is_computed_again(chests, tmp_path) -> None:
    out = tmp_path / "p"
    _run(chests, out)
    before = (out / "patterns.csv").read_bytes()
    (out / "classes" / "ref-00000.json").write_text("{truncated")
    _run(chests, out)  # not "other settings": the part is simply made again
    assert (out / "patterns.csv").read_bytes() == before


def test_temporaries_of_a_killed_run_are_removed(chests, tmp_path) -> None:
    """A run killed while writing (or, before, by SIGBUS on a full disk) leaves ``.tmp-*``
    files; the next run in the folder removes them instead of stumbling over them."""
    out = tmp_path / "p"
    _run(chests, out)
    stale = [out / ".cache" / ".tmp-inputs-64x64x32.npy.x1.npy", out / ".tmp-patterns.csv.x2.csv",
             out / "classes" / ".tmp-ref-00000.json.x3.json"]
    for path in stale:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"\0" * 4096)
    _run(chests, out)
    assert not any(p.exists() for p in stale)
