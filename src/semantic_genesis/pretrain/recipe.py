"""The settings a run really uses: the user's, then the profile's, then the method's recipe.

Several ``PretrainConfig`` fields default to None, meaning "decided for you" (method.md §5.4):

1. a value the user gives (flag, ``--config`` file, ``--set``, Python) always wins;
2. else ``profile = "reference"`` sets what the reference code used (:data:`REFERENCE_PROFILE`:
   always-batch-statistics BatchNorm, fp32, multi-resolution crops drawn once; method.md §12);
3. else the method's own ``recipe`` (Models Genesis: SGD lr 1, momentum 0.9, batch 6, ...);
4. else this project's defaults (:data:`OURS`): the Semantic Genesis reference optimiser
   (Adam 1e-3, batch 64, StepLR 40 x 0.5, patience 50, method.md §5.1), standard BatchNorm,
   ``amp`` auto (bf16 on GPU), multi-resolution crops redrawn every epoch.

:func:`resolve_config` returns the config with every such field filled; that is what
``pretrain-config.yaml``, ``run.json`` and ``last.pt`` store, and what a resume compares (a run
saved before a field existed counts as :data:`OURS`' value for it).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from semantic_genesis.utils.errors import SemgenError

if TYPE_CHECKING:  # pragma: no cover - types only
    from semantic_genesis.pretrain.config import PretrainConfig
    from semantic_genesis.pretrain.methods import Method

#: the optimisation fields a method's ``recipe`` may set.
RECIPE_FIELDS = ("optimizer", "lr", "momentum", "batch_size", "lr_step", "lr_gamma", "patience")
#: this project's values of every "decided for you" field (the SG reference optimiser, §5.1).
OURS: dict[str, Any] = {
    "optimizer": "adam",
    "lr": 1e-3,
    "momentum": 0.0,
    "batch_size": 64,
    "lr_step": 40,
    "lr_gamma": 0.5,
    "patience": 50,
    "norm": "batch",
    "redraw_multires": True,
}
#: what ``profile = "reference"`` sets (method.md §12): the reference's ContBatchNorm3d, which
#: normalises with batch statistics in eval mode too (§9.16); no mixed precision (§5.1); the
#: three multi-resolution cubes of an instance cut once and stored (§2.5).
REFERENCE_PROFILE: dict[str, Any] = {
    "norm": "batch_always",
    "amp": "none",
    "redraw_multires": False,
}
PROFILES = ("ours", "reference")


def _given(config: PretrainConfig, name: str) -> bool:
    """True when ``name`` holds a user's value (not the "decided for you" None / auto)."""
    value = getattr(config, name)
    return value is not None and not (name == "amp" and value == "auto")


def recipe_of(method: Method) -> dict[str, Any]:
    """The method's ``recipe``, checked: only :data:`RECIPE_FIELDS`, values a config accepts."""
    from semantic_genesis.pretrain.config import PretrainConfig
    from semantic_genesis.utils.config import check_setting

    recipe = dict(getattr(method, "recipe", {}) or {})
    unknown = sorted(set(recipe) - set(RECIPE_FIELDS))
    if unknown:
        raise SemgenError(f"method {method.name}: recipe sets {unknown}; a recipe may set "
                          f"{', '.join(RECIPE_FIELDS)}")
    return {k: check_setting(PretrainConfig, k, v, f"method {method.name}'s recipe")
            for k, v in recipe.items()}


def resolve_config(config: PretrainConfig, method: Method) -> PretrainConfig:
    """``config`` with every "decided for you" field filled (module docstring), checked."""
    sources = [REFERENCE_PROFILE if config.profile == "reference" else {}, recipe_of(method),
               OURS]
    changes: dict[str, Any] = {}
    for name in (*RECIPE_FIELDS, *REFERENCE_PROFILE):
        if _given(config, name):
            continue
        value = next((s[name] for s in sources if name in s), getattr(config, name))
        if value != getattr(config, name):
            changes[name] = value
    return dataclasses.replace(config, **changes) if changes else config


def stored_value(stored: dict[str, Any], name: str, default: Any) -> Any:
    """A field of a stored run config: its value, else (a run saved before the field existed,
    or before it was decided for you) this project's value, else ``default``."""
    value = stored.get(name)
    if value is None:
        return OURS.get(name, default)
    return value
