"""Named fine-tuning recipes (ncc, ncs, lcs, bms, ecc) shipped as package data.

The numbers live in ``semantic_genesis/configs/recipes.yaml`` (method.md §7.2: the Models
Genesis target-task configs, which the Semantic Genesis papers follow). A recipe fixes the
optimiser settings of a task; the data, the initialisation and the run length come from the
fine-tuning config.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from semantic_genesis.utils.config import from_dict
from semantic_genesis.utils.errors import SemgenError

if TYPE_CHECKING:
    from importlib.abc import Traversable


@dataclass(frozen=True)
class Recipe:
    """Optimiser and schedule of one target task (method.md §7.2)."""

    task: str  # "classify" or "segment"
    lr: float = 1e-3  # Adam learning rate
    patience: int = 10  # early stopping on validation loss, in epochs
    batch_size: int = 16
    patch: tuple[int, int, int] = (64, 64, 32)
    plateau_factor: float = 0.5  # ReduceLROnPlateau, common to all MG target tasks
    plateau_patience: int = 6
    plateau_min_delta: float = 1e-4
    min_lr: float = 1e-6


def config_path(name: str) -> Traversable:
    """A config file shipped in ``semantic_genesis/configs/`` (package data)."""
    return resources.files("semantic_genesis").joinpath("configs", name)


def find_config(path: str | Path) -> Path:
    """``path`` itself, or, for a bare name that is not a file here (``benchmark-targets``,
    ``experiment-phantom.yaml``), the config of that name shipped with the package (a
    *folder* called ``demo`` in the working directory does not hide the shipped ``demo``)."""
    path = Path(path)
    if path.is_file() or path.parent != Path("."):
        return path
    return Path(str(config_path(path.name if path.suffix else f"{path.name}.yaml")))


@lru_cache(maxsize=1)
def _table() -> dict[str, dict]:
    text = config_path("recipes.yaml").read_text()
    return yaml.safe_load(text)


def recipe_names() -> list[str]:
    """The shipped recipe names."""
    return sorted(_table())


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name`` (``ncc``, ``ncs``, ``lcs``, ``bms``, ``ecc``)."""
    table = _table()
    if name not in table:
        raise SemgenError(f"unknown recipe {name!r}; known: {', '.join(recipe_names())}")
    return from_dict(Recipe, dict(table[name]), source=f"recipes.yaml:{name}")


def default_recipe(task: str) -> str:
    """The recipe used when none is named: ncc for classification, ncs for segmentation."""
    return {"classify": "ncc", "segment": "ncs"}[task]
