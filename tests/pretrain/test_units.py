"""Engine parts that need no data: methods, loss, CLI parsing, RNG state, early stopping."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from semantic_genesis.cli import build_parser
from semantic_genesis.cli.pretrain import config_from_args
from semantic_genesis.pretrain import MethodLoss, PretrainConfig, resolve_method
from semantic_genesis.pretrain.methods import Batch
from semantic_genesis.pretrain.network import backbone_name
from semantic_genesis.pretrain.state import EarlyStopping, capture_rng, restore_rng
from semantic_genesis.utils import SemgenError


@pytest.mark.parametrize(
    ("pretext", "semantic", "expected"),
    [
        ("genesis", True, (True, True, False, "sg", "ynet3d", "Semantic Genesis")),
        ("genesis", False, (True, False, False, "mg", "unet3d", "Genesis restoration")),
        ("none", True, (False, True, False, "sg", "ynet3d", "self-classification")),
        (
            "inpaint",
            True,
            (True, True, False, "drop_box", "ynet3d", "in-painting + semantics"),
        ),
        ("shuffle", False, (True, False, False, "shuffle", "unet3d", "context restoration")),
        ("rotation", True, (False, True, True, "rotation", "ynet3d", "rotation + semantics")),
        ("rotation", False, (False, False, True, "rotation", "unet3d", "rotation")),
    ],
)
def test_methods_as_flags(pretext: str, semantic: bool, expected: tuple) -> None:
    config = PretrainConfig(pretext=pretext, semantic=semantic)
    m = resolve_method(config)
    perturbation = getattr(m.perturbation, "__name__", m.perturbation)  # a preset or a function
    assert (
        m.decoder, m.semantic, "rotation" in m.heads, perturbation, backbone_name(config, m),
        m.label,
    ) == expected


def test_preset_override_and_nothing_to_learn() -> None:
    assert resolve_method(PretrainConfig(semantic=False, preset="sg")).perturbation == "sg"
    with pytest.raises(SemgenError, match="nothing to learn"):
        resolve_method(PretrainConfig(pretext="none", semantic=False))


def test_cli_parses_lambdas_as_floats() -> None:
    """The reference declared the λ as int (method.md §9.17): 0.01 must stay 0.01."""
    args = build_parser().parse_args(
        [
            "pretrain",
            "pat",
            "--out",
            "run",
            "--lambda-cls",
            "0.01",
            "--lambda-rec",
            "1",
            "--no-semantic",
            "--pretext",
            "inpaint",
            "--no-channels-last",
            "--amp",
            "bf16",
        ]
    )
    cfg = config_from_args(args)
    assert cfg.lambda_cls == pytest.approx(0.01) and isinstance(cfg.lambda_cls, float)
    assert cfg.lambda_rec == 1.0 and isinstance(cfg.lambda_rec, float)
    assert (cfg.semantic, cfg.pretext, cfg.channels_last, cfg.amp) == (
        False,
        "inpaint",
        False,
        "bf16",
    )


def test_loss_is_weighted_mse_of_sigmoid_plus_ce_on_logits() -> None:
    g = torch.Generator().manual_seed(0)
    rest = torch.randn(3, 1, 4, 4, 4, generator=g)
    target = torch.rand(3, 1, 4, 4, 4, generator=g)
    logits = torch.tensor([[1000.0, -1000.0], [0.0, 0.0], [-5.0, 5.0]])
    labels = torch.tensor([1, 0, 1])
    config = PretrainConfig(lambda_rec=1.0, lambda_cls=0.01)
    batch = Batch(target, labels, rest, target)
    loss, stats = MethodLoss(resolve_method(config), config)(
        {"restoration": rest, "classes": logits}, batch
    )
    mse = ((torch.sigmoid(rest) - target) ** 2).mean()
    ce = torch.nn.functional.cross_entropy(logits, labels)  # finite although p = exp(-2000)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx((mse + 0.01 * ce).item(), rel=1e-6)
    assert stats[1].item() == pytest.approx(mse.item(), rel=1e-6)
    assert stats[3].item() == pytest.approx(2 / 3)  # accuracy


def test_rotation_term_uses_lambda_rec() -> None:
    rot = torch.tensor([[2.0, 0.0, 0.0, 0.0]])
    config = PretrainConfig(pretext="rotation", semantic=False, lambda_rec=2.0)
    batch = Batch(rot, torch.tensor([1]), rot, None, torch.tensor([0]))
    loss, stats = MethodLoss(resolve_method(config), config)({"rotation": rot}, batch)
    expected = 2.0 * torch.nn.functional.cross_entropy(rot, torch.tensor([0]))
    assert loss.item() == pytest.approx(expected.item())
    assert stats[2].item() == 1.0  # loss, rot_ce, rot_acc


def test_rng_state_round_trips_through_a_safe_checkpoint(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(3)
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    torch.save(capture_rng({"perturb": gen}), tmp_path / "rng.pt")

    def draw() -> tuple:
        return (
            random.random(),
            np.random.rand(),
            torch.rand(1).item(),
            torch.rand(1, generator=gen).item(),
        )

    first = draw()
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True), {"perturb": gen})
    assert draw() == first


def test_early_stopping_counts_epochs_without_improvement() -> None:
    es = EarlyStopping(patience=2)
    assert es.step(1.0, 1) and not es.step(1.5, 2) and not es.should_stop
    assert not es.step(1.2, 3) and es.should_stop and es.best_epoch == 1
    restored = EarlyStopping(patience=2)
    restored.load_state_dict(es.state_dict())
    assert restored == es
