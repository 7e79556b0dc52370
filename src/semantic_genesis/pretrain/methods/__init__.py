"""Pre-training methods: one module per method, each declaring what it trains on, what it
perturbs, what it predicts and what it minimises (:mod:`.base`), and :class:`Semantics`, which
adds self-classification of the discovered patterns to any of them.

Built-in (``semgen pretrain --method NAME``, each also as ``NAME+semantics``):
``semantic-genesis``, ``models-genesis``, ``self-classification`` and the comparison methods of
the paper's Table 2 (method.md §3.4): ``auto-encoder`` (alias ``identity``), ``inpainting``,
``context-restoration`` (alias ``shuffling``), ``rotation``, ``rubiks-cube``. Add one: write a :class:`Method` subclass in a file
and pass ``--method path/to/file.py:Name`` (or register it under the entry-point group
``semantic_genesis.methods``); see docs/design.md, "Extending it today".
"""

from __future__ import annotations

from semantic_genesis.pretrain.methods import (
    autoencoder,
    context_restoration,
    genesis,
    inpainting,
    rotation,
    rubiks_cube,
    self_classification,
)
from semantic_genesis.pretrain.methods.base import (
    BackboneInfo,
    Batch,
    Method,
    Metric,
    Term,
)
from semantic_genesis.pretrain.methods.registry import (
    METHODS,
    canonical_name,
    get_method,
    known_methods,
    register_method,
)
from semantic_genesis.pretrain.methods.restoration import RESTORATION_MSE, Restoring
from semantic_genesis.pretrain.methods.self_classification import NoPretext
from semantic_genesis.pretrain.methods.semantics import Semantics

# they register themselves
del autoencoder, context_restoration, genesis, inpainting, rotation, rubiks_cube
del self_classification

__all__ = [
    "METHODS",
    "RESTORATION_MSE",
    "BackboneInfo",
    "Batch",
    "Method",
    "Metric",
    "NoPretext",
    "Restoring",
    "Semantics",
    "Term",
    "canonical_name",
    "get_method",
    "known_methods",
    "register_method",
]
