"""`semgen finetune` at the edge (issue 14): nonsense options refused before any work, --init
checked before any data is made, every option explained, the output folder owned, and a
finished run never silently retrained."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from semantic_genesis.cli import build_parser, main

from .test_data_checks import TINY_FLAGS


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--epochs", "0"], "epochs = 0: must be at least 1"),
        (["--epochs", "-1"], "epochs = -1: must be at least 1"),
        (["--width", "0"], "width = 0: must be at least 1"),
        (["--steps-per-epoch", "0"], "steps_per_epoch = 0: must be at least 1"),
        (["--lr", "0"], "lr = 0.0: must be greater than 0"),
        (["--lr", "nan"], "lr = nan: must be a finite number"),
        (["--patience", "0"], "patience = 0: must be at least 1"),
        (["--batch-size", "0"], "batch_size = 0: must be at least 1"),
        (["--seed", "-1"], "seed = -1: must be at least 0"),
        (["--split-seed", "-1"], "split_seed = -1: must be at least 0"),
        (["--label-fraction", "0"], "label_fraction = 0.0: must be greater than 0"),
        (["--patch", "4", "16", "16"], "patch = (4, 16, 16): must be at least 8"),
        (["--device", "banana"], "device 'banana'"),
    ],
)
def test_nonsense_options_are_one_line_before_any_work(
    tmp_path: Path, capsys, flags: list[str], message: str
) -> None:
    out = tmp_path / "o"
    code = main(["finetune", "--task", "classify", "--target", "phantom-ncc", "--out", str(out),
                 *flags])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()  # nothing generated, nothing claimed


def test_missing_or_bad_init_is_refused_before_phantoms_are_made(tmp_path: Path, capsys) -> None:
    """It used to generate phantoms for 75 s first."""
    out = tmp_path / "o"
    code = main(["finetune", "--task", "classify", "--target", "phantom-ncc", "--out", str(out),
                 "--init", str(tmp_path / "missing.pt")])
    assert code == 2 and "missing.pt" in capsys.readouterr().err
    assert not out.exists()
    (tmp_path / "text.pt").write_text("not a checkpoint")
    code = main(["finetune", "--task", "classify", "--target", "phantom-ncc", "--out", str(out),
                 "--init", str(tmp_path / "text.pt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "text.pt" in err[0] and not out.exists()
    code = main(["finetune", "--task", "segment", "--target", "phantom-ncc", "--out", str(out)])
    assert code == 2 and "use --task classify" in capsys.readouterr().err
    assert not out.exists()


def test_every_option_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for verb in ("finetune", "benchmark", "phantoms", "samples"):
        for action in sub.choices[verb]._actions:
            assert action.help, f"semgen {verb} {action.option_strings or action.dest}: no help"


def test_a_finished_run_is_not_retrained_without_overwrite(
    tiny_data: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "run"
    args = ["finetune", "--task", "classify", "--data", str(tiny_data), "--out", str(out),
            *TINY_FLAGS]
    assert main(args) == 0
    before = (out / "metrics.json").read_bytes()
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "holds a finished run (metrics.json, config.yaml" in err and "--overwrite" in err
    assert (out / "metrics.json").read_bytes() == before
    assert main([*args, "--overwrite"]) == 0
    assert "replacing the finished run" in capsys.readouterr().out


def test_out_of_user_files_or_containing_the_data_is_refused(
    tiny_data: Path, tmp_path: Path, capsys
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("mine")
    base = ["finetune", "--task", "classify", "--data", str(tiny_data), *TINY_FLAGS]
    assert main([*base, "--out", str(mine)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    assert main([*base, "--out", str(tiny_data.parent)]) == 2
    assert "contains (or is) the input" in capsys.readouterr().err


def test_a_full_disk_is_one_line_naming_the_output_folder(
    tiny_data: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import semantic_genesis.finetune.run as run_module

    def full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run_module, "save_config", full)
    out = tmp_path / "o"
    code = main(["finetune", "--task", "classify", "--data", str(tiny_data), "--out", str(out),
                 *TINY_FLAGS])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"semgen finetune: error: {out}: no space left")
