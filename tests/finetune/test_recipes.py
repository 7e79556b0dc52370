"""The shipped recipes carry the Models Genesis target-task numbers (method.md §7.2)."""

from __future__ import annotations

import pytest

from semantic_genesis.finetune import FinetuneConfig, get_recipe, recipe_names
from semantic_genesis.utils.errors import SemgenError


@pytest.mark.parametrize(
    ("name", "task", "lr", "patience", "batch"),
    [
        ("ncc", "classify", 1e-3, 10, 24),
        ("ncs", "segment", 1e-3, 50, 16),
        ("lcs", "segment", 1e-2, 20, 16),
        ("bms", "segment", 1e-3, 30, 16),
        ("ecc", "classify", 1e-3, 38, 24),
    ],
)
def test_recipe_numbers(name, task, lr, patience, batch) -> None:
    r = get_recipe(name)
    assert (r.task, r.lr, r.patience, r.batch_size) == (task, lr, patience, batch)
    assert (r.plateau_factor, r.plateau_patience, r.min_lr) == (0.5, 6, 1e-6)


def test_config_overrides_and_errors() -> None:
    assert set(recipe_names()) >= {"ncc", "ncs", "lcs", "bms"}
    r = FinetuneConfig(task="segment", recipe="lcs", patch=(32, 32, 16), lr=0.5).resolved_recipe()
    assert r.patch == (32, 32, 16) and r.lr == 0.5 and r.patience == 20
    assert FinetuneConfig(task="classify").resolved_recipe().patch == (64, 64, 32)
    with pytest.raises(SemgenError, match="unknown recipe"):
        FinetuneConfig(recipe="nope").resolved_recipe()
    with pytest.raises(SemgenError, match="is for segment"):
        FinetuneConfig(task="classify", recipe="lcs").resolved_recipe()
    with pytest.raises(SemgenError, match="multiple of 8"):
        FinetuneConfig(patch=(30, 32, 16)).resolved_recipe()
