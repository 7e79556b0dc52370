"""Pre-training engine: Semantic Genesis, Models Genesis and the add-on pretexts as one loop.

``pretrain(patterns_dir, out_dir, config)`` reads a patterns folder (``semgen discover``) and
writes a run folder with ``checkpoints/{last,best}.pt``, metrics and figures. Modules:
``config`` (settings, methods), ``losses``, ``network`` (what runs), ``trainer`` (epochs),
``state`` (RNG and early-stopping state for exact resume), ``distributed`` (DDP), ``data``
(input checks), ``speed`` (CPU speed-ups), ``logs`` and ``figures``, ``run`` (the run folder).

The torch-dependent names load on first use, so ``semgen --help`` does not import torch.
"""

from __future__ import annotations

from typing import Any

from semantic_genesis.pretrain.config import Method, PretrainConfig, PretrainResult, resolve_method

_LAZY = {"pretrain": "run", "PretrainLoss": "losses", "Outputs": "losses"}

__all__ = [
    "Method",
    "Outputs",
    "PretrainConfig",
    "PretrainLoss",
    "PretrainResult",
    "pretrain",
    "resolve_method",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"semantic_genesis.pretrain.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'semantic_genesis.pretrain' has no attribute {name!r}")
