"""Seeding: one integer seed makes every stage reproducible.

``derive_rng(seed, *keys)`` gives an independent numpy Generator per (seed, key...) from a
``SeedSequence``, so the random stream of, e.g., class 17 does not depend on how many classes
came before it. That is what makes resumed and sharded runs give the same result as one
uninterrupted run.
"""

from __future__ import annotations

import random
import zlib

import numpy as np


def _key_int(key: int | str) -> int:
    return key if isinstance(key, int) else zlib.crc32(str(key).encode())


def derive_rng(seed: int, *keys: int | str) -> np.random.Generator:
    """An independent numpy Generator for ``seed`` and the given keys."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(_key_int, keys)]))


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 63-bit integer seed derived from ``seed`` and keys (for torch Generators)."""
    return int(derive_rng(seed, *keys).integers(0, 2**63 - 1))


def seed_everything(seed: int) -> None:
    """Seed Python, numpy's legacy global RNG and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
