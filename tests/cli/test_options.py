"""Options generated from a config dataclass; --config and --set with their precedence."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from semantic_genesis.cli import build_parser, main
from semantic_genesis.cli.options import (
    Option,
    add_config_options,
    add_file_options,
    config_from_args,
)
from semantic_genesis.utils.config import setting, validate
from semantic_genesis.utils.errors import SemgenError


@dataclass
class _Cfg:
    batch_size: int = setting(4, ge=1, help="cubes per step")
    lr: float = setting(1e-3, gt=0, help="learning rate")
    mode: str = setting("a", choices=("a", "b"), help="the mode")
    patch: tuple[int, int, int] = setting((8, 8, 4), ge=1, help="crop size")
    spacing: tuple[float, float, float] | None = setting(None, gt=0, help="mm; none: native")
    amp: bool = setting(True, help="mixed precision")
    init: str | None = setting(None, help="a checkpoint")
    n_classes: int = setting(3, ge=1, help="classes")
    secret: int = setting(0, help="not on the command line")

    def __post_init__(self) -> None:
        validate(self)


OPTIONS = {"n_classes": Option(flag="--classes", metavar="C"), "secret": Option(hidden=True)}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="t")
    add_config_options(parser, _Cfg, OPTIONS)
    add_file_options(parser)
    return parser


def _build(argv: list[str]) -> _Cfg:
    return config_from_args(_Cfg, _parser().parse_args(argv), OPTIONS)


def test_flags_types_and_help_come_from_the_fields() -> None:
    text = _parser().format_help()
    for words in ("--batch-size BATCH_SIZE", "cubes per step (>= 1; default: 4)", "{a,b}",
                  "--patch X Y Z", "default: 8 8 4", "--amp, --no-amp", "default: on",
                  "--classes C", "--init INIT"):
        assert words in text, words
    assert "--secret" not in text
    assert _build([]) == _Cfg()
    got = _build(["--batch-size", "2", "--lr", "0.5", "--mode", "b", "--patch", "16", "16", "8",
                  "--spacing", "1", "1", "2.5", "--no-amp", "--init", "w.pt", "--classes", "5"])
    assert got == _Cfg(batch_size=2, lr=0.5, mode="b", patch=(16, 16, 8),
                       spacing=(1.0, 1.0, 2.5), amp=False, init="w.pt", n_classes=5)


def test_a_field_without_help_is_refused_when_the_parser_is_built() -> None:
    @dataclass
    class Bare:
        x: int = 1

    with pytest.raises(ValueError, match="x has no help"):
        add_config_options(argparse.ArgumentParser(), Bare)


def test_precedence_defaults_file_flags_set(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"batch_size": 7, "lr": 0.1, "mode": "b", "secret": 9}))
    got = _build(["--config", str(cfg), "--lr", "0.2", "--set", "mode=a", "--set",
                  "patch=[16, 16, 8]"])
    assert (got.batch_size, got.lr, got.mode, got.patch, got.secret) == (7, 0.2, "a",
                                                                          (16, 16, 8), 9)
    assert _build(["--lr", "0.2", "--set", "lr=0.3"]).lr == 0.3
    assert _build(["--set", "spacing=null", "--set", "init=", "--set", "n-classes=4"]) == _Cfg(
        init="", n_classes=4)


@pytest.mark.parametrize("item, words", [
    ("nokey", "--set 'nokey': expected KEY=VALUE"),
    ("colour=red", "--set colour=red: unknown setting 'colour' for _Cfg; known: amp,"),
    ("batch_size=abc", "--set batch_size=abc: _Cfg.batch_size = 'abc': must be a whole number"),
    ("batch_size=0", "--set batch_size=0: _Cfg.batch_size = 0: must be at least 1"),
    ("mode=c", "--set mode=c: _Cfg.mode = 'c': must be one of a, b"),
    ("patch=[1, 2]", "must have 3 values"),
    ("lr=[", "--set lr=[: the value is not valid YAML"),
])
def test_bad_set_is_one_error_naming_it(item: str, words: str) -> None:
    with pytest.raises(SemgenError) as info:
        _build(["--set", item])
    assert words in str(info.value) and "\n" not in str(info.value)


def test_bad_config_file_is_one_error_naming_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    for text, words in (("batch_size: 2\ncolour: red\n", "unknown setting 'colour'"),
                        ("lr: -1\n", "_Cfg.lr = -1.0: must be greater than 0"),
                        ("[1, 2]\n", "expected a mapping of settings, got list"),
                        ("a: [\n", "not valid YAML")):
        cfg.write_text(text)
        with pytest.raises(SemgenError) as info:
            _build(["--config", str(cfg)])
        assert str(info.value).startswith(f"{cfg}: ") and words in str(info.value), text
    with pytest.raises(SemgenError, match="config file not found"):
        _build(["--config", str(tmp_path / "missing.yaml")])


def test_every_verb_accepts_config_and_set_and_every_option_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for verb, p in sub.choices.items():
        dests = {a.dest for a in p._actions}
        assert {"config", "set_values"} <= dests, verb
        for action in p._actions:
            assert action.help, (verb, action.dest)


@pytest.mark.parametrize("argv, words", [
    (["--set", "val_fraction=2"], "--set val_fraction=2: PrepareConfig.val_fraction = 2.0: "
                                  "must be less than 1"),
    (["--set", "colour=red"], "--set colour=red: unknown setting 'colour' for PrepareConfig"),
    (["--set", "seed=x"], "PrepareConfig.seed = 'x': must be a whole number"),
])
def test_prepare_set_errors_exit_2_with_one_line(tmp_path: Path, argv: list[str], words: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", str(tmp_path), "--out", str(tmp_path / "c"), *argv]) == 2
    err = capsys.readouterr().err
    assert err == f"semgen prepare: error: {words}\n" or (words in err and err.count("\n") == 1)
    assert not (tmp_path / "c").exists()


def test_prepare_config_file_with_unknown_key_exits_2(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "prepare-config.yaml"
    cfg.write_text("seed: 1\nclasses: 3\n")
    assert main(["prepare", str(tmp_path), "--out", str(tmp_path / "c"), "--config",
                 str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"semgen prepare: error: {cfg}: unknown setting 'classes'")
    assert err.count("\n") == 1


def test_config_file_that_is_binary_or_a_folder_is_one_error(tmp_path: Path) -> None:
    binary = tmp_path / "c.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x81 not text")
    with pytest.raises(SemgenError, match="not a text file: a config file is YAML or JSON"):
        _build(["--config", str(binary)])
    with pytest.raises(SemgenError, match="is a folder, not a config file"):
        _build(["--config", str(tmp_path)])


def test_exponents_without_a_dot_are_numbers(tmp_path: Path) -> None:
    """YAML 1.1 reads ``1e-3`` as text; a float setting takes it as the number it means."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("lr: 1e-2\n")
    assert _build(["--config", str(cfg)]).lr == 0.01
    assert _build(["--set", "lr=1e-3"]).lr == 0.001


