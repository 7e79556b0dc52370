"""What a run really uses: explicit values, then ``--profile reference``, then the method's
recipe, then ours (pretrain.recipe); resume compares the decided values."""

from __future__ import annotations

import pytest

from semantic_genesis.cli import build_parser
from semantic_genesis.cli.pretrain import config_from_args
from semantic_genesis.pretrain import PretrainConfig
from semantic_genesis.pretrain.config import resolve_method
from semantic_genesis.pretrain.methods import Method
from semantic_genesis.pretrain.recipe import OURS, resolve_config, stored_value
from semantic_genesis.utils import SemgenError

DECIDED = ("optimizer", "lr", "momentum", "batch_size", "lr_step", "lr_gamma", "patience",
           "norm", "amp", "redraw_multires")


def _decided(config: PretrainConfig) -> dict:
    final = resolve_config(config, resolve_method(config))
    return {k: getattr(final, k) for k in DECIDED}


def test_profile_reference_switches_every_setting_at_once() -> None:
    """The reference's ContBatchNorm3d (batch statistics always), fp32, multi-resolution crops
    drawn once; the optimiser stays the SG reference's (it is already ours)."""
    ref = _decided(PretrainConfig(profile="reference"))
    print("pretrain --profile reference:", ref)
    assert ref == {"optimizer": "adam", "lr": 1e-3, "momentum": 0.0, "batch_size": 64,
                   "lr_step": 40, "lr_gamma": 0.5, "patience": 50, "norm": "batch_always",
                   "amp": "none", "redraw_multires": False}
    ours = _decided(PretrainConfig())
    print("pretrain (ours):", ours)
    assert ours == {**ref, "norm": "batch", "amp": "auto", "redraw_multires": True}


def test_models_genesis_recipe_and_explicit_values_win() -> None:
    mg = _decided(PretrainConfig(method="models-genesis"))
    assert {k: mg[k] for k in ("optimizer", "lr", "momentum", "batch_size", "lr_step",
                               "lr_gamma", "patience")} == {
        "optimizer": "sgd", "lr": 1.0, "momentum": 0.9, "batch_size": 6, "lr_step": 40,
        "lr_gamma": 0.5, "patience": 50}
    mine = _decided(PretrainConfig(method="models-genesis", profile="reference", lr=0.1,
                                   batch_size=12, norm="batch", amp="bf16",
                                   redraw_multires=True))
    assert (mine["lr"], mine["batch_size"], mine["momentum"], mine["optimizer"]) == (
        0.1, 12, 0.9, "sgd")
    assert (mine["norm"], mine["amp"], mine["redraw_multires"]) == ("batch", "bf16", True)


def test_the_cli_leaves_unset_flags_to_the_profile_and_recipe() -> None:
    parser = build_parser()
    args = parser.parse_args(["pretrain", "p", "--out", "o", "--method", "models-genesis",
                              "--profile", "reference", "--lr", "0.5"])
    config = config_from_args(args)
    assert (config.lr, config.batch_size, config.norm, config.profile) == (
        0.5, None, None, "reference")
    final = resolve_config(config, resolve_method(config))
    assert (final.lr, final.batch_size, final.norm, final.amp) == (0.5, 6, "batch_always", "none")


def test_a_bad_recipe_is_refused() -> None:
    class Odd(Method):
        name = "odd"
        recipe = {"weight_decay": 0.1}

    class Worse(Method):
        name = "worse"
        recipe = {"optimizer": "lamb"}

    with pytest.raises(SemgenError, match="recipe sets"):
        resolve_config(PretrainConfig(), Odd())
    with pytest.raises(SemgenError, match="optimizer"):
        resolve_config(PretrainConfig(), Worse())


def test_a_stored_run_without_the_new_fields_counts_as_ours() -> None:
    """A run saved before the optimiser field existed (or with a None) was Adam; stored values
    are compared as they are."""
    assert stored_value({}, "optimizer", None) == "adam" == OURS["optimizer"]
    assert stored_value({"lr": None}, "lr", None) == 1e-3
    assert stored_value({"lr": 0.5}, "lr", None) == 0.5
    assert stored_value({}, "width", 32) == 32


def test_a_reference_profile_run_stores_its_values_and_never_redraws_crops(
    engine_patterns, tmp_path, monkeypatch
) -> None:
    """The reference profile's run folder holds batch_always / fp32 / no redraw, and its
    multi-resolution crops keep their first draw (the trainer never moves the dataset's epoch;
    ours calls set_epoch every epoch)."""
    import yaml

    from semantic_genesis.pretrain import pretrain
    from semantic_genesis.pretrain.dataset import PatternDataset

    calls: list[int] = []
    original = PatternDataset.set_epoch
    monkeypatch.setattr(PatternDataset, "set_epoch",
                        lambda self, epoch: (calls.append(epoch), original(self, epoch)))
    quick = {"width": 4, "batch_size": 27, "epochs": 1, "figures": False}
    pretrain(engine_patterns, tmp_path / "ref", PretrainConfig(profile="reference", **quick))
    saved = yaml.safe_load((tmp_path / "ref" / "pretrain-config.yaml").read_text())
    assert (saved["norm"], saved["amp"], saved["redraw_multires"], saved["multires"]) == (
        "batch_always", "none", False, True)
    assert calls == []
