"""`semgen predict --candidates` with a classification checkpoint, and the refusals."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from semantic_genesis.cli import main
from semantic_genesis.predict import PredictConfig, predict
from semantic_genesis.utils.errors import SemgenError


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A width-8 encoder classifier with a fine-tuned classification card (random weights:
    the test is about the file contract, not the scores)."""
    from semantic_genesis.models import create_model, save_model
    from semantic_genesis.models.card import ModelCard

    torch.manual_seed(0)
    model = create_model("encoder3d", width=8, n_classes=1, head="mlp")
    card = ModelCard(architecture="encoder3d", width=8, n_classes=1, head="mlp",
                     patch_size=(16, 16, 16), modality="ct", pretext="finetune-classify",
                     semantic=False)
    return save_model(tmp_path_factory.mktemp("cls") / "model.pt", model, card)


def test_one_probability_per_candidate(classifier, tiny_data, tmp_path) -> None:
    lines = (tiny_data / "candidates.csv").read_text().splitlines()
    extra = ["nowhere,1.0,2.0,3.0,0", f"{lines[1].split(',')[0]},9999,9999,9999,1"]
    candidates = tmp_path / "cands.csv"
    candidates.write_text("\n".join([*lines, *extra]) + "\n")
    out = tmp_path / "out"
    code = main(["predict", str(classifier), str(tiny_data / "images"), "--out", str(out),
                 "--candidates", str(candidates)])
    assert code == 0
    with open(out / "candidates.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(lines) - 1 + len(extra)  # one row per candidate, in file order
    assert [r["seriesuid"] for r in rows] == [ln.split(",")[0] for ln in [*lines[1:], *extra]]
    scored = rows[: len(lines) - 1]
    assert all(r["status"] == "ok" and 0 <= float(r["probability"]) <= 1 for r in scored)
    assert len({r["probability"] for r in scored}) > 1  # not one constant
    assert rows[-2]["probability"] == "" and "no scan" in rows[-2]["status"]
    assert rows[-1]["probability"] == "" and rows[-1]["status"] == "outside its scan"
    assert [r["class"] for r in rows] == [ln.split(",")[4] for ln in [*lines[1:], *extra]]


def test_candidates_without_class_column(classifier, tiny_data, tmp_path) -> None:
    lines = (tiny_data / "candidates.csv").read_text().splitlines()[:4]
    candidates = tmp_path / "cands.csv"
    candidates.write_text("\n".join(ln.rsplit(",", 1)[0] for ln in lines) + "\n")
    result = predict(classifier, [tiny_data / "images"], tmp_path / "out",
                     PredictConfig(candidates=str(candidates)))
    with open(result.candidates_csv) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and "class" not in rows[0]
    assert all(0 <= float(r["probability"]) <= 1 for r in rows)


def test_classifier_without_candidates_is_refused(classifier, tiny_data, tmp_path) -> None:
    with pytest.raises(SemgenError, match="--candidates"):
        predict(classifier, [tiny_data / "images"], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before the folder is made


def test_pretrained_checkpoint_is_refused(tmp_path, tiny_data) -> None:
    from semantic_genesis.models import create_model, save_model

    path = save_model(tmp_path / "pre.pt", create_model("ynet3d", width=8, n_classes=3))
    with pytest.raises(SemgenError, match="not a fine-tuned checkpoint"):
        predict(path, [tiny_data / "images"], tmp_path / "out")


def test_segmenter_with_candidates_is_refused(threshold_checkpoint, tiny_data, tmp_path) -> None:
    with pytest.raises(SemgenError, match="classification checkpoint"):
        predict(threshold_checkpoint, [tiny_data / "images"], tmp_path / "out",
                PredictConfig(candidates=str(tiny_data / "candidates.csv")))


def test_no_readable_scan_is_an_error(threshold_checkpoint, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"nothing here")
    assert main(["predict", str(threshold_checkpoint), str(bad), "--out",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "bad.nii.gz" in err and "no case was predicted" in err
    assert (tmp_path / "out" / "predictions.csv").is_file()


def test_bad_setting_is_one_line(threshold_checkpoint, tmp_path, capsys) -> None:
    assert main(["predict", str(threshold_checkpoint), str(tmp_path), "--out",
                 str(tmp_path / "o"), "--orientation", "XYZ"]) == 2
    assert "orientation" in capsys.readouterr().err
