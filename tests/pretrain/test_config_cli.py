"""`semgen pretrain` options and PretrainConfig fields are checked before any work, and the help
reads right."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from semantic_genesis.cli import build_parser, main
from semantic_genesis.cli.pretrain import config_from_args
from semantic_genesis.pretrain import PretrainConfig
from semantic_genesis.utils import SemgenError
from semantic_genesis.utils.config import load_config


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--seed", "-1"], "PretrainConfig.seed = -1: must be at least 0"),
        (["--device", "banana"], "device 'banana' is not one of auto, cpu, cuda"),
        (["--batch-size", "0"], "PretrainConfig.batch_size = 0: must be at least 1"),
        (["--lr", "nan"], "PretrainConfig.lr = nan: must be a finite number"),
        (["--lr", "0"], "PretrainConfig.lr = 0.0: must be greater than 0"),
        (["--workers", "-1"], "PretrainConfig.workers = -1: must be at least 0"),
        (["--lr-gamma", "-1"], "PretrainConfig.lr_gamma = -1.0: must be greater than 0"),
        (["--lr-gamma", "1.5"], "PretrainConfig.lr_gamma = 1.5: must be at most 1"),
        (["--epochs", "0"], "PretrainConfig.epochs = 0: must be at least 1"),
        (["--width", "0"], "PretrainConfig.width = 0: must be at least 1"),
        (["--accumulate", "0"], "PretrainConfig.accumulate = 0: must be at least 1"),
        (["--lr-step", "-3"], "PretrainConfig.lr_step = -3: must be at least 1"),
        (["--patience", "0"], "PretrainConfig.patience = 0: must be at least 1"),
        (["--min-delta", "-1"], "PretrainConfig.min_delta = -1.0: must be at least 0"),
        (["--lambda-cls", "inf"], "PretrainConfig.lambda_cls = inf: must be a finite number"),
        (["--lambda-rec", "-1"], "PretrainConfig.lambda_rec = -1.0: must be at least 0"),
        (["--preset", "banana"], "PretrainConfig.preset = 'banana': must be one of sg"),
        (["--resume", "--overwrite"], "--resume and --overwrite contradict"),
        (["--init", ""], "PretrainConfig.init = ''"),
    ],
)
def test_bad_values_are_one_line_before_any_work(
    option: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The patterns folder does not exist: the option must be refused first."""
    rc = main(["pretrain", str(tmp_path / "no-patterns"), "--out", str(tmp_path / "run"), *option])
    err = capsys.readouterr().err
    assert rc == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(SemgenError, match="no CUDA device is available"):
        PretrainConfig(device="cuda:0")


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("epochs: ten\n", "PretrainConfig.epochs = 'ten': must be a whole number"),
        ("epochs: -3\n", "PretrainConfig.epochs = -3: must be at least 1"),
        ("width: 2.5\n", "PretrainConfig.width = 2.5: must be a whole number"),
        ("semantic: 'no'\n", "PretrainConfig.semantic = 'no': must be true or false"),
        ("lr: [1, 2]\n", "PretrainConfig.lr = [1, 2]: must be a number"),
        ("norm: layer\n", "PretrainConfig.norm = 'layer': must be one of batch"),
    ],
)
def test_wrong_yaml_types_are_one_clear_error(yaml_text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "pretrain.yaml"
    path.write_text(yaml_text)
    with pytest.raises(SemgenError, match=message.replace("[", "\\[").replace("]", "\\]")):
        load_config(PretrainConfig, path)


def _subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("verb", ["pretrain", "export"])
def test_every_option_has_help(verb: str) -> None:
    missing = [
        a.option_strings[0] if a.option_strings else a.dest
        for a in _subparser(verb)._actions
        if not a.help and a.dest != "help"
    ]
    assert missing == []


def test_negated_flags_read_right() -> None:
    """`--no-multires (default: True)` read as if --no-multires were on by default."""
    text = _subparser("pretrain").format_help()
    flat = " ".join(text.split())
    for flag in ("multires", "figures", "semantic", "channels-last", "fast-decoder"):
        assert f"--{flag}, --no-{flag}" in flat
    assert "--no-multires (default" not in flat and "--no-figures (default" not in flat
    args = build_parser().parse_args(["pretrain", "p", "--out", "r", "--no-multires"])
    config = config_from_args(args)  # options not given keep the config's defaults
    assert config.multires is False and config.figures is True
