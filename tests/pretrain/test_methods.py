"""Methods as plug-ins: a method written in a file outside the package trains through `semgen
pretrain`, every built-in method (with and without semantics) takes a training step, and the
registry finds methods by name, by path, by entry point, and refuses unknown ones clearly."""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import pytest
import torch

from semantic_genesis.cli import build_parser, main
from semantic_genesis.models import ModelCard, create_model
from semantic_genesis.pretrain import PretrainConfig, pretrain, resolve_method
from semantic_genesis.pretrain.losses import MethodLoss
from semantic_genesis.pretrain.methods import Batch, get_method, known_methods
from semantic_genesis.pretrain.methods.registry import ENTRY_POINT_GROUP
from semantic_genesis.pretrain.network import build_network
from semantic_genesis.pretrain.recipe import resolve_config
from semantic_genesis.pretrain.trainer import _perturbation, _perturbed
from semantic_genesis.utils import SemgenError

CUSTOM = Path(__file__).with_name("custom_method.py")
QUICK = ["--width", "4", "--epochs", "1", "--batch-size", "6", "--no-multires", "--seed", "0",
         "--device", "cpu"]


def _header(run: Path) -> list[str]:
    with open(run / "metrics.csv", newline="") as fh:
        return next(csv.reader(fh))


def test_a_method_in_a_test_file_trains_one_epoch_through_semgen_pretrain(
    engine_patterns: Path, tmp_path: Path
) -> None:
    """Denoise (tests/pretrain/custom_method.py) is one file and no registration: its declared
    statistics are the metrics.csv columns, its figures are drawn, its card names it."""
    run = tmp_path / "run"
    rc = main(["pretrain", str(engine_patterns), "--out", str(run),
               "--method", f"{CUSTOM}:Denoise", *QUICK])
    assert rc == 0
    stats = ["loss", "denoise_mse", "noise_left"]
    assert _header(run) == (["epoch"] + [f"train_{s}" for s in stats]
                            + [f"val_{s}" for s in stats] + ["lr", "cubes_per_s", "seconds"])
    assert (run / "restorations.png").stat().st_size > 0
    assert (run / "curves.png").stat().st_size > 0
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    card = ModelCard.from_dict(ckpt["model_card"])
    assert (card.method, card.pretext, card.semantic, card.architecture) == (
        "denoise", "denoise", False, "unet3d")
    assert "aux_state_dict" not in ckpt  # no head outside the backbone
    create_model(**card.model_kwargs()).load_state_dict(ckpt["state_dict"], strict=True)


def test_the_module_form_with_semantics_adds_the_class_head_and_its_columns(
    engine_patterns: Path, tmp_path: Path
) -> None:
    """``package.module:Name+semantics``: the same method plus self-classification, on the
    reference YNet3D whose own clc_out is the head (key for key the reference's)."""
    run = tmp_path / "run"
    assert main(["pretrain", str(engine_patterns), "--out", str(run), "--no-figures",
                 "--method", "tests.pretrain.custom_method:Denoise+semantics", *QUICK]) == 0
    assert _header(run)[1:6] == ["train_loss", "train_denoise_mse", "train_noise_left",
                                 "train_ce", "train_acc"]
    ckpt = torch.load(run / "checkpoints" / "best.pt", weights_only=True)
    card = ModelCard.from_dict(ckpt["model_card"])
    assert (card.method, card.semantic, card.architecture) == ("denoise+semantics", True, "ynet3d")
    reference = create_model("ynet3d", n_classes=3, width=4).state_dict()
    assert list(ckpt["state_dict"]) == list(reference)


BUILTIN = [e.name for e in known_methods()]
WITH_SEMANTICS = [f"{n}+semantics" for n in BUILTIN  # cohort cubes have no classes
                  if not get_method(n).semantic and get_method(n).data != "cohort"]


@pytest.mark.parametrize("name", BUILTIN + WITH_SEMANTICS)
def test_every_builtin_method_builds_and_takes_a_training_step(name: str) -> None:
    config = PretrainConfig(method=name, width=4, channels_last=False)
    method = resolve_method(config)
    config = resolve_config(config, method)  # the method's recipe (models-genesis: SGD lr 1)
    torch.manual_seed(0)
    net = build_network(config, method, n_classes=3)
    optimiser = method.optimizer(net.parameters(), config)
    cubes = torch.rand(4, 1, 16, 16, 16, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 0])
    x, target, extra = _perturbed(_perturbation(method, config)(cubes, torch.Generator()))
    outputs = net(x)
    assert ("restoration" in outputs) == method.decoder
    assert set(outputs) - {"restoration"} == set(method.heads)
    loss, stats = MethodLoss(method, config)(outputs, Batch(cubes, labels, x, target, extra))
    assert torch.isfinite(loss) and stats.shape == (len(method.metric_names()),)
    before = [p.detach().clone() for p in net.parameters()]
    loss.backward()
    optimiser.step()
    changed = sum(not torch.equal(b, p) for b, p in zip(before, net.parameters(), strict=True))
    assert changed > 0


def test_help_lists_every_method_with_its_paper(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["pretrain", "--help"])
    text = re.sub(r"\s+", " ", capsys.readouterr().out).replace("- ", "-")
    for entry in known_methods():
        assert f"{entry.name} ({entry.paper.replace('- ', '-')})" in text
    assert "Models Genesis: Generic Autodidactic Models" in text


