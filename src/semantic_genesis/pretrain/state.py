"""Random states and early stopping for an exact resume, where pre-training imports them from.

The implementation is the shared training layer's (:mod:`semantic_genesis.training.state`):
one copy of the logic for pre-training and fine-tuning.
"""

from semantic_genesis.training.state import RNG_KEYS, EarlyStopping, capture_rng, restore_rng

__all__ = ["RNG_KEYS", "EarlyStopping", "capture_rng", "restore_rng"]
