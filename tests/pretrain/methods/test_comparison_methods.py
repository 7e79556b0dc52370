"""The paper's comparison methods (method.md §3.4): each trains one epoch through `pretrain`,
with and without semantics, on the engine's tiny patterns; their names, aliases and papers."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import torch

from semantic_genesis.cli import build_parser
from semantic_genesis.models import ModelCard, create_model
from semantic_genesis.pretrain import PretrainConfig, pretrain, resolve_method
from semantic_genesis.pretrain.methods import canonical_name, get_method, known_methods
from semantic_genesis.pretrain.methods.registry import register_method
from semantic_genesis.utils import SemgenError

#: registry name -> the paper's first author and year, as ``--help`` must show them.
COMPARISONS = {
    "auto-encoder": "Hinton & Salakhutdinov",
    "inpainting": "Pathak et al., Context Encoders",
    "context-restoration": "Chen et al., Self-supervised learning for medical image analysis",
    "rotation": "Gidaris et al., Unsupervised Representation Learning by Predicting Image",
    "rubiks-cube": "Zhuang et al., Self-supervised Feature Learning for 3D Medical Images",
}
#: heads outside the backbone each method trains (semantics adds clc_out inside the backbone).
HEADS = {"auto-encoder": set(), "inpainting": set(), "context-restoration": set(),
         "rotation": {"rotation"}, "rubiks-cube": {"order", "turns"}}
QUICK = {"width": 4, "epochs": 1, "batch_size": 6, "multires": False, "figures": False,
         "seed": 0}


def _header(run: Path) -> list[str]:
    with open(run / "metrics.csv", newline="") as fh:
        return next(csv.reader(fh))


@pytest.mark.parametrize("semantics", [False, True], ids=["alone", "semantics"])
@pytest.mark.parametrize("name", list(COMPARISONS))
def test_each_comparison_method_trains_one_epoch(
    name: str, semantics: bool, engine_patterns: Path, tmp_path: Path
) -> None:
    """One epoch through pretrain: its declared statistics are the metrics.csv columns and
    finite, its card names it, its checkpoint loads into the architecture the card names and
    carries exactly its own heads."""
    spec = f"{name}+semantics" if semantics else name
    result = pretrain(engine_patterns, tmp_path, PretrainConfig(method=spec, **QUICK))
    method = get_method(spec)
    stats = method.metric_names()
    assert _header(tmp_path)[1: 1 + 2 * len(stats)] == (
        [f"train_{s}" for s in stats] + [f"val_{s}" for s in stats])
    with open(tmp_path / "metrics.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert all(torch.isfinite(torch.tensor(float(row[f"train_{s}"]))) for s in stats)
    ckpt = torch.load(result.last_checkpoint, weights_only=True)
    card = ModelCard.from_dict(ckpt["model_card"])
    assert (card.method, card.semantic) == (spec, semantics)
    assert ("ce" in stats) == semantics
    create_model(**card.model_kwargs()).load_state_dict(ckpt["state_dict"], strict=True)
    aux = {k.split(".")[0] for k in ckpt.get("aux_state_dict", {})}
    assert aux == HEADS[name]


def test_help_lists_each_comparison_method_with_its_paper_and_aliases(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["pretrain", "--help"])
    text = re.sub(r"\s+", " ", capsys.readouterr().out).replace("- ", "-")
    for name, paper in COMPARISONS.items():
        assert f"{name} ({paper}" in text
    assert "identity = auto-encoder" in text and "shuffling = context-restoration" in text


@pytest.mark.parametrize(("alias", "name"), [
    ("identity", "auto-encoder"),
    ("shuffling", "context-restoration"),
    ("shuffling+semantics", "context-restoration+semantics"),
    ("identity+semantics", "auto-encoder+semantics"),
])
def test_the_earlier_names_are_aliases_of_the_honest_ones(alias: str, name: str) -> None:
    """The old flags (--pretext identity|shuffle) still name the methods; the card records the
    registered name."""
    assert canonical_name(alias) == name
    assert get_method(alias).name == name
    assert [e.name for e in known_methods()].count(name.removesuffix("+semantics")) == 1
    assert alias.removesuffix("+semantics") not in [e.name for e in known_methods()]


def test_old_pretext_flags_name_the_renamed_methods() -> None:
    assert resolve_method(PretrainConfig(pretext="identity", semantic=False)).name == (
        "auto-encoder")
    assert resolve_method(PretrainConfig(pretext="shuffle", semantic=True)).name == (
        "context-restoration+semantics")


def test_an_alias_cannot_be_taken_by_another_method() -> None:
    with pytest.raises(ValueError, match="'shuffling' is already registered"):
        register_method("my-shuffle", aliases=("shuffling",))(lambda: None)


@pytest.mark.parametrize("name", ["inpainting", "rotation", "rubiks-cube"])
def test_methods_whose_labels_come_from_their_perturbation_take_no_other_preset(
    name: str,
) -> None:
    with pytest.raises(SemgenError, match="preset"):
        resolve_method(PretrainConfig(method=name, preset="sg"))


def test_a_restoring_comparison_under_another_preset_is_labelled_as_restoration() -> None:
    method = resolve_method(PretrainConfig(method="context-restoration", preset="sg"))
    assert (method.name, method.label) == ("context-restoration", "restoration (sg)")
    assert get_method("context-restoration").label == "context restoration"


def test_models_genesis_with_semantics_trains_one_epoch_on_the_patterns(
        engine_patterns: Path, tmp_path: Path) -> None:
    """Models Genesis alone trains on cohort cubes (tests/pretrain/test_cohort_data.py); with
    semantics it trains on the patterns, with MG's recipe (SGD lr 1, momentum 0.9)."""
    import yaml

    quick = {k: v for k, v in QUICK.items() if k != "batch_size"}  # MG's recipe: batch 6
    result = pretrain(engine_patterns, tmp_path,
                      PretrainConfig(method="models-genesis+semantics", **quick))
    saved = yaml.safe_load((tmp_path / "pretrain-config.yaml").read_text())
    assert (saved["optimizer"], saved["lr"], saved["momentum"], saved["batch_size"]) == (
        "sgd", 1.0, 0.9, 6)
    ckpt = torch.load(result.last_checkpoint, weights_only=True)
    card = ModelCard.from_dict(ckpt["model_card"])
    assert (card.method, card.semantic) == ("models-genesis+semantics", True)
    assert {"train_mse", "train_ce", "train_acc"} <= set(_header(tmp_path))
    create_model(**card.model_kwargs()).load_state_dict(ckpt["state_dict"], strict=True)
