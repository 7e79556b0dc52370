"""Pre-training methods: one module per method, each declaring what it trains on, what it
perturbs, what it predicts and what it minimises (:mod:`.base`), and :class:`Semantics`, which
adds self-classification of the discovered patterns to any of them.

Built-in (``semgen pretrain --method NAME``, each also as ``NAME+semantics``):
``semantic-genesis``, ``models-genesis``, ``self-classification``, ``inpainting``,
``shuffling``, ``rotation``, ``identity``. Add one: write a :class:`Method` subclass in a file
and pass ``--method path/to/file.py:Name`` (or register it under the entry-point group
``semantic_genesis.methods``); see docs/design.md, "Extending it today".
"""

from __future__ import annotations

from semantic_genesis.pretrain.methods import (
    genesis,
    identity,
    inpainting,
    rotation,
    self_classification,
    shuffling,
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
    get_method,
    known_methods,
    register_method,
)
from semantic_genesis.pretrain.methods.restoration import RESTORATION_MSE, Restoring
from semantic_genesis.pretrain.methods.self_classification import NoPretext
from semantic_genesis.pretrain.methods.semantics import Semantics

del genesis, identity, inpainting, rotation, self_classification, shuffling  # they register

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
    "get_method",
    "known_methods",
    "register_method",
]