def test_an_unknown_method_is_one_line_listing_the_known_ones(
    engine_patterns: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["pretrain", str(engine_patterns), "--out", str(tmp_path / "r"),
               "--method", "simclr", *QUICK])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "unknown method" in err and "semantic-genesis" in err and "rotation" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (f"{CUSTOM.parent}/missing.py:Denoise", "no such file"),
        (f"{CUSTOM}:Nope", "has no 'Nope'"),
        (f"{CUSTOM}:NOISE", "is not a semantic_genesis.pretrain.methods.Method"),
        ("semantic-genesis+semantics", "already classifies"),
        ("no_such_module_x:Name", "importing no_such_module_x failed"),
    ],
)
def test_bad_method_specs_are_refused_clearly(spec: str, match: str) -> None:
    with pytest.raises(SemgenError, match=match):
        resolve_method(PretrainConfig(method=spec))


def test_method_and_pretext_flags_do_not_mix() -> None:
    with pytest.raises(SemgenError, match="names the whole method"):
        PretrainConfig(method="inpainting", pretext="shuffle")
    with pytest.raises(SemgenError, match="own function, not a preset"):
        resolve_method(PretrainConfig(method=f"{CUSTOM}:Denoise", preset="sg"))


def test_a_method_registered_as_an_entry_point_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package that declares ``semantic_genesis.methods`` entry points (its dist-info on
    sys.path, as pip installs it) is found by name and listed."""
    (tmp_path / "my_methods.py").write_text(CUSTOM.read_text())
    info = tmp_path / "my_methods-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-methods\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ndenoise = my_methods:Denoise\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [e.name for e in known_methods()].count("denoise") == 1
    method = resolve_method(PretrainConfig(method="denoise"))
    assert method.name == "denoise" and method.metric_names()[1] == "denoise_mse"
    monkeypatch.delitem(sys.modules, "my_methods", raising=False)


def test_preset_override_keeps_the_method() -> None:
    """--preset sg on Genesis restoration: the restoration-only ablation (method.md §8.1)."""
    method = resolve_method(PretrainConfig(method="genesis-restoration", preset="sg"))
    assert (method.name, method.perturbation, method.label) == (
        "genesis-restoration", "sg", "Genesis restoration (sg)")



def test_models_genesis_plus_semantics_trains_on_the_patterns_with_mgs_recipe() -> None:
    """Semantics needs the discovered classes, so MG + semantics trains on the patterns, with
    MG's perturbation and recipe (the paper's "Models Genesis + semantics")."""
    mg = resolve_method(PretrainConfig(method="models-genesis"))
    both = resolve_method(PretrainConfig(method="models-genesis+semantics"))
    assert mg.data == "cohort" and both.data == "patterns" and both.semantic
    assert both.perturbation == mg.perturbation == "mg"
    assert both.recipe == mg.recipe and both.recipe["optimizer"] == "sgd"
    assert [t.name for t in both.terms] == [*(t.name for t in mg.terms), "ce"]


def test_semantics_builds_its_own_head_on_a_backbone_without_one() -> None:
    from semantic_genesis.models import ClassificationHead
    from semantic_genesis.pretrain.methods import BackboneInfo
    from semantic_genesis.pretrain.methods.semantics import class_head

    unet = create_model("unet3d", width=4)
    head = class_head(BackboneInfo(unet, unet.bottleneck_channels, 1, 1, 5, "torch", "batch"))
    assert isinstance(head, ClassificationHead) and head.fc1.out_features == 5
    ynet = create_model("ynet3d", n_classes=5, width=4)
    assert class_head(BackboneInfo(ynet, ynet.bottleneck_channels, 1, 1, 5, "torch",
                                   "batch")) is ynet.clc_out


def test_a_run_uses_the_methods_own_figures_and_curves(
    engine_patterns: Path, tmp_path: Path
) -> None:
    """Rotation + semantics via the old flags: metrics.csv holds exactly its statistics."""
    result = pretrain(engine_patterns, tmp_path, PretrainConfig(
        pretext="rotation", semantic=True, width=4, epochs=1, batch_size=6, multires=False))
    assert _header(tmp_path)[1:6] == ["train_loss", "train_rot_ce", "train_rot_acc",
                                      "train_ce", "train_acc"]
    assert result.method == "rotation + semantics"
    ckpt = torch.load(result.last_checkpoint, weights_only=True)
    assert ckpt["model_card"]["method"] == "rotation+semantics"
    aux = ckpt["aux_state_dict"]  # the rotation head, named; clc_out is in the backbone
    assert all(k.startswith("rotation.") for k in aux) and aux["rotation.fc1.weight"].shape[0] == 8
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_a_term_that_is_not_a_scalar_and_a_bad_perturbation_are_named() -> None:
    from semantic_genesis.pretrain.methods import Method, Term

    class Vector(Method):
        name = "vector"
        terms = (Term("v", lambda outputs, batch: outputs["x"].flatten()),)

    config = PretrainConfig()
    x = torch.ones(2, 3)
    with pytest.raises(SemgenError, match="method vector: v must return a scalar tensor"):
        MethodLoss(Vector(), config)({"x": x}, Batch(x, x, x))
    with pytest.raises(SemgenError, match=r"must return \(input, target, extra labels\)"):
        _perturbed(x)


def test_resume_accepts_the_same_method_by_name_or_by_flags(
    engine_patterns: Path, tmp_path: Path
) -> None:
    """A run started as --pretext genesis --no-semantic resumes as --method
    genesis-restoration; another method is refused."""
    quick = {"width": 4, "batch_size": 6, "multires": False, "figures": False}
    pretrain(engine_patterns, tmp_path, PretrainConfig(**quick, semantic=False, epochs=1))
    result = pretrain(engine_patterns, tmp_path, PretrainConfig(
        **quick, method="genesis-restoration", epochs=2, resume=True))
    assert result.epochs_run == 2
    with pytest.raises(SemgenError, match="different settings"):
        pretrain(engine_patterns, tmp_path, PretrainConfig(
            **quick, method="inpainting", epochs=3, resume=True))
