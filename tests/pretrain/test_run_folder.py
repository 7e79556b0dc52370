"""The run folder belongs to `semgen pretrain`; NaN never reaches a checkpoint unnamed; a bad
--init is refused before any work."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from semantic_genesis.models import ModelCard, create_model, save_checkpoint, save_model
from semantic_genesis.pretrain import PretrainConfig, pretrain
from semantic_genesis.pretrain.run import _last_finite
from semantic_genesis.utils import SemgenError
from semantic_genesis.utils.outdir import MARKER, claim_output
from tests.pretrain.conftest import write_engine_patterns

TINY = {"width": 4, "batch_size": 6, "figures": False, "multires": False, "epochs": 1}


def test_a_folder_with_the_users_files_is_refused_and_left_alone(
    engine_patterns: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(SemgenError, match="did not write"):
        pretrain(engine_patterns, mine, PretrainConfig(**TINY, overwrite=True))
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    assert (mine / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("where", ["patterns", "cohort", "above"])
def test_an_out_that_is_or_holds_an_input_is_refused(
    where: str, engine_cohort, tmp_path: Path
) -> None:
    cohort = shutil.copytree(engine_cohort[0], tmp_path / "data" / "cohort")
    patterns = write_engine_patterns(tmp_path / "data" / "patterns", cohort, engine_cohort[1])
    out = {"patterns": patterns, "cohort": cohort, "above": tmp_path / "data"}[where]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(SemgenError, match="contains \\(or is\\) the input"):
        pretrain(patterns, out, PretrainConfig(**TINY))
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_second_run_into_the_same_folder_is_refused_by_the_lock(
    engine_patterns: Path, tmp_path: Path
) -> None:
    with (
        claim_output(tmp_path / "run", "pretrain"),  # as a run in progress holds it
        pytest.raises(SemgenError, match="another `semgen pretrain` is writing"),
    ):
        pretrain(engine_patterns, tmp_path / "run", PretrainConfig(**TINY, resume=True))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_run_folder_of_an_earlier_release_can_be_resumed(
    engine_patterns: Path, tmp_path: Path
) -> None:
    pretrain(engine_patterns, tmp_path, PretrainConfig(**TINY))
    (tmp_path / MARKER).unlink()  # written before markers existed
    result = pretrain(engine_patterns, tmp_path, PretrainConfig(**{**TINY, "epochs": 2},
                                                                resume=True))
    assert result.epochs_run == 2 and (tmp_path / MARKER).is_file()


def _poison_after(steps: int):
    """An optimiser hook that puts a NaN into the first parameter after ``steps`` steps."""
    count = {"n": 0}

    def hook(optimizer, args, kwargs) -> None:
        count["n"] += 1
        if count["n"] == steps:
            with torch.no_grad():
                optimizer.param_groups[0]["params"][0].view(-1)[0] = float("nan")

    return register_optimizer_step_post_hook(hook)


def test_weights_becoming_nan_name_the_step_and_the_last_finite_checkpoint(
    engine_patterns: Path, tmp_path: Path
) -> None:
    """1 epoch = 3 steps of 6 cubes (18 training cubes): the 4th step is epoch 2, step 1."""
    handle = _poison_after(4)
    try:
        with pytest.raises(SemgenError) as err:
            pretrain(engine_patterns, tmp_path, PretrainConfig(**{**TINY, "epochs": 3}))
    finally:
        handle.remove()
    message = str(err.value)
    assert "the weights became NaN or infinite at epoch 2, step 1" in message
    last = tmp_path / "checkpoints" / "last.pt"
    assert f"the last checkpoint with finite weights is {last} (epoch 1)" in message
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


def test_a_nan_checkpoint_is_never_named_good_nor_resumed(
    engine_patterns: Path, tmp_path: Path
) -> None:
    pretrain(engine_patterns, tmp_path, PretrainConfig(**{**TINY, "epochs": 2}))
    ckpts = tmp_path / "checkpoints"
    ckpt = torch.load(ckpts / "last.pt", weights_only=True)
    ckpt["state_dict"]["down_tr64.ops.0.conv1.weight"][0] = float("nan")
    save_checkpoint(ckpt, ckpts / "last.pt")  # as an earlier release could have left it
    best_epoch = torch.load(ckpts / "best.pt", weights_only=True)["epoch"]
    assert _last_finite(ckpts) == (
        f"the last checkpoint with finite weights is {ckpts / 'best.pt'} (epoch {best_epoch})"
    )
    with pytest.raises(SemgenError, match="cannot resume: the weights hold NaN"):
        pretrain(engine_patterns, tmp_path, PretrainConfig(**{**TINY, "epochs": 3}, resume=True))
    (ckpts / "best.pt").unlink()
    assert _last_finite(ckpts) == "no checkpoint with finite weights was written"


def _init_file(tmp_path: Path, width: int, nan: bool = False) -> Path:
    model = create_model("ynet3d", width=width, n_classes=3)
    if nan:
        with torch.no_grad():
            model.down_tr64.ops[0].conv1.weight.fill_(float("nan"))
    path = tmp_path / f"init-{width}-{nan}.pt"
    card = ModelCard(architecture="ynet3d", width=width, n_classes=3)
    torch.save({"state_dict": model.state_dict(), "model_card": card.to_dict()}, path)
    return path


def _empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _init_file(p, 4, nan=True), "--init: the weights hold NaN"),
        (lambda p: _init_file(p, 8), "--init does not fit the ynet3d backbone of width 4"),
        (lambda p: _empty(p / "empty.pt"), "empty file"),
        (lambda p: p / "missing.pt", "checkpoint not found"),
    ],
)
def test_a_bad_init_is_refused_naming_the_file(
    make, message: str, engine_patterns: Path, tmp_path: Path
) -> None:
    init = make(tmp_path)
    with pytest.raises(SemgenError, match=message) as err:
        pretrain(engine_patterns, tmp_path / "run", PretrainConfig(**TINY, init=str(init)))
    assert str(init) in str(err.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_good_init_loads(engine_patterns: Path, tmp_path: Path) -> None:
    init = tmp_path / "init.pt"
    model = create_model("ynet3d", width=4, n_classes=5)  # another class count: head dropped
    save_model(init, model, ModelCard(architecture="ynet3d", width=4, n_classes=5))
    result = pretrain(engine_patterns, tmp_path / "run", PretrainConfig(**TINY, init=str(init)))
    assert result.epochs_run == 1


def test_a_volume_replaced_by_raw_hu_stops_the_run_naming_it(
    engine_cohort, tmp_path: Path
) -> None:
    cohort_dir, records = engine_cohort
    cohort = shutil.copytree(cohort_dir, tmp_path / "cohort")
    patterns = write_engine_patterns(tmp_path / "patterns", cohort, records)
    target = cohort / records[2].file
    np.save(target, (np.load(target).astype(np.float32) * 2000 - 1000))  # HU, same shape
    for workers in (0, 1):
        with pytest.raises(SemgenError, match="in \\[0, 1\\].*min -1000") as err:
            pretrain(patterns, tmp_path / f"run{workers}",
                     PretrainConfig(**TINY, workers=workers))
        assert str(target) in str(err.value) and "\n" not in str(err.value)
