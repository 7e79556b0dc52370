"""Discover leaves the excluded groups out (method.md §1.1): on a LUNA16-layout cohort no
feature, reference patient or neighbour comes from subsets 7-9 by default."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from semantic_genesis.cli import main
from semantic_genesis.discovery import DiscoverConfig, discover
from semantic_genesis.io.manifests import read_classes, read_patterns
from semantic_genesis.utils.errors import SemgenError
from tests.discovery.conftest import fast_config
from tests.luna import ALLOWED, HELD_OUT, prepare_luna, write_luna


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("luna_cohort")
    return prepare_luna(write_luna(root / "luna"), root / "cohort")


def _discover(cohort: Path, out: Path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer neighbours than K on 10 patients
        return discover(cohort, out, fast_config(cohort, **{"n_classes": 3, "instances": 4,
                                                            **kw}))


def test_discover_uses_only_subsets_0_to_6(cohort: Path, tmp_path: Path) -> None:
    result = _discover(cohort, tmp_path / "p")
    used = {r.patient_id for r in read_patterns(tmp_path / "p")}
    used |= {c.patient_id for c in read_classes(tmp_path / "p")}
    assert used and used <= set(ALLOWED)
    with np.load(tmp_path / "p" / "features.npz") as feats:  # features only of allowed cases
        assert set(feats["ids"].tolist()) <= set(ALLOWED)
    info = json.loads((tmp_path / "p" / "discover.json").read_text())
    assert info["excluded_groups"] == ["subset7", "subset8", "subset9"]
    assert info["n_excluded"] == 3 == result.excluded["n_excluded"]
    assert info["excluded_per_group"] == {"subset7": 1, "subset8": 1, "subset9": 1}


def test_no_exclusion_lets_every_case_in(cohort: Path, tmp_path: Path) -> None:
    _discover(cohort, tmp_path / "p", exclude_groups="", n_classes=10, instances=10)
    used = {r.patient_id for r in read_patterns(tmp_path / "p")}
    assert used & set(HELD_OUT)  # the held-out subsets are used when told
    info = json.loads((tmp_path / "p" / "discover.json").read_text())
    assert info["excluded_groups"] == [] and info["n_excluded"] == 0


def test_exclude_groups_is_one_spelling_and_on_the_command_line() -> None:
    assert DiscoverConfig(exclude_groups="Subset7,subset9").exclude_groups == (
        "subset7", "subset9")
    assert DiscoverConfig(exclude_groups=[""]).exclude_groups == ()
    assert DiscoverConfig().exclude_groups == ("subset7", "subset8", "subset9")


def test_excluding_every_training_case_is_one_clear_error(cohort: Path, tmp_path: Path) -> None:
    groups = " ".join(f"subset{i}" for i in range(10))
    with pytest.raises(SemgenError, match="outside --exclude-groups"):
        _discover(cohort, tmp_path / "p", exclude_groups=groups)
    assert not (tmp_path / "p" / "discover.json").exists()


def test_the_command_says_what_was_left_out(cohort: Path, tmp_path: Path, capsys) -> None:
    feats = fast_config(cohort).features  # a features file of every case
    args = ["discover", str(cohort), "--out", str(tmp_path / "p"), "--features", feats,
            "--classes", "2", "--instances", "3", "--val-instances", "1", "--patch", "16", "16",
            "8", "--device", "cpu", "--montage-classes", "0", "--min-distance", "4"]
    assert main(args) == 0
    assert ("left out 3 case(s) of the excluded groups (subset7 1, subset8 1, subset9 1"
            in capsys.readouterr().out)
    assert main([*args[:3], str(tmp_path / "q"), *args[4:], "--exclude-groups", ""]) == 0
    assert "left out" not in capsys.readouterr().out
