"""`semgen predict` on the command line: its options and its saved config."""

from __future__ import annotations

import csv

import pytest

from semantic_genesis.cli import build_parser, main
from tests.predict.conftest import phantom_arrays, save_threshold_checkpoint, write_scan


@pytest.fixture()
def threshold_checkpoint(tmp_path):
    return save_threshold_checkpoint(tmp_path / "model.pt")


def test_help_lists_the_predict_options(capsys) -> None:
    parser = build_parser("predict")
    with pytest.raises(SystemExit):
        parser.parse_args(["predict", "--help"])
    text = capsys.readouterr().out
    for option in ("--out", "--overwrite", "--probabilities", "--montage", "--candidates",
                   "--spacing", "--orientation", "--patch", "--overlap", "--device"):
        assert option in text


def test_saved_config_repeats_the_run(threshold_checkpoint, tmp_path) -> None:
    hu, _ = phantom_arrays()
    scan = write_scan(hu, tmp_path / "scans" / "p.nii.gz")
    out = tmp_path / "out"
    assert main(["predict", str(threshold_checkpoint), str(scan), "--out", str(out),
                 "--overlap", "0.5", "--probabilities"]) == 0
    assert main(["predict", str(threshold_checkpoint), str(scan), "--out", str(out),
                 "--config", str(out / "predict-config.yaml")]) == 0
    with open(out / "predictions.csv") as fh:
        assert [r["status"] for r in csv.DictReader(fh)] == ["reused"]  # same settings
