"""Atomic writes leave nothing half-written; configs round-trip and refuse unknown keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from semantic_genesis.utils import SemgenError, atomic_path, load_config, save_config, shard
from semantic_genesis.utils.atomic import save_npy_atomic
from semantic_genesis.utils.seed import derive_rng


def test_atomic_path_failure_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_save_npy_atomic_round_trip(tmp_path: Path) -> None:
    a = np.arange(24, dtype=np.float16).reshape(2, 3, 4)
    p = save_npy_atomic(tmp_path / "v.npy", a)
    np.testing.assert_array_equal(np.load(p, mmap_mode="r"), a)
    assert [f.name for f in tmp_path.iterdir()] == ["v.npy"]


@dataclass
class _Cfg:
    name: str = "x"
    lr: float = 1e-3
    patch: tuple[int, int, int] = (64, 64, 32)
    tags: list[str] = field(default_factory=list)
    out: Path | None = None


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_round_trip(tmp_path: Path, suffix: str) -> None:
    cfg = _Cfg(name="y", lr=0.01, patch=(32, 32, 16), tags=["a"], out=tmp_path)
    path = save_config(cfg, tmp_path / f"config{suffix}")
    assert load_config(_Cfg, path) == cfg


def test_config_unknown_key_is_an_error(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("nmae: typo\n")
    with pytest.raises(SemgenError, match="unknown setting.*nmae"):
        load_config(_Cfg, p)


def test_derive_rng_is_keyed() -> None:
    a = derive_rng(0, "class", 3).random(4)
    b = derive_rng(0, "class", 3).random(4)
    c = derive_rng(0, "class", 4).random(4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_shard_single_process() -> None:
    assert shard([1, 2, 3]) == [1, 2, 3]


def test_atomic_outputs_get_umask_permissions(tmp_path: Path) -> None:
    import os

    mask = os.umask(0o022)
    try:
        p = save_npy_atomic(tmp_path / "v.npy", np.zeros(3))
    finally:
        os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o644


def test_read_yaml_names_the_file_when_missing_or_broken(tmp_path) -> None:
    import pytest

    from semantic_genesis.benchmark.experiment import load_experiment_config
    from semantic_genesis.benchmark.grid import load_benchmark_config
    from semantic_genesis.utils.config import read_yaml
    from semantic_genesis.utils.errors import SemgenError

    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [unclosed\n")
    for load in (read_yaml, load_benchmark_config, load_experiment_config):
        with pytest.raises(SemgenError, match="not valid YAML") as err:
            load(bad)
        assert "bad.yaml" in str(err.value)
    with pytest.raises(SemgenError, match="experiment config not found"):
        load_experiment_config(tmp_path / "missing.yaml")
    with pytest.raises(SemgenError, match="benchmark config not found"):
        load_benchmark_config(tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert read_yaml(tmp_path / "empty.yaml") == {}