def test_a_positional_field_and_a_help_group() -> None:
    parser = argparse.ArgumentParser(prog="t")
    options = {"init": Option(positional=True, metavar="CKPT"),
               "lr": Option(group="optimisation")}
    add_config_options(parser, _Cfg, options)
    add_file_options(parser)
    assert config_from_args(_Cfg, parser.parse_args(["w.pt", "--lr", "0.5"]), options) == _Cfg(
        init="w.pt", lr=0.5)
    assert config_from_args(_Cfg, parser.parse_args([]), options) == _Cfg()
    text = parser.format_help()
    assert "optimisation:\n  --lr LR" in text and "CKPT" in text
    with pytest.raises(ValueError, match="unknown fields of _Cfg"):
        add_config_options(argparse.ArgumentParser(), _Cfg, {"nope": Option()})


@pytest.mark.parametrize("argv, words", [
    (["benchmark-targets", "--set", "colour=1"], "--set colour=1: unknown setting 'colour' for "
                                                 "BenchmarkConfig"),
    (["benchmark-targets", "--set", "processes=-1"], "BenchmarkConfig.processes = -1: must be at "
                                                     "least 0"),
    (["benchmark-targets", "--set", "seeds=[0, 0]"], "command line: seeds = [0, 0]"),
    (["benchmark-targets", "--config", "other.yaml"], "two configs given"),
    ([], "name the benchmark config: CONFIG.yaml or --config FILE"),
])
def test_benchmark_config_and_set_errors_are_one_line(
        argv: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["benchmark", *argv, "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert not (tmp_path / "b").exists()
