"""Bad checkpoints are one clear line naming the file: empty, text, truncated, a card asking for
a network larger than the machine, NaN weights; and our checkpoints load strictly by default."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from semantic_genesis.cli import main
from semantic_genesis.models import (
    ModelCard,
    create_model,
    load_model,
    load_weights,
    read_weights,
    save_checkpoint,
    save_model,
)
from semantic_genesis.utils.errors import SemgenError


@pytest.fixture(scope="module")
def width8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A width-8 ynet3d checkpoint with its model card (what `semgen pretrain` writes)."""
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    card = ModelCard(architecture="ynet3d", width=8, n_classes=3, patch_size=(16, 16, 16))
    save_model(path, create_model("ynet3d", width=8, n_classes=3), card, epoch=1)
    return path


def _bad_files(tmp_path: Path, good: Path) -> list[tuple[Path, str]]:
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pt"
    text.write_text("these are my notes, not weights\n")
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    return [
        (empty, "not a PyTorch/Keras checkpoint: empty file"),
        (text, "not a PyTorch/Keras checkpoint: the file holds text"),
        (truncated, "truncated or corrupt"),
    ]


def test_empty_text_and_truncated_files_are_one_line_everywhere(
    width8: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path, message in _bad_files(tmp_path, width8):
        for load in (
            read_weights,
            lambda p: load_model(p),
            lambda p: create_model("unet3d", width=4, pretrained=p),
            lambda p: load_weights(create_model("unet3d", width=4), p),
        ):
            with pytest.raises(SemgenError, match=message) as err:
                load(path)
            assert str(path) in str(err.value) and "\n" not in str(err.value)
        assert main(["info", str(path)]) == 2
        err_text = capsys.readouterr().err
        assert message in err_text and "Traceback" not in err_text
        assert len(err_text.strip().splitlines()) == 1


def _crafted(tmp_path: Path, **card_fields) -> Path:
    card = ModelCard(architecture="ynet3d", width=4, n_classes=3).to_dict()
    card.update(card_fields)
    state = create_model("ynet3d", width=4, n_classes=3).state_dict()
    path = tmp_path / "crafted.pt"
    save_checkpoint({"state_dict": state, "model_card": card}, path)
    return path


def test_a_card_asking_for_a_huge_network_is_refused_before_it_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _crafted(tmp_path, width=100000)  # hundreds of billions of parameters
    with pytest.raises(SemgenError, match=r"model card fields width=100000.*GB of memory available"):
        load_model(path)
    assert main(["info", str(path)]) == 2
    assert "model card fields width=100000" in capsys.readouterr().err
    with pytest.raises(SemgenError, match="width=100000.*more than the"):
        create_model("unet3d", width=100000)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"width": 0}, "width = 0: must be at least 1"),
        ({"width": "wide"}, "width = 'wide': must be a whole number"),
        ({"n_classes": -2}, "n_classes = -2: must be at least 0"),
        ({"norm": "banana"}, "norm = 'banana': must be one of batch"),
        ({"patch_size": [16, 16]}, "patch_size"),
    ],
)
def test_card_fields_are_checked_with_their_name(
    tmp_path: Path, fields: dict, message: str
) -> None:
    path = _crafted(tmp_path, **fields)
    with pytest.raises(SemgenError, match="model card field " + message) as err:
        read_weights(path)
    assert str(path) in str(err.value)


def test_nan_weights_are_named_refused_by_default_and_shown_by_info(
    width8: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = torch.load(width8, weights_only=True)
    ckpt["state_dict"]["down_tr64.ops.0.conv1.weight"][0, 0, 0, 0, 0] = float("nan")
    ckpt["state_dict"]["out_tr.final_conv.bias"][:] = float("inf")
    path = tmp_path / "nan.pt"
    save_checkpoint(ckpt, path)
    model = create_model("ynet3d", width=8, n_classes=3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(SemgenError, match="NaN or infinite values in 2 tensor") as err:
        load_weights(model, path)
    assert "down_tr64.ops.0.conv1.weight" in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    with pytest.raises(SemgenError, match="NaN"):
        load_model(path)
    report = load_weights(model, path, allow_nonfinite=True)
    assert report.nonfinite == ["down_tr64.ops.0.conv1.weight", "out_tr.final_conv.bias"]
    assert not report.ok
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "NaN / inf" in out and "out_tr.final_conv.bias" in out


def test_our_checkpoint_loads_strictly_by_default_with_the_report(width8: Path) -> None:
    """The README's old example: a width-32 network silently took 15 of 115 tensors of a
    width-8 checkpoint. Now the mismatch is an error that says how to build the right one."""
    with pytest.raises(SemgenError, match="do not fit.*model card says.*width=8.*load_model") as err:
        create_model("ynet3d", n_classes=3, pretrained=width8)
    assert err.value.report.shape_mismatch  # the load report travels with the error
    model = create_model("ynet3d", n_classes=3, pretrained=width8, strict=False)  # opt-out
    assert model.load_report.shape_mismatch and not model.load_report.ok
    exact = load_model(width8)
    assert exact.width == 8 and exact.load_report.ok
    same = create_model("ynet3d", width=8, n_classes=3, pretrained=width8)
    assert same.load_report.ok


def test_files_without_a_card_still_load_what_fits(tmp_path: Path) -> None:
    """Official releases have no card and other heads: non-strict stays their default."""
    path = tmp_path / "official.pt"
    state = create_model("ynet3d", width=4, n_classes=44).state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    model = create_model("ynet3d", width=4, n_classes=3, pretrained=path)
    assert model.load_report.matched and not model.load_report.ok
    with pytest.raises(SemgenError, match="do not fit"):
        create_model("ynet3d", width=4, n_classes=3, pretrained=path, strict=True)
