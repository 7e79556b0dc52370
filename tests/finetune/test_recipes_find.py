"""Shipped configs are found by name, whatever the working directory holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from semantic_genesis.finetune.recipes import find_config


def test_a_folder_named_like_a_shipped_config_does_not_hide_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()  # e.g. the output folder of an earlier `semgen demo --out demo`
    found = find_config("demo")
    assert found.is_file() and found.name == "demo.yaml" and found.parent != tmp_path
    (tmp_path / "mine.yaml").write_text("x: 1\n")
    assert find_config("mine.yaml") == Path("mine.yaml")  # a file here is taken as given
