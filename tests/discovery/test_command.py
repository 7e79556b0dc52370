"""`semgen discover`: the command line maps onto DiscoverConfig; errors are one line."""

from __future__ import annotations

import warnings

import pytest

from semantic_genesis.cli import main
from semantic_genesis.discovery import DiscoverConfig, DiscoverWarning
from semantic_genesis.io.manifests import read_discover_info
from semantic_genesis.utils.config import load_config
from tests.discovery.conftest import PATCH


def test_discover_command(ae_run, phantom_cohort, tmp_path, capsys) -> None:
    out = tmp_path / "p"
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiscoverWarning)  # the command prints them instead
        code = main(["discover", str(phantom_cohort), "--out", str(out), "--classes", "3",
                     "--instances", "3", "--val-instances", "1", "--patch", *map(str, PATCH),
                     "--features", str(ae_run[0] / "features.npz"), "--min-distance", "10",
                     "--seed", "5", "--small-neighbours", "clamp", "--device", "cpu"])
    assert code == 0
    captured = capsys.readouterr()
    assert "3 classes, 12 patterns (K = 3 train, 1 val)" in captured.out
    assert "semgen discover: warning: only 2 validation patients" not in captured.err
    assert main(["discover", str(phantom_cohort), "--out", str(tmp_path / "q"), "--classes", "2",
                 "--instances", "50", "--patch", *map(str, PATCH), "--features",
                 str(ae_run[0] / "features.npz"), "--device", "cpu"]) == 0
    assert "semgen discover: warning: only 7 training patients: K = 7" in capsys.readouterr().err
    config = load_config(DiscoverConfig, out / "discover-config.yaml")
    assert (config.n_classes, config.patch, config.seed, config.min_distance,
            config.small_neighbours) == (3, PATCH, 5, 10.0, "clamp")
    assert read_discover_info(out)["n_classes"] == 3 and (out / "patterns.png").is_file()


def test_bad_cohort_is_one_line_and_status_2(tmp_path, capsys) -> None:
    assert main(["discover", str(tmp_path), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a prepared cohort" in err and str(tmp_path) in err


def test_help_names_the_options(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["discover", "--help"])
    text = capsys.readouterr().out
    for option in ("--classes", "--instances", "--val-instances", "--patch", "--features",
                   "--seed", "--min-distance", "--ae-epochs", "--ae-width", "--ae-shape",
                   "--overwrite"):
        assert option in text
