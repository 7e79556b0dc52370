"""One range check for every config field, whatever the source (CLI, YAML, Python)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from semantic_genesis.utils.config import from_dict, setting, validate
from semantic_genesis.utils.errors import SemgenError


@dataclass
class _Cfg:
    epochs: int = setting(3, ge=1, help="training epochs")
    lr: float = setting(1e-3, gt=0)
    gamma: float = setting(0.5, gt=0, le=1)
    patch: tuple[int, int, int] = setting((64, 64, 32), ge=1)
    device: str = setting("cpu", choices=("cpu", "cuda"))
    amp: bool = False
    workers: int | None = setting(None, ge=0)

    def __post_init__(self) -> None:
        validate(self)


def test_defaults_pass() -> None:
    _Cfg()


@pytest.mark.parametrize("kwargs, words", [
    ({"epochs": 0}, "epochs = 0: must be at least 1"),
    ({"epochs": -3}, "at least 1"),
    ({"lr": float("nan")}, "lr = nan: must be a finite number"),
    ({"lr": 0.0}, "greater than 0"),
    ({"gamma": -1.0}, "greater than 0"),
    ({"gamma": 2.0}, "at most 1"),
    ({"patch": (64, 0, 32)}, "at least 1"),
    ({"patch": (64, 64)}, "must have 3 values"),
    ({"patch": (64.5, 64, 32)}, "each value must be a whole number"),
    ({"device": "banana"}, "must be one of cpu, cuda"),
    ({"epochs": "3"}, "must be a whole number"),
    ({"epochs": True}, "must be a whole number"),
    ({"amp": "yes"}, "must be true or false"),
    ({"workers": -1}, "workers = -1: must be at least 0"),
])
def test_bad_values_name_the_field_and_the_range(kwargs: dict, words: str) -> None:
    with pytest.raises(SemgenError, match="_Cfg") as info:
        _Cfg(**kwargs)
    assert words in str(info.value)


def test_yaml_values_are_checked_with_the_file_named(tmp_path) -> None:
    with pytest.raises(SemgenError) as info:
        from_dict(_Cfg, {"epochs": -3}, source=tmp_path / "grid.yaml")
    assert str(info.value).startswith(str(tmp_path / "grid.yaml"))
    assert "epochs = -3: must be at least 1" in str(info.value)


def test_optional_none_and_ints_for_floats_pass() -> None:
    cfg = _Cfg(workers=None, lr=1, gamma=1)
    assert cfg.lr == 1
