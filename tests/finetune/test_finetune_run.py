"""A few steps of each task at width 8 on tiny data, through the library and the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from semantic_genesis.cli import main
from semantic_genesis.finetune import FinetuneConfig, finetune

TINY = {"width": 8, "epochs": 2, "patch": (16, 16, 16), "batch_size": 4, "steps_per_epoch": 2}


def test_classification_run_from_the_cli(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "cls"
    code = main(
        [
            "finetune",
            "--task",
            "classify",
            "--data",
            str(tiny_data),
            "--out",
            str(out),
            "--width",
            "8",
            "--epochs",
            "2",
            "--patch",
            "16",
            "16",
            "16",
            "--batch-size",
            "4",
            "--steps-per-epoch",
            "2",
            "--label-fraction",
            "0.5",
            "--seed",
            "3",
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metric"] == "auc" and 0 <= metrics["score"] <= 1
    assert metrics["score"] == metrics["test"]["auc"]
    assert 1 <= metrics["best_epoch"] <= metrics["epochs_run"] == 2
    assert len(metrics["history"]) == 2 and metrics["config"]["label_fraction"] == 0.5
    assert metrics["initialisation"]["init"] == "scratch" and "run_info" in metrics
    with open(out / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == metrics["test"]["n"] == metrics["data"]["test_candidates"]
    assert all(0 <= float(r["probability"]) <= 1 for r in rows)
    assert (out / "curves.png").stat().st_size > 1000 and (out / "model.pt").is_file()


def test_segmentation_run_writes_masks(tiny_data: Path, tmp_path: Path) -> None:
    from semantic_genesis.io import read_volume

    res = finetune(tiny_data, tmp_path / "seg", FinetuneConfig(task="segment", **TINY))
    assert res.metric == "iou" and 0 <= res.score <= 1
    metrics = json.loads((tmp_path / "seg" / "metrics.json").read_text())
    assert {"dice", "iou", "per_case"} <= set(metrics["test"])
    assert metrics["data"]["n_labels"] == 2
    for case in metrics["test"]["per_case"]:
        pred = read_volume(tmp_path / "seg" / "predictions" / f"{case}.nii.gz")
        image = read_volume(tiny_data / "images" / f"{case}.nii.gz")
        assert pred.shape == image.shape
        np.testing.assert_allclose(pred.origin, image.origin, atol=1e-4)
        assert set(np.unique(pred.array)) <= {0, 1}
    assert (tmp_path / "seg" / "curves.png").is_file()


def test_bad_input_is_one_clear_line(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "finetune",
            "--task",
            "segment",
            "--data",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data folder not found" in err[0]
