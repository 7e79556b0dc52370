"""Pre-training engine: Semantic Genesis, Models Genesis and the add-on pretexts as one loop.

``pretrain(source, out_dir, config)`` reads a patterns folder (``semgen discover``) or, for a
cohort method such as Models Genesis, a prepared cohort, and writes a run folder with
``checkpoints/{last,best}.pt``, metrics and figures. Modules:
``config`` (settings; which method), ``recipe`` (the values the profile and the method's recipe
decide), ``methods`` (one module per method, the Semantics wrapper, the registry), ``losses``,
``network`` (what runs), ``trainer`` (epochs), ``state`` (RNG and early-stopping state for exact
resume), ``resume`` (may a run be continued), ``distributed`` (DDP), ``data`` (input checks),
``cohort_data`` (random air-test cubes of a cohort), ``dataset`` (cubes cut from memory maps),
``speed`` (CPU speed-ups), ``figures``, ``run`` (the run folder).

The torch-dependent names load on first use, so ``semgen --help`` does not import torch.
"""

from __future__ import annotations

from typing import Any

from semantic_genesis.pretrain.config import PretrainConfig, PretrainResult, resolve_method
from semantic_genesis.pretrain.methods import Method, Semantics, get_method, register_method

_LAZY = {"pretrain": "run", "MethodLoss": "losses"}

__all__ = [
    "Method",
    "MethodLoss",
    "PretrainConfig",
    "PretrainResult",
    "Semantics",
    "get_method",
    "pretrain",
    "register_method",
    "resolve_method",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"semantic_genesis.pretrain.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'semantic_genesis.pretrain' has no attribute {name!r}")
