"""The online probe (method.md §7.3): probe_auc per epoch, and a run that trains as without it."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from semantic_genesis.pretrain import PretrainConfig, pretrain
from semantic_genesis.pretrain.figures import curves_figure
from semantic_genesis.utils import SemgenError

QUICK = {"width": 4, "batch_size": 6, "figures": False, "multires": False, "epochs": 1,
         "lambda_cls": 1.0}


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_probe_auc_is_a_column_of_metrics_csv(
    engine_patterns: Path, tiny_data: Path, tmp_path: Path
) -> None:
    pretrain(engine_patterns, tmp_path / "probe",
             PretrainConfig(**QUICK, probe=str(tiny_data), probe_every=1))
    aucs = [float(r["probe_auc"]) for r in _rows(tmp_path / "probe")]
    assert len(aucs) == 1 and all(0.0 <= a <= 1.0 for a in aucs)


def test_the_probe_changes_nothing_else(
    engine_patterns: Path, tiny_data: Path, tmp_path: Path
) -> None:
    """The probe only watches: the same weights and losses as a run without it."""
    watched = pretrain(engine_patterns, tmp_path / "probe",
                       PretrainConfig(**QUICK, probe=str(tiny_data), probe_every=1))
    rows = _rows(tmp_path / "probe")
    plain = pretrain(engine_patterns, tmp_path / "plain", PretrainConfig(**QUICK))
    assert [r["train_loss"] for r in _rows(tmp_path / "plain")] == [r["train_loss"] for r in rows]
    a = torch.load(watched.last_checkpoint, weights_only=True)["state_dict"]
    b = torch.load(plain.last_checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "probe_auc" not in _rows(tmp_path / "plain")[0]


def test_probe_every_and_the_encoder_left_in_training_mode(tiny_data: Path, tmp_path: Path
                                                          ) -> None:
    from semantic_genesis.models import create_model
    from semantic_genesis.pretrain.online_probe import OnlineProbe

    probe = OnlineProbe(str(tiny_data), (16, 16, 16), tmp_path, every=2)
    assert set(probe.labels.tolist()) == {0, 1} and len(probe.labels) <= 200
    assert not (probe.train & probe.test).any()
    torch.manual_seed(0)
    net = create_model("unet3d", width=4).train()
    assert math.isnan(probe.columns(1, net)["probe_auc"])  # not probed: an empty cell
    auc = probe.columns(2, net)["probe_auc"]
    assert 0.0 <= auc <= 1.0 and net.training  # training mode given back
    assert probe.score(net) == auc  # eval-mode features: the same every time


def test_a_probe_that_is_no_classification_data_is_refused(
    engine_patterns: Path, tmp_path: Path
) -> None:
    with pytest.raises(SemgenError, match="candidates.csv"):
        pretrain(engine_patterns, tmp_path / "a", PretrainConfig(**QUICK, probe=str(tmp_path)))
    with pytest.raises(SemgenError, match="classification target"):
        pretrain(engine_patterns, tmp_path / "b", PretrainConfig(**QUICK, probe="phantom-ncs"))
    # refused before the run folder is claimed or its config written
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(SemgenError):
        PretrainConfig(probe_every=0)


def test_curves_get_a_probe_panel_when_the_history_has_one() -> None:
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.0 / e, "lr": 1e-3,
                "probe_auc": math.nan if e == 1 else 0.6 + 0.1 * e} for e in (1, 2, 3)]
    titles = [ax.get_title() for ax in curves_figure(history, metrics=[]).axes]
    assert "online probe AUC (frozen encoder)" in titles
    no_probe = [{k: v for k, v in r.items() if k != "probe_auc"} for r in history]
    assert "online probe AUC (frozen encoder)" not in [
        ax.get_title() for ax in curves_figure(no_probe, metrics=[]).axes]
