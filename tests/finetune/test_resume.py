"""A killed fine-tune resumes exactly (issue 15: one training loop): ``--resume`` after a SIGKILL
gives the same weights and metrics as a run never interrupted, and the flag is refused where it
has nothing to do."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from semantic_genesis.cli import main
from tests.killing import ENV, kill_in_second_epoch

from .test_data_checks import TINY_FLAGS

#: TINY_FLAGS keeping the weights (model.pt and the checkpoints)
KEEP = [f for f in TINY_FLAGS if f != "--no-save-model"]

#: runs `semgen` with a sleep after every optimiser step (from outside the package)
#: three epochs of three steps; patience 5 keeps early stopping out of the way
FLAGS = ["--width", "4", "--epochs", "3", "--patch", "16", "16", "16", "--batch-size", "4",
         "--steps-per-epoch", "3", "--patience", "5", "--seed", "2", "--device", "cpu"]


def _args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["finetune", "--task", "classify", "--data", str(data), "--out", str(out), *FLAGS,
            *extra]


def _semgen(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "semantic_genesis", *args], env=ENV,
                          capture_output=True, text=True, timeout=600)


def _outcome(out: Path) -> dict:
    """What must not depend on the interruption: metrics.json without timings and provenance,
    metrics.csv without its seconds column."""
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("seconds", "run_info", "config"):
        metrics.pop(key)
    for row in metrics["history"]:
        row.pop("seconds")
    with open(out / "metrics.csv", newline="") as fh:
        metrics["csv"] = [{k: v for k, v in r.items() if k != "seconds"}
                          for r in csv.DictReader(fh)]
    return metrics


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_result(
    tiny_data: Path, tmp_path: Path
) -> None:
    straight = _semgen(*_args(tiny_data, tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr

    run = tmp_path / "killed"
    last = run / "checkpoints" / "last.pt"
    kill_in_second_epoch(_args(tiny_data, run), last, 0.4, 0.6)  # 3 steps of >= 0.4 s
    assert torch.load(last, weights_only=True)["epoch"] == 1
    assert not (run / "metrics.json").exists()

    again = _semgen(*_args(tiny_data, run))
    assert again.returncode == 2 and "--resume" in again.stderr  # never restarted silently
    resumed = _semgen(*_args(tiny_data, run, "--resume"))
    assert resumed.returncode == 0, resumed.stderr

    assert _outcome(run) == _outcome(tmp_path / "straight")
    for name in ("last.pt", "best.pt"):
        a, b = (torch.load(p / "checkpoints" / name, weights_only=True)
                for p in (tmp_path / "straight", run))
        assert a["epoch"] == b["epoch"] and a["model_card"] == b["model_card"]
        assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert not list(run.glob("**/.tmp-*"))


def test_resume_is_refused_where_there_is_nothing_to_resume(
    tiny_data: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "run"
    args = ["finetune", "--task", "classify", "--data", str(tiny_data), "--out", str(out), *KEEP]
    assert main([*args, "--resume", "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume and --overwrite contradict" in err[0]
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nothing to resume: no checkpoints/last.pt" in err[0]
    assert not out.exists()  # refused before anything was claimed
    assert main(args) == 0
    assert (out / "checkpoints" / "best.pt").is_file() and (out / "metrics.csv").is_file()
    capsys.readouterr()
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot resume: the run in this folder has finished" in err[0]


def test_resume_with_other_settings_is_refused(tiny_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    args = ["finetune", "--task", "classify", "--data", str(tiny_data), "--out", str(out), *KEEP]
    assert main(args) == 0
    (out / "metrics.json").unlink()  # as if killed after its last epoch's checkpoint
    capsys.readouterr()
    assert main([*args, "--resume", "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume with different settings (lr: None -> 0.5)" in err
    assert main([*args, "--resume"]) == 0  # same settings: nothing left to train, tested again
    assert json.loads((out / "metrics.json").read_text())["epochs_run"] == 1
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["resume"] is False  # the saved config re-runs the stage into a new folder


def test_without_the_weights_the_checkpoints_go_once_the_run_has_finished(
    tiny_data: Path, tmp_path: Path
) -> None:
    """A benchmark grid keeps no model: it must not keep an optimiser state per cell either."""
    from semantic_genesis.finetune import FinetuneConfig, finetune

    config = FinetuneConfig(width=4, epochs=1, patch=(16, 16, 16), batch_size=4, steps_per_epoch=1)
    finetune(tiny_data, tmp_path / "kept", config)
    assert sorted(p.name for p in (tmp_path / "kept" / "checkpoints").iterdir()) == [
        "best.pt", "last.pt"]
    finetune(tiny_data, tmp_path / "dropped", config, save_model=False)
    assert not (tmp_path / "dropped" / "checkpoints").exists()
    assert (tmp_path / "dropped" / "metrics.csv").is_file()
