"""Pre-training engine: Semantic Genesis, Models Genesis and the add-on pretexts as one loop.

``pretrain(patterns_dir, out_dir, config)`` reads a patterns folder (``semgen discover``) and
writes a run folder with ``checkpoints/{last,best}.pt``, metrics and figures. Modules:
``config`` (settings, methods), ``losses``, ``network`` (what runs), ``trainer`` (epochs),
``state`` (RNG and early-stopping state for exact resume), ``distributed`` (DDP), ``data``
(input checks), ``speed`` (CPU speed-ups), ``logs`` and ``figures``, ``run`` (the run folder).
"""

from semantic_genesis.engine.config import Method, PretrainConfig, PretrainResult, resolve_method
from semantic_genesis.engine.losses import Outputs, PretrainLoss
from semantic_genesis.engine.run import pretrain

__all__ = [
    "Method",
    "Outputs",
    "PretrainConfig",
    "PretrainLoss",
    "PretrainResult",
    "pretrain",
    "resolve_method",
]
