"""`semgen pretrain` as separate processes: killed and resumed, and DDP under torchrun (gloo)."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.killing import ENV, SLOW_SEMGEN, kill_in_second_epoch

#: runs `semgen` with a sleep after every optimiser step (from outside the package)


def _args(patterns: Path, out: Path, *extra: str) -> list[str]:
    return [
        "pretrain",
        str(patterns),
        "--out",
        str(out),
        "--width",
        "4",
        "--batch-size",
        "6",
        "--epochs",
        "2",
        "--no-figures",
        "--seed",
        "3",
        *extra,
    ]


def _semgen(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "semantic_genesis", *args],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
        **kw,
    )


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.pt", weights_only=True)["state_dict"]


def _losses(run: Path) -> list[tuple[float, float]]:
    with open(run / "metrics.csv", newline="") as fh:
        return [(float(r["train_loss"]), float(r["val_loss"])) for r in csv.DictReader(fh)]


def test_sigkill_mid_epoch_then_resume_ends_with_identical_weights(
    engine_patterns: Path, tmp_path: Path
) -> None:
    """Semantic Genesis with every random part on: multi-resolution crops, elastic warp,
    one-of-four perturbations; the killed run restarts epoch 2 from last.pt of epoch 1."""
    straight = _semgen(*_args(engine_patterns, tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr

    run = tmp_path / "killed"
    last = run / "checkpoints" / "last.pt"
    kill_in_second_epoch(_args(engine_patterns, run), last, 0.3, 1.0)  # 9 steps of >= 0.3 s
    assert torch.load(last, weights_only=True)["epoch"] == 1

    again = _semgen(*_args(engine_patterns, run))
    assert again.returncode == 2 and "--resume" in again.stderr  # never continued silently
    resumed = _semgen(*_args(engine_patterns, run, "--resume"))
    assert resumed.returncode == 0, resumed.stderr

    a, b = _weights(tmp_path / "straight"), _weights(run)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ"
    assert _losses(run) == _losses(tmp_path / "straight")


def test_ddp_two_processes_follow_the_one_process_curve(
    engine_patterns: Path, tmp_path: Path
) -> None:
    """Same global batch (6 = 2 x 3): the same cubes per step, gradients averaged by DDP.
    GroupNorm and the identity pretext leave only floating-point summation order different."""
    extra = ("--norm", "group", "--pretext", "identity")
    one = _semgen(*_args(engine_patterns, tmp_path / "one", *extra))
    assert one.returncode == 0, one.stderr
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "semantic_genesis",
            *_args(engine_patterns, tmp_path / "two", *extra),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert two.returncode == 0, two.stderr[-3000:]

    curve_one, curve_two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(curve_one) == len(curve_two) == 2
    assert curve_one[-1][0] < curve_one[0][0]  # it trains
    for (t1, v1), (t2, v2) in zip(curve_one, curve_two, strict=True):
        assert t2 == pytest.approx(t1, rel=1e-3) and v2 == pytest.approx(v1, rel=1e-3)
    # Adam turns float noise in near-zero gradients (conv biases before a norm) into full-size
    # steps, so weights agree to about 1 %, not bitwise; other seeds' weights differ by ~140 %.
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    wa = torch.cat([a[k].flatten() for k in a if k.endswith("conv1.weight")])
    wb = torch.cat([b[k].flatten() for k in a if k.endswith("conv1.weight")])
    assert ((wa - wb).norm() / wa.norm()).item() < 0.05
    assert not list((tmp_path / "two").glob("**/.tmp-*"))  # rank 1 wrote nothing half-done


def test_a_second_process_into_the_same_run_folder_is_refused(
    engine_patterns: Path, tmp_path: Path
) -> None:
    """Two real processes: the OS lock of the first keeps the second out (the in-process case
    is in test_run_folder.py); after the first is killed, --resume goes on."""
    run = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, str(SLOW_SEMGEN), "2.0", *_args(engine_patterns, run)],  # >= 36 s
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not (run / "pretrain-config.yaml").exists() and time.monotonic() < deadline:
            assert first.poll() is None, "the first run ended early"
            time.sleep(0.05)
        second = _semgen(*_args(engine_patterns, run, "--resume"))
        assert first.poll() is None, "the first run ended before the second started"
        assert second.returncode == 2
        assert "another `semgen pretrain` is writing into this folder" in second.stderr
    finally:
        first.kill()
        first.wait(timeout=60)
    resumed = _semgen(*_args(engine_patterns, run, "--resume"))
    assert resumed.returncode == 0, resumed.stderr
