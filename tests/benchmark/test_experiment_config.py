"""The experiment's config is checked whole before its first stage (issue 14: YAML values that
would fail hours later, names that would leave the output folder)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from semantic_genesis.benchmark.experiment import load_experiment_config
from semantic_genesis.finetune.recipes import config_path
from semantic_genesis.utils.errors import SemgenError

SHIPPED = yaml.safe_load(config_path("experiment-phantom.yaml").read_text())


def _set(section: str, key: str, value):  # noqa: ANN001, ANN202
    def change(d: dict) -> None:
        d[section][key] = value
    return change


@pytest.mark.parametrize(("change", "message"), [
    (_set("methods", "../x", {}), r"methods \(name\) = '../x'"),
    (_set("benchmark", "processes", -2), "benchmark: BenchmarkConfig.processes = -2"),
    (_set("target_phantoms", "negatives", -5), "target_phantoms: PhantomConfig.negatives = -5"),
    (_set("pretrain", "epochs", -3), "PretrainConfig.epochs = -3"),
    (lambda d: d.__setitem__("prepare", 3), "prepare = 3: must be a mapping"),
    (lambda d: d["benchmark"]["tasks"][0].__setitem__("name", "../t"), "name = '../t'"),
])
def test_a_bad_section_is_refused_naming_file_and_section(tmp_path: Path, change, message) -> None:
    data = copy.deepcopy(SHIPPED)
    change(data)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SemgenError, match=message) as err:
        load_experiment_config(path)
    assert err.value.path == path


def test_the_shipped_config_passes() -> None:
    assert set(load_experiment_config().methods) == set(SHIPPED["methods"])
